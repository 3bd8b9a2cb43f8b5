"""The exact cycle model of the ``ws`` array: what its CYCLES register reports for one command.

The schedule is fixed by (M, K, N, R, C) (see rtl/ws_top.v):

* prologue ``R + 3``: the first weight tile (R beats) and the first N tile's 3 parameter beats;
* ``P - 1`` slots of ``S = max(M, R + 3, ceil(C / 2))`` cycles: a pass's M activation rows enter
  while the next pass's R weight beats (+3 parameter beats at N-tile boundaries) load into the
  other bank. ``S >= R + 3`` keeps one slot's loads inside it; ``3 S >= M + C`` keeps the
  4-entry parameter ring from overwriting an N tile still in the output stage;
* the final pass: M rows, then ``R + C + 2 + 8`` cycles of pipeline (skew, array with its
  registered weights and products, de-skew, then 8 output-stage registers: accumulate, bias, two partial
  products, their sum, two shift steps, rounding, ReLU/saturation) until its last row is in the
  output FIFO;
* 2 cycles for the FIFO to hand out its last row and for DONE to rise.

Stall cycles (a stream not ready) are counted separately by the RTL and are not part of this.
"""

from __future__ import annotations

from morphware.systolic.params import ArrayParams

PROLOGUE_EXTRA = 3
PE_STAGES = 2        # inside every PE: the selected weight register, the product register
OUTPUT_STAGES = 8
FLUSH = 2


def tiles(k: int, n: int, p: ArrayParams) -> tuple[int, int]:
    """(K tiles, N tiles) of a K x N weight matrix on this array."""
    return -(-k // p.rows), -(-n // p.cols)


def slot_cycles(m: int, p: ArrayParams) -> int:
    """Cycles one pass occupies when another pass follows it."""
    return max(m, p.rows + PROLOGUE_EXTRA, -(-p.cols // 2))


def _check(m: int, k: int, n: int, p: ArrayParams) -> None:
    if not 1 <= m <= p.acc_depth:
        raise ValueError(f"m={m} outside 1..acc_depth={p.acc_depth}; split the GEMM by rows")
    if k < 1 or n < 1:
        raise ValueError(f"k and n must be positive, got k={k} n={n}")


def gemm_phases(m: int, k: int, n: int, p: ArrayParams) -> dict[str, int]:
    """Cycles per phase of one command; their sum is ``gemm_cycles``."""
    _check(m, k, n, p)
    kt, nt = tiles(k, n, p)
    passes = kt * nt
    return {
        "prologue": p.rows + PROLOGUE_EXTRA,
        "slots": (passes - 1) * slot_cycles(m, p),
        "last_pass": m,
        "pipeline": p.rows + p.cols + PE_STAGES + OUTPUT_STAGES,
        "flush": FLUSH,
    }


def gemm_cycles(m: int, k: int, n: int, p: ArrayParams) -> int:
    """Exact cycles from START to DONE of one GEMM command (stalls excluded)."""
    return sum(gemm_phases(m, k, n, p).values())


def utilization(m: int, k: int, n: int, p: ArrayParams, cycles: int | None = None) -> float:
    """Useful MACs over the array's MAC capacity during the command (Gemmini's figure)."""
    cyc = gemm_cycles(m, k, n, p) if cycles is None else cycles
    return m * k * n / (p.rows * p.cols * cyc)
