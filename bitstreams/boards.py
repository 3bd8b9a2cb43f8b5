"""The ECP5 boards ``morphware bitstream build`` supports, and how to make each one's SoC.

Each entry names LiteX-boards' platform (pins, FPGA part), the board's oscillator and reset, the
host links it has (a UART bridge on the USB serial port always; Etherbone where the board has an
Ethernet PHY), the array shape that ships prebuilt for it and openFPGALoader's name for it.
Pure data plus ``make_soc``; LiteX is imported only inside ``make_soc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from morphware.systolic.params import ArrayParams


@dataclass(frozen=True)
class Board:
    name: str
    title: str                   # what to buy / what it is
    platform: str                # litex_boards.platforms.<module>
    platform_kwargs: tuple[tuple[str, str], ...]
    part: str                    # FPGA part as the manifest records it
    clk_pin: str
    clk_hz: float
    rst_pin: str
    rst_active_low: bool
    uart_baud: int               # the UART bridge's baud rate (the USB-serial chip's limit)
    eth_phy: int | None          # RGMII PHY index for Etherbone, None without Ethernet
    default_array: tuple[int, int]
    default_clock_mhz: float
    loader_board: str            # openFPGALoader --board
    notes: str = ""
    eth_delays: tuple[tuple[str, float], ...] = ()  # LiteEthPHYRGMII skew settings

    def default_params(self, data_bits: int = 8) -> ArrayParams:
        rows, cols = self.default_array
        return ArrayParams(rows=rows, cols=cols, data_bits=data_bits)


BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("ulx3s-85f", "Radiona ULX3S with LFE5U-85F", "radiona_ulx3s",
          (("device", "LFE5U-85F"), ("revision", "2.0")), "LFE5U-85F-6BG381C",
          "clk25", 25e6, "rst", False, 1_000_000, None, (4, 4), 25.0, "ulx3s",
          "UART bridge on the FT231X USB port (US1); no Ethernet. 8x8 fits too (80 of 156 "
          "multipliers): build it with --array 8x8."),
    Board("colorlight-i5", "Colorlight i5 (LFE5U-25F) on its extension board", "colorlight_i5",
          (("board", "i5"), ("revision", "7.0")), "LFE5U-25F-6BG381C",
          "clk25", 25e6, "cpu_reset_n", True, 115_200, 0, (4, 4), 25.0, "colorlight-i5",
          "UART bridge on the extension board's USB debugger; Etherbone on the first RGMII "
          "port (192.168.1.50, UDP 1234). The 25F has 28 multipliers: 4x4 is the largest "
          "int8 array that fits.", (("tx_delay", 0.0),)),
    Board("ecpix5-85f", "LambdaConcept ECPIX-5 with LFE5UM5G-85F", "lambdaconcept_ecpix5",
          (("device", "85F"),), "LFE5UM5G-85F-8BG554I",
          "clk100", 100e6, "rst_n", True, 1_000_000, 0, (8, 8), 25.0, "ecpix5",
          "UART bridge on the FT2232 USB port; Etherbone on the RGMII port (192.168.1.50).",
          (("rx_delay", 0.0),)),
)}


class UnknownBoardError(KeyError):
    """The board name is not in ``BOARDS``."""


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UnknownBoardError(f"unknown board {name!r}; supported: "
                                f"{', '.join(sorted(BOARDS))}") from None


def make_soc(board: Board, params: ArrayParams, clock_mhz: float, etherbone: bool,
             eth_ip: str = "192.168.1.50") -> Any:
    """The board's ``ArraySoC``: its oscillator through an ECP5 PLL to ``clock_mhz``, the UART
    bridge on its serial pins and, if asked and present, Etherbone on its RGMII PHY."""
    import importlib

    from litex.gen import LiteXModule
    from litex.soc.cores.clock import ECP5PLL
    from litex.soc.cores.uart import UARTPHY
    from migen import ClockDomain
    from morphware.bitstreams.soc import ArraySoC

    if etherbone and board.eth_phy is None:
        raise ValueError(f"{board.name} has no Ethernet PHY: Etherbone is not available")
    module = importlib.import_module(f"litex_boards.platforms.{board.platform}")
    platform = module.Platform(**dict(board.platform_kwargs), toolchain="trellis")
    sys_hz = clock_mhz * 1e6

    class CRG(LiteXModule):
        def __init__(self) -> None:
            self.cd_sys = ClockDomain()
            self.pll = pll = ECP5PLL()
            rst = platform.request(board.rst_pin)
            self.comb += pll.reset.eq(~rst if board.rst_active_low else rst)
            pll.register_clkin(platform.request(board.clk_pin), board.clk_hz)
            pll.create_clkout(self.cd_sys, sys_hz)

    crg = CRG()
    uart = UARTPHY(platform.request("serial"), int(sys_hz), board.uart_baud)
    eth = None
    if etherbone:
        from liteeth.phy.ecp5rgmii import LiteEthPHYRGMII

        eth = LiteEthPHYRGMII(clock_pads=platform.request("eth_clocks", board.eth_phy),
                              pads=platform.request("eth", board.eth_phy),
                              **dict(board.eth_delays))
    return ArraySoC(platform, sys_hz, params, crg, uart_phy=uart, eth_phy=eth, eth_ip=eth_ip,
                    ident=f"Morphware {params.rows}x{params.cols} on {board.title}")
