"""The GEMM command: the contract between the compiler (which emits commands) and every engine
that executes them (golden model, RTL simulation, FPGA driver)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GemmCall:
    """One command: ``golden.gemm(a, w, bias, mult, shift, p, relu, raw)``."""

    a: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    relu: bool = False
    raw: bool = False


@dataclass
class GemmResult:
    out: np.ndarray      # int64 (M x N)
    cycles: int          # the RTL's CYCLES register (equals the cycle model)
    stall_cycles: int    # cycles spent waiting on streams
    wall_s: float = 0.0  # simulator wall time from START to DONE (excludes start-up, packing)
