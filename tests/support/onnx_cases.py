"""The ONNX package's own backend test data as compiler test cases.

The ``onnx`` wheel ships ``onnx/backend/test/data/{pytorch-converted,pytorch-operator}/<case>/``
(``model.onnx`` + ``test_data_set_0/{input_0,output_0}.pb``) and ``light/`` (real ImageNet graphs
whose weights are constants, with ``light_<name>_output_0.pb``; their input is the one onnx's
test runner generates: ``arange(n).reshape(shape) / n``). Tests and ``python -m bench compiler``
both read them through this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SUITES = ("pytorch-converted", "pytorch-operator")


def data_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data"


@dataclass
class Case:
    suite: str
    name: str
    model: Path
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]


def _tensor(path: Path) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    return numpy_helper.to_array(onnx.load_tensor(str(path)))


def case(suite: str, name: str) -> Case:
    d = data_dir() / suite / name
    ds = d / "test_data_set_0"
    ins = [_tensor(p) for p in sorted(ds.glob("input_*.pb"))]
    outs = [_tensor(p) for p in sorted(ds.glob("output_*.pb"))]
    return Case(suite, name, d / "model.onnx", ins, outs)


def cases(suite: str) -> list[Case]:
    return [case(suite, d.name) for d in sorted((data_dir() / suite).iterdir()) if d.is_dir()]


def light_case(name: str) -> Case:
    """A light/ model with onnx's runner input (arange / n) and the shipped expected output."""
    import onnx

    path = data_dir() / "light" / f"light_{name}.onnx"
    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in inits)
    shape = tuple(d.dim_value or 1 for d in inp.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    x = (np.arange(n).reshape(shape) / n).astype(np.float32)
    out = _tensor(data_dir() / "light" / f"light_{name}_output_0.pb")
    return Case("light", name, path, [x], [out])


def calibration(x: np.ndarray, n: int = 8, seed: int = 0) -> np.ndarray:
    """The test input batch ``x`` and ``n - 1`` noisy copies of its first sample (5 % of its
    spread)."""
    rng = np.random.default_rng(seed)
    spread = float(np.std(x)) or 1.0
    noisy = x[0] + rng.normal(0, 0.05 * spread, (n - 1, *x.shape[1:])).astype(np.float32)
    return np.concatenate([x, noisy]).astype(np.float32)


def relative_error(y: np.ndarray, ref: np.ndarray) -> float:
    """max |y - ref| over the expected output's range (max - min; max |ref| when constant);
    NaN must sit where the expected output has NaN (sqrt of a negative input)."""
    y = np.asarray(y, np.float64)
    if not np.array_equal(np.isnan(y), np.isnan(ref)):
        return float("inf")
    ok = ~np.isnan(ref)
    y, ref = y[ok], ref[ok].astype(np.float64)
    if not ref.size:
        return 0.0
    span = float(ref.max() - ref.min()) or float(np.abs(ref).max()) or 1.0
    return float(np.abs(y - ref).max() / span)


def argmax_agreement(y: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of rows (last axis = classes) whose argmax matches; 1-element rows count as equal."""
    if ref.ndim < 2 or ref.shape[-1] < 2:
        return 1.0
    a = np.asarray(y).reshape(-1, ref.shape[-1]).argmax(1)
    b = ref.reshape(-1, ref.shape[-1]).argmax(1)
    return float(np.mean(a == b))


def is_inference(c: Case) -> bool:
    """One float input, float outputs (what the compiler takes); the rest are not inference graphs
    it could accept (integer index inputs, several inputs)."""
    return len(c.inputs) == 1 and c.inputs[0].dtype == np.float32 and all(
        o.dtype == np.float32 for o in c.outputs)


def evaluate(c: Case, params: Any, backend: str = "golden") -> dict[str, Any]:
    """Compile ``c`` for ``params`` (calibrated on its input) and compare with the expected
    outputs: status, reason, relative error (worst output), argmax agreement, compile seconds."""
    from morphware.compiler import CompileError, compile_model, run

    row: dict[str, Any] = {"suite": c.suite, "model": c.name}
    x = c.inputs[0]
    t0 = time.perf_counter()
    try:
        program, rep = compile_model(str(c.model), params, calibration(x))
    except CompileError as e:
        row.update(status="refused", reason=str(e)[:160])
        return row
    row["compile_s"] = round(time.perf_counter() - t0, 2)
    ex = run(program, x, backend)
    errs, agree = [], []
    for y, ref in zip(ex.outputs, c.outputs, strict=True):
        errs.append(relative_error(y.reshape(ref.shape), ref))
        agree.append(argmax_agreement(y, ref))
    row.update(status="compiled", rel_error=max(errs), argmax_agree=min(agree),
               cycles=rep["total"]["cycles"], utilization=rep["total"]["utilization"])
    return row


def without_final_softmax(path: Path) -> tuple[Any, bool]:
    """The model with its last node removed if that is the output Softmax (and whether it was):
    the logits show the network's numerics even where constant weights make every class
    equally likely."""
    import onnx

    m = onnx.load(str(path))
    last = m.graph.node[-1]
    if last.op_type != "Softmax" or last.output[0] != m.graph.output[0].name:
        return m, False
    m.graph.node.remove(last)
    out = m.graph.output[0]
    out.name = last.input[0]  # same shape as the Softmax output
    return m, True


def float_reference(m: Any, x: np.ndarray) -> np.ndarray:
    """The model's own float output (onnxruntime), on a batch of one."""
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto.FromString(m.SerializeToString())
    m.ir_version = max(min(m.ir_version, 10), 4)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # old files: one warning per initializer listed as an input
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0])


def evaluate_light(name: str, params: Any, run_golden: bool = True) -> tuple[dict[str, Any], Any, Any]:
    """Compile a light/ model without its final Softmax at ``params``; with ``run_golden``, run
    it and compare the logits with onnxruntime's and softmax(logits) with the shipped output."""
    from morphware.compiler import compile_model, run
    from morphware.compiler.hostops import softmax

    c = light_case(name)
    m, stripped = without_final_softmax(c.model)
    x = c.inputs[0]
    t0 = time.perf_counter()
    program, rep = compile_model(m, params, calibration(x, 2), name=name)
    row: dict[str, Any] = {"model": name, "array": f"{params.rows}x{params.cols}",
                           "compile_s": round(time.perf_counter() - t0, 1),
                           "gemms": len(program.gemms), "host_ops": rep["total"]["host_layers"],
                           "MACs": rep["total"]["MACs"], "cycles": rep["total"]["cycles"],
                           "utilization": rep["total"]["utilization"]}
    if run_golden:
        ex = run(program, x)
        logits = ex.output.reshape(ex.output.shape[0], -1)  # opset-9 Softmax: over all but N
        ref = float_reference(m, x).reshape(logits.shape)
        prob = softmax(logits) if stripped else logits
        row.update(logit_rel_error=relative_error(logits, ref),
                   output_rel_error=relative_error(prob.reshape(c.outputs[0].shape), c.outputs[0]),
                   output_max_abs_error=float(np.abs(prob.reshape(c.outputs[0].shape)
                                                     - c.outputs[0]).max()),
                   argmax_agree=argmax_agreement(prob, c.outputs[0]),
                   golden_cycles=ex.total_cycles)
    return row, program, rep
