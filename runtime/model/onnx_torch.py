"""ONNX -> trainable ``torch.nn.Module``, and back.

Why our own converter: onnx2torch hard-imports torchvision, which cannot live beside the CPU torch
build. This one is compact: float initializers become ``nn.Parameter``s (trainable), integer ones
buffers; the graph's nodes are turned once, at construction, into a flat plan of
``(function, input names, output names)`` steps that ``forward`` runs in topological order with
plain torch ops, so the per-step overhead stays a dictionary lookup per tensor.

``export_onnx`` writes the trained module back with torch's legacy (TorchScript) exporter, with a
dynamic batch axis so the result evaluates on any test-set size.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from morphware.runtime.model.safe_io import input_shape  # noqa: F401  (re-exported)
from onnx import numpy_helper
from torch import nn

Step = tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...]]
Attrs = dict[str, Any]


class UnsupportedOpError(ValueError):
    """The model uses an operator (or an attribute value) this converter cannot execute."""


def _attrs(node: onnx.NodeProto) -> Attrs:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ints(v: Any) -> list[int]:
    return [int(i) for i in v]


def _sym_pads(pads: Sequence[int], node: str) -> tuple[list[int], list[int] | None]:
    """ONNX pads [b1, b2, ..., e1, e2, ...] -> (torch symmetric padding, F.pad list or None)."""
    n = len(pads) // 2
    begin, end = list(pads[:n]), list(pads[n:])
    if begin == end:
        return begin, None
    fpad: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        fpad += [b, e]
    return [0] * n, fpad


class OpBuilder:
    """Turns one ONNX node into a plan step; one method per op type. A subclass may route some
    ops elsewhere (``array_training`` sends Gemm/MatMul/Conv to the systolic array)."""

    def __init__(self, opset: int, consts: dict[str, torch.Tensor]):
        self.opset = opset
        self.consts = consts  # initializers and Constant outputs known at build time

    def build(self, node: onnx.NodeProto) -> Callable[..., Any]:
        fn = getattr(self, f"op_{node.op_type}", None)
        if fn is None:
            raise UnsupportedOpError(
                f"node {node.name or '?'!r}: op {node.op_type!r} is not supported by the ONNX->torch "
                f"converter (supported: {', '.join(supported_ops())})")
        return fn(node, _attrs(node))

    def const(self, node: onnx.NodeProto, i: int) -> torch.Tensor | None:
        """The build-time value of input ``i`` if it is a constant (e.g. a Reshape's shape)."""
        if i >= len(node.input) or not node.input[i]:
            return None
        return self.consts.get(node.input[i])

    # -- linear algebra ---------------------------------------------------------------------
    def op_Gemm(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
        if alpha == 1.0 and beta == 1.0 and not ta and tb:
            return lambda x, w, b=None: F.linear(x, w, b)  # torch's own Linear export: fast path

        def gemm(x: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
            y = (x.t() if ta else x) @ (w.t() if tb else w)
            if alpha != 1.0:
                y = y * alpha
            if c is not None:
                y = y + (c * beta if beta != 1.0 else c)
            return y
        return gemm

    def op_MatMul(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.matmul

    # -- elementwise ------------------------------------------------------------------------
    def op_Add(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.add

    def op_Sub(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.sub

    def op_Mul(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.mul

    def op_Div(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        def div(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if not x.is_floating_point() and not y.is_floating_point():
                return torch.div(x, y, rounding_mode="trunc")  # ONNX integer division truncates
            return torch.div(x, y)
        return div

    def op_Pow(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.pow

    def op_Neg(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.neg

    def op_Abs(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.abs

    def op_Sqrt(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.sqrt

    def op_Exp(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.exp

    def op_Log(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.log

    def op_Relu(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return F.relu

    def op_LeakyRelu(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        slope = float(a.get("alpha", 0.01))
        return lambda x: F.leaky_relu(x, slope)

    def op_Sigmoid(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.sigmoid

    def op_Tanh(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return torch.tanh

    def op_Clip(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        if "min" in a or "max" in a:  # opset < 11: bounds are attributes
            lo, hi = a.get("min"), a.get("max")
            return lambda x: torch.clamp(x, lo, hi)
        return lambda x, lo=None, hi=None: torch.clamp(x, lo, hi)

    def op_Cast(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        np_dtype = onnx.helper.tensor_dtype_to_np_dtype(int(a["to"]))
        dtype = torch.from_numpy(np.zeros(0, dtype=np_dtype)).dtype
        return lambda x: x.to(dtype)

    def _softmax(self, a: Attrs, fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
        if self.opset >= 13:
            axis = int(a.get("axis", -1))
            return lambda x: fn(x, dim=axis)
        axis = int(a.get("axis", 1))  # opset < 13: coerce to 2-D at ``axis``, normalise rows

        def coerced(x: torch.Tensor) -> torch.Tensor:
            ax = axis % x.dim()
            flat = x.reshape(math.prod(x.shape[:ax]), -1)
            return fn(flat, dim=1).reshape(x.shape)
        return coerced

    def op_Softmax(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return self._softmax(a, torch.softmax)

    def op_LogSoftmax(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return self._softmax(a, torch.log_softmax)

    # -- convolution and pooling ------------------------------------------------------------
    def _spatial(self, node: onnx.NodeProto, a: Attrs, k: int) -> tuple[list[int], list[int] | None]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID"):
            raise UnsupportedOpError(f"node {node.name!r}: {node.op_type} auto_pad={auto} is not "
                                     "supported; export with explicit pads")
        pads = _ints(a.get("pads", [0] * (2 * k))) if auto == "NOTSET" else [0] * (2 * k)
        return _sym_pads(pads, node.name)

    def op_Conv(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        w = self.const(node, 1)
        k = len(a["kernel_shape"]) if "kernel_shape" in a else (w.dim() - 2 if w is not None else 2)
        if k != 2:
            raise UnsupportedOpError(f"node {node.name!r}: only 2-D Conv is supported, got {k}-D")
        stride = _ints(a.get("strides", [1, 1]))
        dil = _ints(a.get("dilations", [1, 1]))
        groups = int(a.get("group", 1))
        pad, fpad = self._spatial(node, a, 2)

        def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
            if fpad is not None:
                x = F.pad(x, fpad)
            return F.conv2d(x, w, b, stride, pad, dil, groups)
        return conv

    def _pool_common(self, node: onnx.NodeProto, a: Attrs) -> tuple[list[int], list[int],
                                                                      list[int], list[int] | None]:
        kernel = _ints(a["kernel_shape"])
        if len(kernel) != 2:
            raise UnsupportedOpError(f"node {node.name!r}: only 2-D {node.op_type} is supported")
        stride = _ints(a.get("strides", [1, 1]))
        pad, fpad = self._spatial(node, a, 2)
        return kernel, stride, pad, fpad

    def op_MaxPool(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedOpError(f"node {node.name!r}: MaxPool Indices output is not supported")
        kernel, stride, pad, fpad = self._pool_common(node, a)
        dil = _ints(a.get("dilations", [1, 1]))
        ceil = bool(a.get("ceil_mode", 0))

        def maxpool(x: torch.Tensor) -> torch.Tensor:
            if fpad is not None:
                x = F.pad(x, fpad, value=float("-inf"))
            return F.max_pool2d(x, kernel, stride, pad, dil, ceil_mode=ceil)
        return maxpool

    def op_AveragePool(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        kernel, stride, pad, fpad = self._pool_common(node, a)
        if fpad is not None:
            raise UnsupportedOpError(f"node {node.name!r}: asymmetric AveragePool pads unsupported")
        ceil = bool(a.get("ceil_mode", 0))
        incl = bool(a.get("count_include_pad", 0))
        return lambda x: F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil,
                                      count_include_pad=incl)

    def op_GlobalAveragePool(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)

    def op_GlobalMaxPool(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return lambda x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True)

    def op_BatchNormalization(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        if len(node.output) > 1 and any(node.output[1:]):
            raise UnsupportedOpError(
                f"node {node.name!r}: BatchNormalization with running-stat outputs (a training-"
                "mode export) is not supported; export the model in eval mode")
        eps = float(a.get("epsilon", 1e-5))
        momentum = 1.0 - float(a.get("momentum", 0.9))  # ONNX keeps, torch mixes in
        bn = F.batch_norm
        return lambda x, s, b, mean, var, *, training=False: bn(
            x, mean, var, s, b, training, momentum, eps)

    def op_Dropout(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedOpError(f"node {node.name!r}: Dropout mask output is not supported")
        ratio_attr = float(a.get("ratio", 0.5))

        def dropout(x: torch.Tensor, ratio: torch.Tensor | None = None,
                    mode: torch.Tensor | None = None, *, training: bool = False) -> torch.Tensor:
            p = float(ratio) if ratio is not None else ratio_attr
            return F.dropout(x, p, training)
        return dropout

    # -- shape manipulation -----------------------------------------------------------------
    def op_Identity(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return lambda x: x

    def op_Flatten(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        axis = int(a.get("axis", 1))
        if axis == 1:
            return lambda x: x.flatten(1)

        def flatten(x: torch.Tensor) -> torch.Tensor:
            ax = axis % x.dim() if axis < 0 else axis
            return x.reshape(math.prod(x.shape[:ax]), -1) if ax else x.reshape(1, -1)
        return flatten

    def op_Reshape(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        allowzero = int(a.get("allowzero", 0))
        const = self.const(node, 1)
        if const is not None:  # static target: resolve zeros against the input each call
            target = [int(v) for v in const.tolist()]
            zeros = [i for i, v in enumerate(target) if v == 0] if not allowzero else []
            if not zeros:
                return lambda x, _s: x.reshape(target)

            def reshape_static(x: torch.Tensor, _s: torch.Tensor) -> torch.Tensor:
                shape: list[Any] = list(target)
                for i in zeros:
                    shape[i] = x.shape[i]
                return x.reshape(shape)
            return reshape_static

        def reshape_dynamic(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            # 0-d tensors (not .tolist()) keep a traced batch size symbolic when re-exported
            vals = s.tolist()
            dims: list[Any] = [x.shape[i] if v == 0 and not allowzero else s[i]
                               for i, v in enumerate(vals)]
            return x.reshape(dims)
        return reshape_dynamic

    def op_Transpose(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        perm = _ints(a["perm"]) if "perm" in a else None
        if perm is None:
            return lambda x: x.permute(*reversed(range(x.dim())))
        return lambda x: x.permute(perm)

    def op_Concat(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        axis = int(a["axis"])
        return lambda *xs: torch.cat(xs, dim=axis)

    def op_Shape(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        start, end = a.get("start", 0), a.get("end")
        if start == 0 and end is None:
            return torch._shape_as_tensor
        return lambda x: torch._shape_as_tensor(x)[start:end]

    def op_Gather(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        axis = int(a.get("axis", 0))
        const = self.const(node, 1)
        if const is not None and bool((const >= 0).all()):  # the common case: no wrap-around

            def gather_const(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                ax = axis % x.dim()
                out = torch.index_select(x, ax, idx.reshape(-1))
                return out.reshape((*x.shape[:ax], *idx.shape, *x.shape[ax + 1:]))
            return gather_const

        def gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            ax = axis % x.dim()
            idx = torch.where(idx < 0, idx + x.shape[ax], idx)
            out = torch.index_select(x, ax, idx.reshape(-1))
            return out.reshape((*x.shape[:ax], *idx.shape, *x.shape[ax + 1:]))
        return gather

    def _axes(self, node: onnx.NodeProto, a: Attrs) -> list[int] | None:
        if "axes" in a:
            return _ints(a["axes"])
        c = self.const(node, 1)
        return [int(v) for v in c.tolist()] if c is not None else None

    def op_Unsqueeze(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        axes = self._axes(node, a)
        if axes is None:
            raise UnsupportedOpError(f"node {node.name!r}: Unsqueeze with computed axes")

        def unsqueeze(x: torch.Tensor, _axes: torch.Tensor | None = None) -> torch.Tensor:
            rank = x.dim() + len(axes)
            for ax in sorted(v % rank for v in axes):
                x = x.unsqueeze(ax)
            return x
        return unsqueeze

    def op_Squeeze(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        axes = self._axes(node, a)
        if axes is None and len(node.input) > 1 and node.input[1]:
            raise UnsupportedOpError(f"node {node.name!r}: Squeeze with computed axes")

        def squeeze(x: torch.Tensor, _axes: torch.Tensor | None = None) -> torch.Tensor:
            if axes is None:
                return x.squeeze()
            return x.squeeze(tuple(v % x.dim() for v in axes))
        return squeeze

    def _reduce(self, node: onnx.NodeProto, a: Attrs, fn: Callable[..., torch.Tensor]
                ) -> Callable[..., Any]:
        axes = self._axes(node, a)
        keep = bool(a.get("keepdims", 1))

        def reduce(x: torch.Tensor, _axes: torch.Tensor | None = None) -> torch.Tensor:
            dims = tuple(axes) if axes else tuple(range(x.dim()))
            return fn(x, dim=dims, keepdim=keep)
        return reduce

    def op_ReduceMean(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return self._reduce(node, a, torch.mean)

    def op_ReduceSum(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        return self._reduce(node, a, torch.sum)


def supported_ops() -> list[str]:
    """ONNX op types the converter executes."""
    return sorted(n.removeprefix("op_") for n in dir(OpBuilder) if n.startswith("op_"))


_TRAINING_AWARE = frozenset({"BatchNormalization", "Dropout"})


def _undo_initializer_dedup(graph: onnx.GraphProto) -> onnx.GraphProto:
    """torch's exporter shares equal initializers through Identity nodes (a fresh BatchNorm's
    bias and running mean are both zeros); give each its own copy so they train independently."""
    inits = {t.name: t for t in graph.initializer}
    if not any(n.op_type == "Identity" and n.input[0] in inits for n in graph.node):
        return graph
    g = onnx.GraphProto()
    g.CopyFrom(graph)
    del g.node[:]
    for n in graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
        else:
            g.node.append(n)
    return g


def _running_stats(graph: onnx.GraphProto) -> set[str]:
    """Initializers feeding BatchNorm mean/var (possibly through Identity nodes, as torch's
    exporter writes them): statistics, kept as buffers rather than learnable parameters."""
    source = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    out = set()
    for n in graph.node:
        if n.op_type == "BatchNormalization":
            for name in n.input[3:5]:
                while name in source:
                    name = source[name]
                out.add(name)
    return out


def _safe_name(name: str, taken: set[str]) -> str:
    base = "p_" + re.sub(r"\W", "_", name)
    out, i = base, 1
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


BuilderFactory = Callable[[int, dict[str, torch.Tensor]], OpBuilder]


class OnnxModule(nn.Module):
    """A torch module that executes an ONNX graph; its float initializers are trainable.
    ``builder`` makes the op builder from (opset, build-time constants)."""

    def __init__(self, model: onnx.ModelProto, builder: BuilderFactory = OpBuilder):
        super().__init__()
        graph = _undo_initializer_dedup(model.graph)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.opset = int(opset)
        init_names = {t.name for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in init_names]
        self.output_names = [o.name for o in graph.output]
        self._tensor_attr: list[tuple[str, str]] = []  # (onnx name, parameter/buffer name)
        taken: set[str] = set()
        consts: dict[str, torch.Tensor] = {}
        stats = _running_stats(graph)
        for t in graph.initializer:
            arr = numpy_helper.to_array(t)
            tensor = torch.from_numpy(np.array(arr, copy=True))
            attr = _safe_name(t.name, taken)
            if tensor.is_floating_point() and t.name not in stats:
                self.register_parameter(attr, nn.Parameter(tensor))
            else:
                self.register_buffer(attr, tensor)
            self._tensor_attr.append((t.name, attr))
            consts[t.name] = tensor
        self._plan: list[tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...], bool]] = []
        ops = builder(self.opset, consts)
        for node in graph.node:
            if node.op_type == "Constant":
                self._add_constant(node, consts, taken)
                continue
            fn = ops.build(node)
            ins = tuple(node.input)
            while ins and not ins[-1]:
                ins = ins[:-1]
            self._plan.append((fn, ins, tuple(o for o in node.output if o),
                               node.op_type in _TRAINING_AWARE))

    def _add_constant(self, node: onnx.NodeProto, consts: dict[str, torch.Tensor],
                      taken: set[str]) -> None:
        a = _attrs(node)
        if "value" not in a:
            raise UnsupportedOpError(f"node {node.name!r}: Constant without a tensor 'value'")
        tensor = torch.from_numpy(np.array(numpy_helper.to_array(a["value"]), copy=True))
        attr = _safe_name(node.output[0], taken)
        self.register_buffer(attr, tensor)
        self._tensor_attr.append((node.output[0], attr))
        consts[node.output[0]] = tensor

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"model takes {len(self.input_names)} input(s) "
                             f"{self.input_names}, got {len(inputs)}")
        env: dict[str, Any] = dict(zip(self.input_names, inputs, strict=True))
        params, buffers = self._parameters, self._buffers
        for name, attr in self._tensor_attr:
            t = params.get(attr)
            env[name] = t if t is not None else buffers[attr]
        training = self.training
        for fn, ins, outs, aware in self._plan:
            args = [env[i] if i else None for i in ins]
            y = fn(*args, training=training) if aware else fn(*args)
            if len(outs) == 1:
                env[outs[0]] = y
            else:
                for o, v in zip(outs, y, strict=False):
                    env[o] = v
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return tuple(env[o] for o in self.output_names)


def to_torch(model: onnx.ModelProto | str | Path,
             builder: BuilderFactory = OpBuilder) -> OnnxModule:
    """Convert an ONNX model (already checked with ``safe_io``) to a trainable module."""
    if not isinstance(model, onnx.ModelProto):
        from morphware.runtime.model.safe_io import load_onnx

        model = load_onnx(model)
    return OnnxModule(model, builder)


def export_onnx(module: OnnxModule, example: torch.Tensor, path: str | Path,
                opset: int | None = None, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``module`` (in eval mode) as ONNX with a dynamic batch axis, with ``metadata``
    among its metadata_props (written once: the file is never reopened); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    ins, outs = module.input_names, module.output_names
    dyn = {n: {0: "batch"} for n in (*ins, *outs)}
    try:
        with warnings.catch_warnings():
            # the legacy exporter is chosen on purpose (BatchNorm stays unfolded, a dynamic batch
            # axis, no dynamo dependency); its deprecation and tracer notes are noise here
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            buf = io.BytesIO()
            torch.onnx.export(module, (example,), buf, dynamo=False, input_names=ins,
                              output_names=outs, dynamic_axes=dyn,
                              opset_version=max(opset or module.opset, 13),
                              do_constant_folding=False)
    finally:
        module.train(was_training)
    model = onnx.load_from_string(buf.getvalue())
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
