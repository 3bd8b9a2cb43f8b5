"""Training-step time of the ONNX->torch converted module vs the same network written in torch,
inference throughput of every usable backend on the digits test set, and training on the
systolic array (every GEMM on the golden model at int16 and int8) against float training on the
CPU: accuracy, loss curves, array cycles per step and projected seconds per epoch.

Both training variants run the same step (zero_grad, forward, cross-entropy, backward, Adam) on the
same batches, in short alternating blocks on one torch thread; the figure is each variant's best
block (the least disturbed by other load on a shared machine), and the median is shown too.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Report, Table

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"
BATCH = 64


def _digits_mlp() -> tuple[Any, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 10))
    return net.eval(), torch.zeros(1, 64)


def _models() -> dict[str, tuple[Any, Any]]:
    from tests.support import zoo

    return {"digits MLP": _digits_mlp(), "lenet": zoo.lenet(), "cnn_bn": zoo.cnn_bn()}


def _export(net: Any, example: Any, path: Path) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
                          do_constant_folding=False)
    return path


def _block(net: Any, opt: Any, xs: Any, ys: Any, steps: int) -> float:
    import torch.nn.functional as F

    t0 = time.perf_counter()
    for i in range(steps):
        j = i % len(xs)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xs[j]), ys[j]).backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def step_times(net: Any, example: Any, blocks: int, steps: int,
               tmp: Path) -> tuple[list[float], list[float]]:
    """Seconds per training step of each block: (direct, converted)."""
    import copy

    import torch
    from morphware.runtime.model.onnx_torch import to_torch

    conv = to_torch(_export(net, example, tmp / "m.onnx")).train()
    direct = copy.deepcopy(net).train()
    g = torch.Generator().manual_seed(0)
    xs = [torch.rand(BATCH, *example.shape[1:], generator=g) for _ in range(8)]
    ys = [torch.randint(0, 10, (BATCH,), generator=g) for _ in range(8)]
    opts = {id(m): torch.optim.Adam(m.parameters(), lr=1e-3) for m in (direct, conv)}
    for m in (direct, conv):
        _block(m, opts[id(m)], xs, ys, 20)  # warm-up
    td, tc = [], []
    for _ in range(blocks):
        td.append(_block(direct, opts[id(direct)], xs, ys, steps))
        tc.append(_block(conv, opts[id(conv)], xs, ys, steps))
    return td, tc


def _training_table(quick: bool, tmp: Path) -> tuple[Table, dict[str, bool]]:
    import torch

    rows, targets = [], {}
    blocks, steps = (10, 10) if quick else (30, 20)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, (net, example) in _models().items():
            td, tc = step_times(net, example, blocks, steps, tmp)
            ratio = min(tc) / min(td)
            rows.append({"model": name, "torch step (ms)": min(td) * 1e3,
                         "converted step (ms)": min(tc) * 1e3, "converted / torch": ratio,
                         "median ratio": statistics.median(tc) / statistics.median(td)})
            targets[f"{name}: converted step within 10% of torch"] = ratio <= 1.10
    finally:
        torch.set_num_threads(threads)
    table = Table(f"training step, batch {BATCH}, Adam, 1 thread (best of {blocks} alternating "
                  f"blocks of {steps} steps)", rows,
                  ["same weights, same batches", "median ratio: of the per-block medians"])
    return table, targets


def _inference_table(quick: bool, tmp: Path) -> Table:
    from morphware.runtime.backends.registry import all_backends
    from morphware.runtime.job.spec import TrainingRecipe
    from morphware.runtime.model.training import train_onnx

    z = np.load(DIGITS / "data" / "test.npz")
    x, y = z["x"], z["y"]
    net, example = _digits_mlp()
    src = _export(net, example, tmp / "digits.onnx")
    trained = train_onnx(src, DIGITS / "data" / "train.npz",
                         TrainingRecipe(learning_rate=0.01, epochs=8), tmp / "trained.onnx",
                         backend="cpu").onnx_path
    from morphware.runtime.model.safe_io import load_onnx

    model = load_onnx(trained)
    rows = []
    for b in sorted(all_backends().values(), key=lambda b: -b.priority):
        ok, why = b.available()
        if not ok:
            rows.append({"backend": b.name, "samples": 0, "samples/s": "", "compile (s)": "",
                         "accuracy": "", "note": why[:60]})
            continue
        n = 16 if b.name == "rtl" else len(x)
        calib = x[:256]
        t0 = time.perf_counter()
        b.predict(model, x[:1], calib=calib)  # compile (Program backends) and warm up
        compile_s = time.perf_counter() - t0
        dt = float("inf")
        for _ in range(1 if b.name == "rtl" else 5):  # best of several: a shared machine
            t0 = time.perf_counter()
            out = b.predict(model, x[:n], calib=calib)
            dt = min(dt, time.perf_counter() - t0)
        acc = float((out.argmax(1) == y[:n]).mean())
        rows.append({"backend": b.name, "samples": n, "samples/s": n / dt,
                     "compile (s)": compile_s if b.capabilities().programs else "",
                     "accuracy": acc, "note": ""})
    return Table("inference on the digits test set (trained MLP 64-64-64-10)", rows,
                 ["Program backends (golden, rtl, fpga) run the int8 8x8-array program; rtl "
                  "simulates the RTL (16 samples)", "compile: first call, includes hls4ml",
                  "samples/s: best of 5 runs over the test set (rtl: one run)"])


ARRAY_RUNS = (("cpu", None), ("golden", 16), ("golden", 8))
ARRAY_SHAPES = ((8, 8), (16, 16))
CLOCK_HZ = 100e6
GAP_TARGET = {16: 1.0, 8: 2.0}  # points of top-1 below float


def _array_models() -> dict[str, tuple[Any, Any]]:
    from tests.support import zoo

    return {"digits MLP": zoo.mlp(hidden=64), "lenet": zoo.lenet()}


def _train_run(model: Path, recipe: Any, backend: str, bits: int | None, out: Path
               ) -> dict[str, Any]:
    """One training run; seconds per epoch from the engine's epoch events."""
    from morphware.runtime.model.evaluation import evaluate
    from morphware.runtime.model.training import train_onnx

    stamps: list[float] = []
    res = train_onnx(model, DIGITS / "data" / "train.npz", recipe, out, backend=backend,
                     bits=bits, on_event=lambda ev: stamps.append(time.perf_counter())
                     if ev.kind == "epoch" else None)
    epoch_s = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return {"top1": evaluate(res.onnx_path, DIGITS / "data" / "test.npz", "accuracy",
                             backend="cpu"),
            "curve": res.loss_curve, "epoch_s": statistics.median(epoch_s) if epoch_s else
            res.seconds / recipe.epochs, "array": res.array}


