"""The ``fpga`` backend: compiled Programs whose GEMMs run on the array in an FPGA overlay.

The overlay comes from the bitstream catalog, matched to the board (``MORPHWARE_BOARD``) and the
array shape; a missing or mismatching bitstream is an error, never a silent fallback. Its
manifest's ``transport`` picks the register/DMA layer under the same ``FpgaDriver``:

* ``pynq`` — a Zynq board running PYNQ (``PynqIO``). pynq is imported only then: it pins numpy<2
  and an old protobuf, so most installs lack it, and the backend says so;
* ``litex`` — an ECP5 board with the LiteX SoC loaded (``morphware bitstream flash``), reached
  through ``litex_server`` (``morphware bitstream serve``) at ``MORPHWARE_LITEX_SERVER``
  (``host:port``, default 127.0.0.1:1234) by ``LitexIO``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from morphware.runtime.backends.program_common import ProgramBackend
from morphware.systolic import toolchain


class FpgaBackend(ProgramBackend):
    name = "fpga"
    priority = 100
    description = "compiled Program with GEMMs on the systolic array in an FPGA overlay"
    executor = "fpga"
    profile_batch = 256
    _driver: Any = None

    def __init__(self, params: Any = None, bits: int = 8):
        super().__init__(params or _board_params(), bits)

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
        try:
            manifest = self._overlay_manifest()
        except Exception as e:  # noqa: BLE001 - report catalog problems as the reason
            return False, str(e)
        if manifest.transport == "litex":
            return self._litex_available(manifest)
        if importlib.util.find_spec("pynq") is None:
            return False, ("pynq is not installed (a PYNQ board image has it; or "
                           f"{toolchain.install_command('pynq')})")
        try:
            import pynq

            devices = list(pynq.Device.devices)
        except Exception as e:  # noqa: BLE001 - pynq raises RuntimeError/OSError off-board
            return False, f"pynq finds no FPGA device ({e})"
        if not devices:
            return False, "pynq finds no FPGA device"
        return True, f"{devices[0].name}, overlay for array {self.params.rows}x{self.params.cols}"

    def _overlay_manifest(self) -> Any:
        from morphware.bitstreams.catalog import detect_board, select_overlay

        manifest = select_overlay(self.params, detect_board())
        manifest.verify_files()
        return manifest

    def array_clock_hz(self) -> float:
        return float(self._overlay_manifest().clock_mhz) * 1e6

    def training_engine(self, params: Any) -> Any:
        """The overlay's driver; its operand width is fixed by the bitstream."""
        from morphware.runtime.backends.base import BackendError

        if params != self.params:
            raise BackendError(f"the overlay's array is int{self.params.data_bits}; train with "
                               f"--bits {self.params.data_bits}")
        return self.gemm_engine()

    def _litex_available(self, manifest: Any) -> tuple[bool, str]:
        """Usable when litex_server answers and the array behind it has the Program's shape."""
        if importlib.util.find_spec("litex") is None:
            return False, "LiteX is not installed (the [fpga] extra: make setup)"
        from morphware.runtime.backends.fpga_driver import FpgaDriver
        from morphware.runtime.backends.litex_io import LitexIO, server_address

        host, port = server_address()
        try:
            FpgaDriver(LitexIO.connect(self.params, host, port, manifest.link["base"]),
                       self.params).close()
        except Exception as e:  # noqa: BLE001 - connection and identity problems are reasons
            return False, str(e)
        return True, f"{manifest.name} via litex_server {host}:{port}"

    def gemm_engine(self) -> Any:
        """The driver of the overlay, loaded once (downloading a bitstream takes seconds)."""
        from morphware.runtime.backends.fpga_driver import FpgaDriver, PynqIO

        if self._driver is None:
            manifest = self._overlay_manifest()
            if manifest.transport == "litex":
                from morphware.runtime.backends.litex_io import LitexIO, server_address

                host, port = server_address()
                io: Any = LitexIO.connect(self.params, host, port, manifest.link["base"])
            else:
                io = PynqIO.load(manifest)
            self._driver = FpgaDriver(io, self.params)
        return self._driver


def _board_params() -> Any:
    """The array of this board's overlay when the catalog has exactly one for the board, so a
    validator on an ECP5 board with a 4x4 overlay needs no ``--array``; else the default."""
    from morphware.bitstreams.catalog import catalog, detect_board

    try:
        board = detect_board()
        mine = [m for m in catalog() if m.board == board]
    except Exception:  # noqa: BLE001 - no board or a broken catalog: available() says why
        return None
    return mine[0].params if len(mine) == 1 else None


BACKEND = FpgaBackend
