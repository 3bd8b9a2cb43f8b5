"""The ws systolic array: utilization of square GEMMs on a 16x16 int8 array (Verilator), simulator
throughput Icarus vs Verilator in the same run, and Yosys resources (8x8, 16x16)."""

from __future__ import annotations

import time

import numpy as np
from morphware.systolic.commands import GemmCall
from morphware.systolic.cycle_model import gemm_cycles
from morphware.systolic.golden import gemm
from morphware.systolic.params import ArrayParams
from morphware.systolic.resources import estimate
from morphware.systolic.sim import build, run_gemms

from bench.report import Report, Table


def _call(rng: np.random.Generator, p: ArrayParams, m: int, k: int, n: int) -> GemmCall:
    return GemmCall(rng.integers(p.qmin, p.qmax + 1, (m, k)), rng.integers(p.qmin, p.qmax + 1, (k, n)),
                    rng.integers(-1000, 1000, n), rng.integers(1, 1 << 16, n),
                    rng.integers(8, 20, n))


def utilization_table(sizes: list[int]) -> tuple[Table, dict[int, float]]:
    p = ArrayParams(16, 16, acc_depth=256)
    rng = np.random.default_rng(0)
    calls = [_call(rng, p, s, s, s) for s in sizes]
    build(p, "verilator")
    t0 = time.perf_counter()
    res = run_gemms(p, calls, "verilator")
    wall = time.perf_counter() - t0
    rows, util = [], {}
    for s, c, r in zip(sizes, calls, res, strict=True):
        exact = bool(np.array_equal(r.out, gemm(c.a, c.w, c.bias, c.mult, c.shift, p)))
        util[s] = s**3 / (p.rows * p.cols * r.cycles)
        rows.append({"M=K=N": s, "cycles (RTL)": r.cycles, "cycle model": gemm_cycles(s, s, s, p),
                     "ideal cycles": s**3 // (p.rows * p.cols), "utilization": util[s],
                     "bit-exact": exact})
    notes = ["utilization = ideal MACs / (R*C*cycles) (Gemmini's figure), 16x16 int8, Verilator",
             f"one simulation for all sizes, {wall:.1f} s wall including start-up",
             "a design that loads weights and drains between tiles gets ~81% / 51% at 256 / 64"]
    return Table("Utilization, square GEMMs", rows, notes), util


def throughput_table(size: int) -> Table:
    """PE-cycles/s while the array runs (START to DONE, measured inside the simulator process)."""
    p = ArrayParams(8, 8, acc_depth=256)
    call = _call(np.random.default_rng(1), p, size, size, size)
    rows = []
    for sim in ("icarus", "verilator"):
        build(p, sim)
        t0 = time.perf_counter()
        r = run_gemms(p, [call], sim)[0]
        total = time.perf_counter() - t0
        cyc = r.cycles + r.stall_cycles
        rows.append({"simulator": sim, "array": "8x8", "GEMM": f"{size}^3", "cycles": cyc,
                     "run s": r.wall_s, "total s": total, "cycles/s": cyc / r.wall_s,
                     "PE-cycles/s": p.rows * p.cols * cyc / r.wall_s})
    ratio = rows[1]["PE-cycles/s"] / rows[0]["PE-cycles/s"]
    notes = [f"Verilator / Icarus = {ratio:.1f}x, same command in the same run",
             "run s = START to DONE inside the simulator; total s adds simulator start-up, "
             "stream packing and result I/O (builds excluded)",
             "streams come from files inside the HDL harness: no Python per cycle"]
    return Table("Simulator throughput", rows, notes)


def resources_table(shapes: list[int]) -> Table:
    rows = []
    for s in shapes:
        p = ArrayParams(s, s, acc_depth=256)
        t0 = time.perf_counter()
        r = estimate(p, "xilinx")
        rows.append({"array": f"{s}x{s} int8", **r, "synth s (0 = cached)":
                     round(time.perf_counter() - t0, 1)})
    return Table("Resources (Yosys synth_xilinx, xc7)", rows,
                 ["DSP_per_PE = DSP48E1 / (R*C); the count includes the output stage's "
                  "32x17 multipliers (2 DSP48E1 per column), so the PEs use 1 each",
                  "BRAM in 36 Kb units (the accumulator); latches must be 0"])


def run(quick: bool = False) -> Report:
    sizes = [16, 32, 64] if quick else [16, 32, 64, 128, 256]
    util_t, util = utilization_table(sizes)
    tables = [util_t, throughput_table(32 if quick else 96),
              resources_table([8] if quick else [8, 16])]
    targets = {}
    if 256 in util:
        targets["utilization@256 >= 95%"] = util[256] >= 0.95
    targets["utilization@64 >= 85%"] = util[64] >= 0.85
    return Report("systolic", tables, targets)
