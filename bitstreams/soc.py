"""The array in a LiteX SoC: ``ws_top`` behind a Wishbone region a host bridge can reach.

``ArrayCore`` wraps the RTL top (``morphware.systolic.circuit``) so that everything a driver
needs — the AXI4-Lite registers and the three AXI4-Streams — is reachable from a Wishbone master:
the registers through a small Wishbone -> AXI4-Lite adapter, the streams through 32-bit word
FIFOs and width converters (layout: ``morphware.bitstreams.link``). ``ArraySoC`` puts it in a
``SoCMini`` with a host bridge: a UART bridge (UARTBone) always, Etherbone where the board has an
Ethernet PHY. The same ``ArraySoC`` is built for a board (``board_soc``) and for LiteX's
Verilator simulator (``sim_soc``), so the simulated link is the one that ships.

migen/LiteX are imported only here: they belong to the ``fpga`` extra.
"""

from __future__ import annotations

from typing import Any

from litex.gen import LiteXModule
from litex.soc.integration.soc import SoCRegion
from litex.soc.integration.soc_core import SoCMini
from litex.soc.interconnect import stream, wishbone
from migen import (
    Cat,
    ClockDomain,
    ClockSignal,
    If,
    Instance,
    Mux,
    ResetSignal,
    Signal,
)
from morphware.bitstreams import link
from morphware.systolic import regmap
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams


class ArrayCore(LiteXModule):
    """``ws_top`` for ``params`` with a Wishbone slave (``self.bus``) laid out as in ``link``."""

    def __init__(self, platform: Any, params: ArrayParams,
                 fifo_words: int = link.DEFAULT_FIFO_WORDS):
        self.bus = bus = wishbone.Interface(data_width=32, address_width=32, addressing="word")
        p = params
        bw = link.beat_words(p)
        a_bits, w_bits, o_bits = p.rows * p.data_bits, p.cols * 32, p.cols * 32

        # Streams: word FIFOs, then width converters to / from the array's beats.
        self.a_fifo = a_fifo = stream.SyncFIFO([("data", 32)], fifo_words, buffered=True)
        self.w_fifo = w_fifo = stream.SyncFIFO([("data", 32)], fifo_words, buffered=True)
        self.o_fifo = o_fifo = stream.SyncFIFO([("data", 32)], fifo_words, buffered=True)
        self.a_conv = a_conv = stream.Converter(32, 32 * bw["a"])
        self.w_conv = w_conv = stream.Converter(32, 32 * bw["w"])
        self.o_conv = o_conv = stream.Converter(o_bits, 32)
        self.comb += [a_fifo.source.connect(a_conv.sink), w_fifo.source.connect(w_conv.sink),
                      o_conv.source.connect(o_fifo.sink)]

        # AXI4-Lite signals of the array.
        awaddr, araddr = Signal(regmap.ADDR_BITS), Signal(regmap.ADDR_BITS)
        awvalid, awready, wready = Signal(), Signal(), Signal()
        arvalid, arready = Signal(), Signal()
        bvalid, rvalid, rdata = Signal(), Signal(), Signal(32)
        self.irq = Signal()
        for src in get_circuit().rtl_sources:
            platform.add_source(str(src))
        self.specials += Instance(
            get_circuit().toplevel,
            **{f"p_{k}": v for k, v in get_circuit().hdl_parameters(p).items()},
            i_aclk=ClockSignal("sys"), i_aresetn=~ResetSignal("sys"),
            i_s_axil_awaddr=awaddr, i_s_axil_awvalid=awvalid, o_s_axil_awready=awready,
            i_s_axil_wdata=bus.dat_w, i_s_axil_wstrb=0xF, i_s_axil_wvalid=awvalid,
            o_s_axil_wready=wready, o_s_axil_bresp=Signal(2), o_s_axil_bvalid=bvalid,
            i_s_axil_bready=1, i_s_axil_araddr=araddr, i_s_axil_arvalid=arvalid,
            o_s_axil_arready=arready, o_s_axil_rdata=rdata, o_s_axil_rresp=Signal(2),
            o_s_axil_rvalid=rvalid, i_s_axil_rready=1,
            i_s_axis_a_tdata=a_conv.source.data[:a_bits], i_s_axis_a_tvalid=a_conv.source.valid,
            o_s_axis_a_tready=a_conv.source.ready,
            i_s_axis_w_tdata=w_conv.source.data[:w_bits], i_s_axis_w_tvalid=w_conv.source.valid,
            o_s_axis_w_tready=w_conv.source.ready,
            o_m_axis_o_tdata=o_conv.sink.data, o_m_axis_o_tvalid=o_conv.sink.valid,
            i_m_axis_o_tready=o_conv.sink.ready, o_m_axis_o_tlast=Signal(),
            o_irq=self.irq,
        )

        # Wishbone decode: word offset inside the region.
        off = Signal(11)
        req = Signal()
        self.comb += [off.eq(bus.adr[:11]), req.eq(bus.cyc & bus.stb & ~bus.ack)]
        in_regs = off < link.REGS_SIZE // 4
        in_a = off[8:] == link.A_WINDOW // 4 >> 8
        in_w = off[8:] == link.W_WINDOW // 4 >> 8
        in_o = off[8:] == link.O_WINDOW // 4 >> 8
        wsent, rsent = Signal(), Signal()
        self.comb += [
            awaddr.eq(Cat(Signal(2), off[:4])), araddr.eq(Cat(Signal(2), off[:4])),
            awvalid.eq(req & bus.we & in_regs & ~wsent),
            arvalid.eq(req & ~bus.we & in_regs & ~rsent),
            a_fifo.sink.data.eq(bus.dat_w), w_fifo.sink.data.eq(bus.dat_w),
            a_fifo.sink.valid.eq(req & bus.we & in_a),
            w_fifo.sink.valid.eq(req & bus.we & in_w),
            o_fifo.source.ready.eq(req & ~bus.we & in_o),
        ]
        small = {
            link.LINK_INFO // 4: link.link_info(p),
            link.LEVELS // 4: a_fifo.level, link.LEVELS // 4 + 1: w_fifo.level,
            link.LEVELS // 4 + 2: o_fifo.level,
            link.DEPTHS // 4: fifo_words | fifo_words << 16, link.DEPTHS // 4 + 1: fifo_words,
        }
        small_value = Signal(32)
        self.comb += small_value.eq(0)
        for word, value in small.items():
            self.comb += If(off == word, small_value.eq(value))
        self.sync += [
            bus.ack.eq(0),
            If(awvalid & awready & wready, wsent.eq(1)),
            If(arvalid & arready, rsent.eq(1)),
            If(wsent & bvalid, wsent.eq(0), bus.ack.eq(1)),
            If(rsent & rvalid, rsent.eq(0), bus.ack.eq(1), bus.dat_r.eq(rdata)),
            If(req & ~in_regs,
               If(in_a & bus.we, bus.ack.eq(a_fifo.sink.ready))
               .Elif(in_w & bus.we, bus.ack.eq(w_fifo.sink.ready))
               .Elif(in_o & ~bus.we, bus.ack.eq(1),
                     bus.dat_r.eq(Mux(o_fifo.source.valid, o_fifo.source.data, 0)))
               .Else(bus.ack.eq(1), bus.dat_r.eq(small_value))),
        ]


