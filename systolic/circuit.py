"""Circuits as plug-ins: everything the verification suite, the simulator runner and the resource
estimator need to know about one circuit, so a second circuit is verified by the same suite.

To add one: put its RTL under ``rtl/``, write a harness with the same ports as
``rtl/tb/ws_harness.sv`` (or its own cocotb module), and ``register(Circuit(...))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from morphware.systolic import golden
from morphware.systolic.cycle_model import gemm_cycles
from morphware.systolic.params import ArrayParams

RTL = Path(__file__).resolve().parent / "rtl"

GoldenGemm = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Circuit:
    """One circuit: RTL, toplevels, supported operations, cycle model and golden model."""

    name: str
    rtl_sources: tuple[Path, ...]          # synthesizable sources
    toplevel: str                          # synthesizable top (AXI4-Lite + AXI4-Stream ports)
    sim_harness: tuple[Path, ...]          # simulation-only sources
    sim_toplevel: str
    cocotb_module: str
    operations: tuple[str, ...]
    cycles: Callable[[int, int, int, ArrayParams], int]
    golden_gemm: GoldenGemm = golden.gemm
    clock: str = "aclk"                    # the clock input (place and route times it)
    param_names: dict[str, str] = field(default_factory=lambda: {
        "rows": "R", "cols": "C", "data_bits": "DB", "acc_bits": "ACC", "acc_depth": "DEPTH"})

    def sim_sources(self) -> list[Path]:
        return [*self.rtl_sources, *self.sim_harness]

    def hdl_parameters(self, p: ArrayParams) -> dict[str, int]:
        """Verilog parameter overrides for this configuration."""
        return {hdl: int(getattr(p, py)) for py, hdl in self.param_names.items()}


_REGISTRY: dict[str, Circuit] = {}


def register(circuit: Circuit) -> None:
    """Add a circuit; names are unique."""
    if circuit.name in _REGISTRY:
        raise ValueError(f"circuit {circuit.name!r} is already registered")
    _REGISTRY[circuit.name] = circuit


def circuits() -> list[str]:
    return sorted(_REGISTRY)


def get_circuit(name: str = "ws") -> Circuit:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown circuit {name!r}; known: {circuits()}") from None


register(Circuit(
    name="ws",
    rtl_sources=(RTL / "ws_mul.v", RTL / "ws_pe.v", RTL / "ws_fifo.v", RTL / "ws_top.v"),
    toplevel="ws_top",
    sim_harness=(RTL / "tb" / "ws_harness.sv",),
    sim_toplevel="ws_harness",
    cocotb_module="morphware.systolic.cocotb_ws",
    operations=("gemm", "gemm_relu", "gemm_raw", "accumulate_k_tiles", "bias", "requantize"),
    cycles=gemm_cycles,
))
