"""The ``fpga`` backend: compiled Programs whose GEMMs run on the array in a PYNQ overlay.

pynq is imported only here (and in ``fpga_driver.PynqIO``): it pins numpy<2 and an old protobuf,
so most installs lack it, and then this backend reports itself unusable with the reason.
The overlay comes from the bitstream catalog, matched to the array shape; a missing or
mismatching bitstream is an error, never a silent fallback.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from morphware.runtime.backends.program_common import ProgramBackend
from morphware.systolic import toolchain


class FpgaBackend(ProgramBackend):
    name = "fpga"
    priority = 100
    description = "compiled Program with GEMMs on the systolic array in a PYNQ FPGA overlay"
    executor = "fpga"
    profile_batch = 256
    _driver: Any = None

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
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
        try:
            self._overlay_manifest()
        except Exception as e:  # noqa: BLE001 - report catalog problems as the reason
            return False, str(e)
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

    def gemm_engine(self) -> Any:
        """The driver of the overlay, loaded once (downloading a bitstream takes seconds)."""
        from morphware.runtime.backends.fpga_driver import FpgaDriver, PynqIO

        if self._driver is None:
            self._driver = FpgaDriver(PynqIO.load(self._overlay_manifest()), self.params)
        return self._driver


BACKEND = FpgaBackend
