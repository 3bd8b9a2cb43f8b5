"""Training-step time of the ONNX->torch converted module vs the same network written in torch,
and inference throughput of every usable backend on the digits test set.

Both training variants run the same step (zero_grad, forward, cross-entropy, backward, Adam) on the
same batches, in short alternating blocks on one torch thread; the figure is each variant's best
block (the least disturbed by other load on a shared machine), and the median is shown too.
"""

from __future__ import annotations

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


def run(quick: bool = False) -> Report:
    with tempfile.TemporaryDirectory(prefix="bench-training-") as d:
        tmp = Path(d)
        train_table, targets = _training_table(quick, tmp)
        infer_table = _inference_table(quick, tmp)
    return Report("training", [train_table, infer_table], targets)
