"""Front end: any model source -> a validated, qonnx-cleaned ONNX model -> hls4ml ModelGraph.

Validation happens before qonnx/hls4ml see the model so that malformed files, ops no route can
run and shapes that do not infer are reported with the node, op or field at fault.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from morphware.compiler.errors import CompileError

QONNX_IR_VERSION = 10  # onnxruntime inside qonnx accepts IR <= 13; onnx 1.23 stamps 14


def load_onnx(model: Any, example_input: Any = None) -> onnx.ModelProto:
    """An ONNX ModelProto from a path, bytes, a ModelProto or a torch module (+ example input)."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise CompileError(f"model file {path} does not exist")
        return _parse(path.read_bytes(), str(path))
    if isinstance(model, (bytes, bytearray)):
        return _parse(bytes(model), "model bytes")
    if hasattr(model, "forward") and hasattr(model, "parameters"):
        return export_torch(model, example_input)
    raise CompileError(f"cannot compile a {type(model).__name__}: pass an ONNX path, bytes, "
                       "an onnx.ModelProto or a torch.nn.Module with an example input")


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    try:
        m = onnx.load_from_string(data)
    except Exception as e:  # protobuf raises DecodeError/RuntimeWarning variants
        raise CompileError(f"{where}: malformed or truncated ONNX ({type(e).__name__}: {e})") from e
    if not m.graph.node:
        raise CompileError(f"{where}: malformed or truncated ONNX (graph has no nodes)")
    return m


def export_torch(module: Any, example_input: Any) -> onnx.ModelProto:
    """Export an eval-mode torch module with the legacy exporter (batch-norm left unfolded so that
    hls4ml folds it)."""
    import torch

    if example_input is None:
        raise CompileError("a torch module needs an example input (one sample with batch axis)")
    x = torch.as_tensor(np.asarray(example_input, np.float32))
    module.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is deliberate
        torch.onnx.export(module, (x,), buf, dynamo=False, do_constant_folding=False,
                          input_names=["input"], output_names=["output"])
    return onnx.load_from_string(buf.getvalue())


def _fix_batch(m: onnx.ModelProto) -> None:
    """Pin a symbolic leading (batch) dimension of the input to 1, as hls4ml expects."""
    for vi in list(m.graph.input[:1]) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1


def input_shape(m: onnx.ModelProto) -> tuple[int, ...]:
    """Per-sample shape of the (single) graph input, batch axis dropped."""
    inits = {i.name for i in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise CompileError(f"model has {len(ins)} graph inputs; the compiler needs exactly one")
    dims = ins[0].type.tensor_type.shape.dim
    shape = []
    for i, d in enumerate(dims):
        if not d.HasField("dim_value") and i > 0:
            raise CompileError(f"input {ins[0].name!r}: dimension {i} ({d.dim_param!r}) is not "
                               "fixed; export the model with a static input shape")
        shape.append(d.dim_value if d.HasField("dim_value") else 1)
    if not shape:
        raise CompileError(f"input {ins[0].name!r}: shape is unknown")
    return tuple(shape[1:])


def validate(m: onnx.ModelProto) -> None:
    """Structural check, layer options no route supports, and shape inference, on the model as
    given (before qonnx renames its nodes)."""
    try:
        onnx.checker.check_model(m)
    except onnx.checker.ValidationError as e:
        raise CompileError(f"invalid ONNX model: {str(e).splitlines()[0]}") from e
    for n in m.graph.node:
        if n.op_type == "AveragePool":
            # qonnx leaves AveragePool channels-first and hls4ml then refuses the graph
            raise CompileError(f"node {n.name}: op AveragePool is not supported (qonnx cannot "
                               "convert it to channels-last); use MaxPool or GlobalAveragePool")
        if n.op_type == "Conv":
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            if group != 1:
                raise CompileError(f"node {n.name}: op Conv with group={group} is not supported "
                                   "(groups must be 1)")
    try:
        onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    except Exception as e:
        raise CompileError(f"shapes do not infer: {str(e).splitlines()[0]}") from e


def check_ops(m: onnx.ModelProto, original: onnx.ModelProto | None = None) -> None:
    """Op support of the cleaned model (after qonnx folded shape arithmetic into constants).

    qonnx renames nodes, so messages use the node's name in ``original`` where it can be found.
    """
    from morphware.compiler.ops import supported_ops

    supported = supported_ops()
    first_name = {}
    for n in (original.graph.node if original is not None else []):
        first_name.setdefault(n.op_type, n.name)
    for n in m.graph.node:
        if n.op_type not in supported:
            name = first_name.get(n.op_type) or n.name or "(unnamed)"
            raise CompileError(f"node {name}: op {n.op_type} is not supported "
                               "(no array lowering and no host implementation)")


@contextlib.contextmanager
def _qonnx_ir_version() -> Iterator[None]:
    old = onnx.IR_VERSION
    onnx.IR_VERSION = min(old, QONNX_IR_VERSION)
    try:
        yield
    finally:
        onnx.IR_VERSION = old


QONNX_TIMEOUT_S = 60.0  # qonnx's ConvertToChannelsLastAndClean can loop forever on some graphs


def _qonnx_transforms(m: onnx.ModelProto) -> bytes:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    with _qonnx_ir_version(), warnings.catch_warnings():
        # GemmToMatMul warns about every Gemm newer than opset 9; the conversion is still exact.
        warnings.filterwarnings("ignore", message="The GemmToMatMul transformation")
        try:
            w = cleanup_model(ModelWrapper(m))
            w = w.transform(ConvertToChannelsLastAndClean())
            w = w.transform(GemmToMatMul())
            w = cleanup_model(w)
        except Exception as e:
            raise CompileError(f"qonnx clean-up failed: {type(e).__name__}: {e}") from e
    return w.model.SerializeToString()


def clean(m: onnx.ModelProto, timeout_s: float = QONNX_TIMEOUT_S) -> Any:
    """qonnx clean-up to the form hls4ml's ONNX parser wants; returns a qonnx ModelWrapper.

    The qonnx transforms run in a bounded child process (:func:`prepare.run_bounded`): a graph
    they cannot finish ends in a CompileError after ``timeout_s`` instead of hanging."""
    from morphware.compiler.prepare import run_bounded
    from qonnx.core.modelwrapper import ModelWrapper

    original = m
    m = onnx.ModelProto.FromString(m.SerializeToString())
    m.ir_version = min(m.ir_version, QONNX_IR_VERSION)
    _fix_batch(m)
    data = run_bounded(lambda: _qonnx_transforms(m), "model", "qonnx clean-up", timeout_s)
    w = ModelWrapper(onnx.ModelProto.FromString(data))
    check_ops(w.model, original)
    return w


HLS_CONFIG = {"Model": {"Precision": {"default": "fixed<16,6>", "result": "auto"},
                        "ReuseFactor": 1, "Strategy": "Latency"}}


def to_hls(wrapper: Any, backend: str, output_dir: str, **backend_kwargs: Any) -> Any:
    """hls4ml's ONNX parser + flows on the cleaned model (its chatter kept off stdout)."""
    import hls4ml

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return hls4ml.converters.convert_from_onnx_model(
                wrapper, output_dir=output_dir, backend=backend, hls_config=HLS_CONFIG,
                **backend_kwargs)
        except CompileError:
            raise
        except Exception as e:
            raise CompileError(f"hls4ml could not convert the model: {type(e).__name__}: {e}") from e