class ArraySoC(SoCMini):
    """A bridge-only SoC (no CPU) holding one ``ArrayCore`` at ``link.ARRAY_ORIGIN``."""

    def __init__(self, platform: Any, sys_clk_freq: float, params: ArrayParams, crg: Any,
                 uart_phy: Any, eth_phy: Any = None, eth_ip: str = "192.168.1.50",
                 ident: str = "Morphware array"):
        self.crg = crg
        SoCMini.__init__(self, platform, int(sys_clk_freq), ident=ident)
        from litex.soc.cores.uart import UARTBone

        self.uartbone_phy = uart_phy
        self.uartbone = UARTBone(phy=uart_phy, clk_freq=int(sys_clk_freq))
        self.bus.add_master(name="uartbone", master=self.uartbone.wishbone)
        if eth_phy is not None:
            self.ethphy = eth_phy
            self.add_etherbone(phy=eth_phy, ip_address=eth_ip)
        self.array = ArrayCore(platform, params)
        self.bus.add_slave("array", self.array.bus,
                           SoCRegion(origin=link.ARRAY_ORIGIN, size=link.REGION_SIZE, cached=False))


class SimCRG(LiteXModule):
    """The simulator's clock and reset pins as the sys clock domain."""

    def __init__(self, platform: Any):
        self.cd_sys = ClockDomain()
        self.comb += [self.cd_sys.clk.eq(platform.request("sys_clk")),
                      self.cd_sys.rst.eq(platform.request("sys_rst"))]


def sim_platform() -> Any:
    """LiteX's Verilator platform with the pins the simulated SoC uses (clock, reset, a serial
    stream that the ``serial2tcp`` module turns into a TCP port)."""
    from litex.build.generic_platform import Pins, Subsignal
    from litex.build.sim import SimPlatform

    io = [("sys_clk", 0, Pins(1)), ("sys_rst", 0, Pins(1)),
          ("serial", 0, Subsignal("source_valid", Pins(1)), Subsignal("source_ready", Pins(1)),
           Subsignal("source_data", Pins(8)), Subsignal("sink_valid", Pins(1)),
           Subsignal("sink_ready", Pins(1)), Subsignal("sink_data", Pins(8)))]
    return SimPlatform("SIM", io)


def sim_soc(params: ArrayParams, sys_clk_freq: float = 1e6) -> ArraySoC:
    """The SoC with a simulation model of the UART: bytes move one per cycle, no baud rate."""
    from litex.soc.cores.uart import RS232PHYModel

    platform = sim_platform()
    crg = SimCRG(platform)
    return ArraySoC(platform, sys_clk_freq, params, crg,
                    uart_phy=RS232PHYModel(platform.request("serial")),
                    ident="Morphware array (simulation)")
