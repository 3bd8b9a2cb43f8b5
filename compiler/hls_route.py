"""The second route: hls4ml's stock Vitis backend. Writes an HLS project and runs its C simulation
(``compile()``/``predict()``, g++ only), compared with the float model run by onnxruntime."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from morphware.compiler import frontend
from morphware.compiler.errors import CompileError


@dataclass
class HlsResult:
    project_dir: Path
    max_abs_error: float
    top1_agreement: float   # fraction of samples whose argmax matches float
    samples: int


def float_reference(mp: Any, x: np.ndarray) -> np.ndarray:
    """The original ONNX model in float (onnxruntime), one sample at a time (batch is pinned 1)."""
    import onnxruntime as ort

    m = onnx.ModelProto.FromString(mp.SerializeToString())
    m.ir_version = min(m.ir_version, frontend.QONNX_IR_VERSION)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def build_hls(model: Any, x: np.ndarray, output_dir: str | Path, backend: str = "Vitis",
              precision: str = "fixed<16,6>", example_input: Any = None) -> HlsResult:
    """Write the hls4ml project for ``model`` into ``output_dir``, C-simulate it on ``x`` (in the
    model's input layout) and compare with float."""
    import hls4ml

    mp = frontend.load_onnx(model, example_input if example_input is not None else x[:1])
    frontend.validate(mp)
    shape = frontend.input_shape(mp)
    x = np.asarray(x, np.float32)
    if tuple(x.shape[1:]) != shape:
        raise CompileError(f"inputs: shape {x.shape} does not match the model input (N, {shape})")
    wrapper = frontend.clean(mp)
    out = Path(output_dir)
    with contextlib.redirect_stdout(io.StringIO()):
        cfg = hls4ml.utils.config_from_onnx_model(wrapper, granularity="name", backend=backend,
                                                  default_precision=precision)
        hm = hls4ml.converters.convert_from_onnx_model(
            wrapper, output_dir=str(out), backend=backend, hls_config=cfg)
        hm.compile()
        xl = _to_hls_layout(x, hm)
        y = np.asarray(hm.predict(np.ascontiguousarray(xl)), np.float32).reshape(len(x), -1)
    ref = float_reference(mp, x).reshape(len(x), -1)
    return HlsResult(out, float(np.abs(y - ref).max()),
                     float(np.mean(y.argmax(1) == ref.argmax(1))), len(x))


def _to_hls_layout(x: np.ndarray, hm: Any) -> np.ndarray:
    """NCHW -> NHWC when hls4ml's input variable is channels-last."""
    shape = tuple(int(s) for s in hm.get_input_variables()[0].shape)
    if x.ndim == 4 and shape == (x.shape[2], x.shape[3], x.shape[1]):
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(len(x), -1)
