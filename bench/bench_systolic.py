"""The ws systolic array: utilization of square GEMMs on a 16x16 int8 array (Verilator), simulator
throughput Icarus vs Verilator in the same run, Yosys resources (8x8, 16x16), and place and route
(nextpnr from PyPI) per device and shape: Fmax, placed resources, build time and the GOPS this
gives, beside this machine's CPU (torch fp32) and TVM-VTA's PYNQ figure."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
from morphware.systolic import pnr
from morphware.systolic.commands import GemmCall
from morphware.systolic.cycle_model import gemm_cycles, utilization
from morphware.systolic.golden import gemm
from morphware.systolic.params import ArrayParams
from morphware.systolic.resources import estimate
from morphware.systolic.sim import build, run_gemms

from bench.report import RESULTS, Report, Table


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


# (device, rows, cols, data bits): ECP5 85F is the target; the UP5K is the second family
TIMING_CONFIGS = [("lfe5u-85f", 4, 4, 8), ("lfe5u-85f", 8, 8, 8), ("lfe5u-85f", 16, 16, 8),
                  ("ice40up5k", 2, 2, 8)]
TIMING_QUICK = [("lfe5u-25f", 2, 2, 8)]
VTA_GOPS = 51.2       # TVM-VTA on PYNQ: 16x16 int8 at 100 MHz, peak
GEMM = 256            # batch (M) and the layer's K = N for the utilization factor


def cpu_gemm_gops(size: int = GEMM, seconds: float = 1.0) -> float:
    """Measured fp32 GEMM throughput of this machine's CPU (torch, all its threads)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        torch.mm(a, b)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - t0) / 1e9


def _keep_report(res: pnr.PnrResult, stem: str) -> None:
    """Commit nextpnr's own report and our summary beside the bench results."""
    out = RESULTS / "pnr"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(res.files["report.json"], out / f"{stem}.report.json")
    (out / f"{stem}.json").write_text(json.dumps(res.to_dict(), indent=1) + "\n")


def timing_table(configs: list[tuple[str, int, int, int]]) -> Table:
    """Place and route each configuration (cached per RTL and tools) and derive GOPS."""
    load = os.getloadavg()[0]
    cpu = cpu_gemm_gops()
    rows = []
    for device, r, c, bits in configs:
        p = ArrayParams(r, c, data_bits=bits, acc_depth=256)
        row: dict[str, object] = {"device": device, "array": f"{r}x{c} int{bits}"}
        try:
            res = pnr.run(p, device)
        except pnr.DoesNotFit as e:
            rows.append({**row, "Fmax MHz": "does not fit", "LUT": str(e)})
            continue
        _keep_report(res, f"ws-{r}x{c}-int{bits}-{device}{'-' + res.speed if res.speed else ''}")
        util = utilization(GEMM, GEMM, GEMM, p)
        gops = util * 2 * r * c * res.fmax_mhz / 1e3
        dsp = res.resources["DSP"]
        rows.append({**row, "Fmax MHz": res.fmax_mhz, "LUT": res.resources["LUT"],
                     "FF": res.resources["FF"], "DSP": dsp, "BRAM": res.resources["BRAM"],
                     "MACs/DSP": res.resources["MACs_per_DSP"],
                     "build s": round(res.synth_s + res.pnr_s), "util@256": util,
                     "GOPS": gops, "GOPS/DSP": gops / dsp if dsp else 0.0,
                     "CPU fp32 GOPS": cpu, "VTA GOPS": VTA_GOPS})
    tools = ", ".join(f"{k} {v}" for k, v in pnr.tool_versions("ecp5").items())
    notes = [f"GOPS = utilization (cycle model, M=K=N={GEMM}) x 2*R*C x Fmax; a MAC is 2 ops",
             f"CPU fp32 GOPS: torch.mm {GEMM}^3 on this machine's {os.cpu_count()} CPU(s), measured "
             f"in this run at load average {load:.1f} (other work shares the CPU)",
             "VTA GOPS: TVM-VTA on PYNQ-Z1, 16x16 int8 at 100 MHz, peak (the anchor)",
             "ECP5 out of context (register-to-register), speed 6; iCE40 UP5K through the "
             "3-pin wrapper of morphware.systolic.pnr; LUT = logic cells placed",
             "build s = Yosys + nextpnr wall time when first built (WebAssembly, one core); "
             "later runs come from $MORPHWARE_CACHE/pnr",
             "MACs/DSP: one int8 or int16 MAC per MULT18X18D; the 9x9 split of a MULT18X18D "
             "(MULT9X9D) is not supported by Yosys/nextpnr, and the output stage takes 2 per column",
             f"tools: {tools}"]
    return Table("Place and route: Fmax, resources, throughput", rows, notes)


def run(quick: bool = False) -> Report:
    sizes = [16, 32, 64] if quick else [16, 32, 64, 128, 256]
    util_t, util = utilization_table(sizes)
    timing = timing_table(TIMING_QUICK if quick else TIMING_CONFIGS)
    tables = [util_t, throughput_table(32 if quick else 96),
              resources_table([8] if quick else [8, 16]), timing]
    targets = {}
    for row in timing.rows:
        if (row["device"], row["array"]) == ("lfe5u-85f", "8x8 int8"):
            targets["8x8 int8 on LFE5U-85F-6 >= 100 MHz"] = float(row["Fmax MHz"]) >= 100.0
    if 256 in util:
        targets["utilization@256 >= 95%"] = util[256] >= 0.95
    targets["utilization@64 >= 85%"] = util[64] >= 0.85
    return Report("systolic", tables, targets)
