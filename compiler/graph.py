"""The compiler's float IR: a topologically ordered list of ops, extracted from hls4ml's ModelGraph
after its optimizer passes (batch-norm folded, bias adds fused, layouts channels-last).

Array ops are ``dense`` (weight ``(K, N)``, acting on the last axis) and ``conv2d`` (weight
``(KH, KW, Cin, Cout)``, NHWC); every other op is a host op from :mod:`hostops`. The float
executor here is the reference the quantiser calibrates against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from morphware.compiler import hostops
from morphware.compiler.errors import CompileError

ARRAY_OPS = ("dense", "conv2d")


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FloatGraph:
    input: str
    input_shape: tuple[int, ...]          # per sample, in the layout the user feeds
    outputs: list[str]
    nodes: list[Node]
    shapes: dict[str, tuple[int, ...]]    # per-sample shape of every tensor
    fixed_ranges: dict[str, float] = field(default_factory=dict)  # max |x| given by the model (QDQ)

    @property
    def output(self) -> str:
        return self.outputs[0]

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def run(self, x: np.ndarray, keep: bool = False) -> dict[str, np.ndarray]:
        """Float execution on a batch ``x`` of shape ``(N, *input_shape)``.

        Returns the outputs by name, or every tensor when ``keep`` is true. A node whose
        arithmetic fails, or whose result does not have the shape recorded for it, raises
        CompileError naming it.
        """
        env: dict[str, np.ndarray] = {self.input: np.asarray(x, np.float32)}
        for n in self.nodes:
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # non-finite: refused later
                    env[n.output] = run_float_node(n, [env[i] for i in n.inputs])
            except (ValueError, IndexError, TypeError, KeyError) as e:
                raise CompileError(f"node {n.name}: op {n.op}: {e}") from e
            want = self.shapes.get(n.output)
            if want is not None and tuple(env[n.output].shape[1:]) != tuple(want):
                raise CompileError(f"node {n.name}: op {n.op}: output shape "
                                   f"{env[n.output].shape[1:]} differs from the inferred {want}")
        return env if keep else {o: env[o] for o in self.outputs}


def conv_float(x: np.ndarray, w: np.ndarray, b: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    """Float (grouped, dilated) convolution of an NHWC batch; ``w`` is (KH, KW, Cin/g, Cout)."""
    g = int(a.get("groups", 1))
    cg, ng = w.shape[2], w.shape[3] // g
    ys = []
    for j in range(g):
        cols = hostops.im2col(x[..., j * cg:(j + 1) * cg], a["kh"], a["kw"], a["sh"], a["sw"],
                              tuple(a["pads"]), a.get("dh", 1), a.get("dw", 1))
        wj = w[..., j * ng:(j + 1) * ng].reshape(-1, ng)
        ys.append(cols @ wj)
    y = np.concatenate(ys, axis=1) + b
    oh, ow = hostops.conv_out_hw(x.shape[1], x.shape[2], a["kh"], a["kw"], a["sh"], a["sw"],
                                 tuple(a["pads"]), a.get("dh", 1), a.get("dw", 1))
    return y.reshape(x.shape[0], oh, ow, -1).astype(np.float32)


def run_float_node(n: Node, xs: list[np.ndarray]) -> np.ndarray:
    x = xs[0] if xs else None
    if n.op == "dense":
        return (x @ n.arrays["w"] + n.arrays["b"]).astype(np.float32)
    if n.op == "conv2d":
        return conv_float(x, n.arrays["w"], n.arrays["b"], n.attrs)
    return np.asarray(hostops.run_host(n.op, xs, n.attrs, n.arrays), np.float32)


# ---------------------------------------------------------------- extraction from hls4ml
def _attr(layer: Any, key: str, default: Any = None) -> Any:
    v = layer.get_attr(key)
    return default if v is None else v


def _weight(layer: Any, key: str) -> np.ndarray:
    return np.asarray(layer.weights[key].data, dtype=np.float32)


def _pads(layer: Any) -> list[int]:
    return [int(_attr(layer, k, 0)) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")]


def _conv_node(layer: Any, inputs: list[str], out: str) -> Node:
    w = _weight(layer, "weight")
    if w.ndim != 4:
        raise CompileError(f"node {layer.name}: Conv2D weight has shape {w.shape}, expected 4-D")
    for k in ("dilation_height", "dilation_width"):
        if int(_attr(layer, k, 1)) != 1:
            raise CompileError(f"node {layer.name}: op Conv2D with {k}="
                               f"{_attr(layer, k)} is not supported (dilation must be 1)")
    b = _weight(layer, "bias") if "bias" in layer.weights else np.zeros(w.shape[-1], np.float32)
    attrs = {"kh": w.shape[0], "kw": w.shape[1], "sh": int(_attr(layer, "stride_height", 1)),
             "sw": int(_attr(layer, "stride_width", 1)), "pads": _pads(layer)}
    return Node(layer.name, "conv2d", inputs, out, attrs, {"w": w, "b": b.reshape(-1)})


def _dense_node(layer: Any, inputs: list[str], out: str) -> Node:
    w = _weight(layer, "weight")
    b = _weight(layer, "bias") if "bias" in layer.weights else np.zeros(w.shape[-1], np.float32)
    b = np.broadcast_to(b.reshape(-1), (w.shape[1],)).astype(np.float32)
    return Node(layer.name, "dense", inputs, out, {}, {"w": w, "b": b})


def _pool_node(layer: Any, inputs: list[str], out: str) -> Node:
    op = {"max": "maxpool", "average": "avgpool"}.get(str(_attr(layer, "pool_op", "")).lower())
    if op is None:
        raise CompileError(f"node {layer.name}: op {layer.class_name} with pool_op="
                           f"{_attr(layer, 'pool_op')!r} is not supported")
    attrs = {"kh": int(_attr(layer, "pool_height")), "kw": int(_attr(layer, "pool_width")),
             "sh": int(_attr(layer, "stride_height", 1)), "sw": int(_attr(layer, "stride_width", 1)),
             "pads": _pads(layer)}
    return Node(layer.name, op, inputs, out, attrs)


_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
                "linear": "identity", "leakyrelu": "leaky_relu", "elu": "elu",
                "softplus": "softplus", "softsign": "softsign"}
_MERGES = {"add": "add", "subtract": "sub", "multiply": "mul", "average": "avg",
           "maximum": "max"}


def _layer_node(layer: Any, inputs: list[str], out: str) -> Node:
    """Translate one hls4ml layer; anything unknown stops with the layer's name and class."""
    cls = layer.class_name
    if cls == "Dense":
        return _dense_node(layer, inputs, out)
    if cls == "Conv2D":
        return _conv_node(layer, inputs, out)
    if cls == "Pooling2D":
        return _pool_node(layer, inputs, out)
    if cls == "GlobalPooling2D":
        op = "global_maxpool" if str(_attr(layer, "pool_op", "")).lower() == "max" else "global_avgpool"
        return Node(layer.name, op, inputs, out)
    if cls in ("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "ParametrizedActivation"):
        act = str(_attr(layer, "activation", cls)).lower().replace("_", "")
        if act not in _ACTIVATIONS:
            raise CompileError(f"node {layer.name}: op {cls} activation {act!r} is not supported")
        default = {"leakyrelu": 0.01, "elu": 1.0}
        attrs = ({"alpha": float(_attr(layer, "activ_param", default[act]))}
                 if act in default else {})
        return Node(layer.name, _ACTIVATIONS[act], inputs, out, attrs)
    if cls == "ZeroPadding2D":
        return Node(layer.name, "pad", inputs, out, {"pads": _pads(layer)})
    if cls == "Concatenate":
        rank = len(layer.get_output_variable().shape)
        axis = int(_attr(layer, "axis", -1))
        # hls4ml keeps ONNX's axis, which counts the batch axis as ours do
        return Node(layer.name, "concat", inputs, out, {"axis": axis + rank + 1 if axis < 0 else axis})
    if cls == "Reshape":
        return Node(layer.name, "reshape", inputs, out,
                    {"shape": [int(s) for s in layer.get_output_variable().shape]})
    if cls == "Transpose":
        return Node(layer.name, "transpose", inputs, out, {"perm": [int(p) for p in _attr(layer, "perm")]})
    if cls == "Merge":
        op = str(_attr(layer, "op", "")).lower()
        if op not in _MERGES or len(inputs) != 2:
            raise CompileError(f"node {layer.name}: op Merge({op}) is not supported")
        return Node(layer.name, _MERGES[op], inputs, out)
    if cls == "BatchNormalization":
        arrays = {"scale": _weight(layer, "scale").reshape(-1), "bias": _weight(layer, "bias").reshape(-1)}
        return Node(layer.name, "affine", inputs, out, {}, arrays)
    raise CompileError(f"node {layer.name}: op {cls} is not supported by the Systolic compiler "
                       f"(neither on the array nor as a host op)")


def from_modelgraph(model: Any) -> FloatGraph:
    """Build the float IR from an hls4ml ModelGraph (after its convert/optimize flows)."""
    layers = list(model.get_layers())
    inputs = [lyr for lyr in layers if lyr.class_name == "Input"]
    if len(inputs) != 1:
        raise CompileError(f"model has {len(inputs)} inputs; the Systolic compiler needs exactly one")
    outs = list(model.outputs)
    if len(outs) != 1:
        raise CompileError(f"model has {len(outs)} outputs; the Systolic compiler needs exactly one")
    inp = inputs[0]
    shapes = {inp.outputs[0]: tuple(int(s) for s in inp.get_output_variable().shape)}
    nodes = []
    for layer in layers:
        if layer is inp:
            continue
        node = _layer_node(layer, list(layer.inputs), layer.outputs[0])
        nodes.append(node)
        shapes[node.output] = tuple(int(s) for s in layer.get_output_variable().shape)
    g = FloatGraph(inp.outputs[0], shapes[inp.outputs[0]], [outs[0]], nodes, shapes)
    _check_shapes(g)
    return g


def _check_shapes(g: FloatGraph) -> None:
    """Run a zero sample through the graph: catches shapes hls4ml could not infer consistently
    (typically layouts qonnx could not convert to channels-last), naming the node."""
    env = {g.input: np.zeros((1, *g.input_shape), np.float32)}
    for n in g.nodes:
        try:
            env[n.output] = run_float_node(n, [env[i] for i in n.inputs])
        except (ValueError, IndexError) as e:
            raise CompileError(f"node {n.name}: op {n.op}: shapes do not infer ({e})") from e
        got, want = env[n.output].shape[1:], g.shapes[n.output]
        if int(np.prod(got)) != int(np.prod(want)):
            raise CompileError(f"node {n.name}: op {n.op}: output shape {got} differs from the "
                               f"shape hls4ml inferred, {want}")