def _array_tables(quick: bool, tmp: Path) -> tuple[list[Table], dict[str, bool]]:
    import torch
    from morphware.compiler.training import GemmLayer, epoch_cycles, step_cycles
    from morphware.runtime.job.packaging import analyse_onnx
    from morphware.runtime.job.spec import load_job
    from morphware.systolic.params import ArrayParams

    recipe = load_job(DIGITS / "job.toml").training
    if quick:
        recipe = dataclasses.replace(recipe, epochs=2)
    samples = len(np.load(DIGITS / "data" / "train.npz")["y"])
    acc_rows, curve_rows, cost_rows, targets = [], [], [], {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, (net, example) in _array_models().items():
            src = _export(net, example, tmp / f"{name}.onnx")
            runs = {}
            for backend, bits in ARRAY_RUNS:
                label = "cpu float32" if bits is None else f"{backend} int{bits}"
                runs[label] = r = _train_run(src, recipe, backend, bits, tmp / f"{label}.onnx")
                gap = 100 * (runs["cpu float32"]["top1"] - r["top1"])
                acc_rows.append({"model": name, "training": label, "top-1": r["top1"],
                                 "gap (points)": gap, "final loss": r["curve"][-1],
                                 "host s/epoch": r["epoch_s"]})
                curve_rows.append({"model": name, "training": label,
                                   "loss per epoch": " ".join(f"{v:.3f}" for v in r["curve"])})
                if bits is not None:
                    targets[f"{name}: int{bits} within {GAP_TARGET[bits]:g} point(s) of float"] = (
                        gap <= GAP_TARGET[bits])
            layers = [GemmLayer(*g) for g in analyse_onnx(src)["gemms"]]
            for rows, cols in ARRAY_SHAPES:
                p = ArrayParams(rows, cols)
                cyc = epoch_cycles(layers, samples, recipe.batch_size, p)
                cost_rows.append({
                    "model": name, "array": f"{rows}x{cols}",
                    "cycles/step": step_cycles(layers, recipe.batch_size, p),
                    "projected s/epoch @100MHz": cyc / CLOCK_HZ,
                    "torch CPU s/epoch (measured)": runs["cpu float32"]["epoch_s"],
                    "CPU / array": runs["cpu float32"]["epoch_s"] / (cyc / CLOCK_HZ)})
            ran = runs["golden int16"]["array"]["cycles"]
            planned = recipe.epochs * epoch_cycles(layers, samples, recipe.batch_size,
                                                   ArrayParams(8, 8, data_bits=16))
            # the run also executed one forward pass on two samples before training
            targets[f"{name}: cycle plan = the run's commands (8x8)"] = 0 < ran - planned < (
                step_cycles(layers, 2, ArrayParams(8, 8)))
    finally:
        torch.set_num_threads(threads)
    notes = [f"same ONNX, recipe (examples/digits/job.toml: adam, lr {recipe.learning_rate}, "
             f"batch {recipe.batch_size}, {recipe.epochs} epochs) and seed for every run; "
             "top-1 on the digits test set of the exported float model",
             "golden: every GEMM of the step (forward, dX, dW; conv via im2col) on the bit-exact "
             "array model, 8x8, raw int32 outputs; host: fp32 master weights, loss, optimizer",
             "host s/epoch: wall time of one epoch on this CPU, 1 torch thread (golden: numpy "
             "simulation of the array plus quantisation, not the array's speed)"]
    return [Table("training on the systolic array vs float on the CPU", acc_rows, notes),
            Table("loss curves (mean training loss per epoch)", curve_rows),
            Table(f"array cycles of training (cycle model, batch {recipe.batch_size})", cost_rows,
                  ["cycles/step: every command of one full-batch step, forward and backward",
                   "projected s/epoch: all steps of an epoch at 100 MHz (array only; host work "
                   "and transfers excluded)"])], targets


def run(quick: bool = False) -> Report:
    with tempfile.TemporaryDirectory(prefix="bench-training-") as d:
        tmp = Path(d)
        train_table, targets = _training_table(quick, tmp)
        infer_table = _inference_table(quick, tmp)
        array_tables, array_targets = _array_tables(quick, tmp)
    return Report("training", [train_table, infer_table, *array_tables],
                  {**targets, **array_targets})
