"""Compiler benchmark: ONNX -> Program time per zoo model (after imports), the layer tables, and
predicted cycles of each model across array shapes. Target: LeNet-style model compiles in < 2 s."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import Report, Table

ARRAYS = ((4, 4), (8, 8), (16, 16), (32, 32))


def _export_zoo(tmp: Path) -> dict[str, tuple[Path, tuple[int, ...]]]:
    import onnx
    from morphware.compiler import frontend

    from tests.support import zoo

    out = {}
    for name in zoo.ZOO:
        module, x = zoo.build(name)
        path = tmp / f"{name}.onnx"
        onnx.save(frontend.export_torch(module, x), path)
        out[name] = (path, tuple(x.shape[1:]))
    return out


def _accuracy_rows(quick: bool) -> list[dict[str, object]]:
    """Top-1 on the digits test split: float vs the compiled Program (golden) at int8 and int16."""
    import torch
    from morphware.compiler import compile_model, execute
    from morphware.systolic.params import ArrayParams

    from tests.support import zoo

    data = zoo.digits()
    rows = []
    for name, epochs in (("mlp", 20), ("lenet", 15)):
        module, x0 = zoo.build(name)
        shape = tuple(x0.shape[1:])
        xtr = data["x_train"].reshape(-1, *shape)
        xte = data["x_test"].reshape(-1, *shape)
        zoo.train(module, xtr, data["y_train"], epochs=5 if quick else epochs)
        with torch.no_grad():
            ref = module(torch.from_numpy(xte)).numpy()
        row: dict[str, object] = {"model": name, "test_samples": len(xte),
                                  "float": float(np.mean(ref.argmax(1) == data["y_test"]))}
        for bits in (8, 16):
            program, _ = compile_model(module, ArrayParams(8, 8), xtr[:256], bits=bits)
            y = execute(program, xte)
            row[f"int{bits}"] = float(np.mean(y.argmax(1) == data["y_test"]))
            row[f"int{bits}_agrees_float"] = float(np.mean(y.argmax(1) == ref.argmax(1)))
        rows.append(row)
    return rows


def run(quick: bool = False) -> Report:
    from morphware.compiler import compile_model, program_cycles
    from morphware.systolic.params import ArrayParams

    reps = 1 if quick else 5
    timing_rows, layer_tables, shape_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmpdir:
        models = _export_zoo(Path(tmpdir))
        rng = np.random.default_rng(0)
        calib = {n: rng.uniform(0, 1, (128, *s)).astype(np.float32) for n, (_, s) in models.items()}
        compile_model(str(models["mlp"][0]), ArrayParams(8, 8), calib["mlp"])  # warm imports
        for name, (path, _) in models.items():
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                program, rep = compile_model(str(path), ArrayParams(8, 8), calib[name], name=name)
                times.append(time.perf_counter() - t0)
            tot = rep["total"]
            timing_rows.append({"model": name, "compile_s_median": statistics.median(times),
                                "compile_s_min": min(times), "gemms": len(program.gemms),
                                "host_ops": tot["host_layers"], "MACs": tot["MACs"],
                                "weight_bytes": tot["weight_bytes"], "cycles_8x8": tot["cycles"],
                                "util_8x8": tot["utilization"]})
            layer_tables.append(Table(f"layers: {name} on 8x8 int8, batch 1", rep["layers"]))
            for r, c in ARRAYS:
                prog, _ = compile_model(str(path), ArrayParams(r, c), calib[name], name=name)
                for batch in (1, 16):
                    cyc = program_cycles(prog, batch)
                    shape_rows.append({"model": name, "array": f"{r}x{c}", "batch": batch,
                                       "cycles": cyc, "cycles_per_sample": cyc / batch,
                                       "utilization": tot["MACs"] * batch / (cyc * r * c)})
    acc_rows = _accuracy_rows(quick)
    lenet_s = next(r["compile_s_median"] for r in timing_rows if r["model"] == "lenet")
    return Report(
        name="compiler",
        tables=[Table("ONNX file -> Program (8x8 int8, 128 calibration samples)", timing_rows,
                      [f"median of {reps} runs after a warm-up compile (imports excluded)"]),
                Table("predicted array cycles by array shape", shape_rows),
                Table("digits top-1 accuracy: float vs compiled (golden executor, 8x8)", acc_rows,
                      ["256 training images calibrate; int8/int16 symmetric per-channel weights"]),
                *layer_tables],
        targets={"lenet ONNX -> Program < 2 s": lenet_s < 2.0,
                 **{f"{r['model']} int8 within 1 point of float":
                    abs(float(r["int8"]) - float(r["float"])) <= 0.01 for r in acc_rows}},
    )
