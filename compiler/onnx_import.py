"""The ONNX importer: a prepared ONNX graph (see :mod:`prepare`) -> the compiler's float IR.

Every ONNX tensor may exist in two layouts: ``onnx`` (as the file has it, ``(N, C, H, W)``) and
``cl`` (channels-last, the layout of array ops: ``(N, H, W, C)``; a 1-D ``(N, C, L)`` tensor is
``(N, 1, L, C)`` so that 1-D convolutions and pools are their 2-D versions with H = 1). Ops that
care about layout (convolutions, pools, Flatten, Reshape, ...) ask for the layout they need and
the importer inserts the host transpose that converts, once per tensor. A Transpose that only
moves channels (Keras' NHWC inputs) becomes a change of layout and costs nothing.

Batch-norm, and a multiplication or addition of a per-channel constant, directly after a
convolution or dense layer are folded into its weights and bias. Each op the importer refuses
ends in a CompileError naming the node, the op and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from morphware.compiler.errors import CompileError
from morphware.compiler.graph import FloatGraph, Node
from onnx import numpy_helper

# ONNX axis -> channels-last axis, by ONNX rank (rank 3 becomes a 4-D (N, 1, L, C) tensor)
CL_AXIS = {3: {0: 0, 1: 3, 2: 2}, 4: {0: 0, 1: 3, 2: 1, 3: 2}}

UNARY = {
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus",
    "Softsign": "softsign", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Neg": "neg",
    "Abs": "abs", "Reciprocal": "reciprocal", "HardSwish": "hard_swish", "Erf": "erf",
    "LeakyRelu": "leaky_relu", "Elu": "elu", "Selu": "selu", "HardSigmoid": "hard_sigmoid",
    "Celu": "celu", "ThresholdedRelu": "thresholded_relu",
}
UNARY_ATTRS = {  # ONNX defaults of each activation's attributes
    "leaky_relu": {"alpha": 0.01}, "elu": {"alpha": 1.0}, "celu": {"alpha": 1.0},
    "selu": {"alpha": 1.6732632423543772, "gamma": 1.0507009873554805},
    "hard_sigmoid": {"alpha": 0.2, "beta": 0.5}, "thresholded_relu": {"alpha": 1.0},
}
BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min",
          "Pow": "pow", "Sum": "add", "Mean": "avg"}
REFUSED = {
    "ConvTranspose": "transposed convolution has no array lowering",
    "LSTM": "recurrent layers are not supported", "GRU": "recurrent layers are not supported",
    "RNN": "recurrent layers are not supported",
    "Gather": "indexing by a run-time tensor is not supported",
    "Resize": "resizing is not supported", "Upsample": "resizing is not supported",
    "If": "control flow is not supported", "Loop": "control flow is not supported",
    "Scan": "control flow is not supported",
}


MAX_ELEMENTS = 1 << 25   # per-sample elements of any activation (and of a conv's im2col rows)


def attrs_of(n: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


class Importer:
    """One import: ONNX tensors -> IR tensors per layout, and the IR nodes emitted so far."""

    def __init__(self, m: onnx.ModelProto) -> None:
        self.m = m
        self.consts = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
            t = vi.type.tensor_type
            if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
                self.shapes[vi.name] = tuple(int(d.dim_value) for d in t.shape.dim)
        self.nodes: list[Node] = []
        self.ir_shapes: dict[str, tuple[int, ...]] = {}
        self.forms: dict[str, dict[str, str]] = {}
        self.producer: dict[str, Node] = {}
        self.fixed: dict[str, float] = {}
        self.qdq: dict[str, tuple[str, float]] = {}
        self.uses: dict[str, int] = {}
        for n in m.graph.node:
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for o in m.graph.output:
            self.uses[o.name] = self.uses.get(o.name, 0) + 1
        self.node: onnx.NodeProto | None = None
        self.index = 0  # position of ``node`` in the graph, for messages about unnamed nodes

    # ------------------------------------------------------------ errors, shapes, layouts
    def fail(self, why: str) -> CompileError:
        n = self.node
        label = n.name if n is not None and n.name else (
            f"#{self.index} (output {n.output[0]!r})" if n is not None and n.output else "?")
        where = f"node {label}: op {n.op_type}: " if n is not None else ""
        return CompileError(f"{where}{why}")

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise self.fail(f"tensor {name!r} has no static shape")
        return self.shapes[name]

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.fail(f"{what} ({name!r}) must be a constant")
        return self.consts[name]

    def opt_const(self, n: onnx.NodeProto, i: int) -> np.ndarray | None:
        if len(n.input) <= i or not n.input[i]:
            return None
        return self.const(n.input[i], f"input {i}")

    def is_act(self, name: str) -> bool:
        return name in self.forms

    def emit(self, op: str, inputs: list[str], out: str, shape: tuple[int, ...],
             attrs: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None,
             name: str | None = None) -> str:
        size = int(np.prod(shape, dtype=np.float64))
        if size > MAX_ELEMENTS:
            raise self.fail(f"tensor {out!r} of shape {tuple(shape)} is larger than "
                            f"{MAX_ELEMENTS} elements per sample")
        base = name or (self.node.name if self.node is not None and self.node.name else op)
        if any(x.name == base for x in self.nodes):
            base = f"{base}#{len(self.nodes)}"
        node = Node(base, op, inputs, out, attrs or {}, arrays or {})
        self.nodes.append(node)
        self.ir_shapes[out] = tuple(int(s) for s in shape)
        self.producer[out] = node
        return out

    def layout_of(self, name: str) -> str:
        """The layout an element-wise op on ``name`` should use: cl when it exists (cheaper for
        the array ops around it), onnx otherwise."""
        return "cl" if "cl" in self.forms[name] else "onnx"

    def get(self, name: str, layout: str) -> str:
        """IR tensor of ONNX tensor ``name`` in ``layout``, converting (host transpose) if needed."""
        if name not in self.forms:
            raise self.fail(f"input {name!r} is a constant or undefined where an activation is "
                            "expected")
        forms = self.forms[name]
        rank = len(self.shape(name))
        if rank not in CL_AXIS or layout in forms:
            return forms.get(layout) or next(iter(forms.values()))
        s = self.shape(name)
        if layout == "cl":
            src = forms["onnx"]
            if rank == 4:
                out = self.emit("transpose", [src], f"{name}:cl", (s[2], s[3], s[1]),
                                {"perm": [1, 2, 0]}, name=f"{name}:to_cl")
            else:
                t = self.emit("transpose", [src], f"{name}:lc", (s[2], s[1]), {"perm": [1, 0]},
                              name=f"{name}:to_lc")
                out = self.emit("reshape", [t], f"{name}:cl", (1, s[2], s[1]),
                                {"shape": [1, s[2], s[1]]}, name=f"{name}:to_cl")
        else:
            src = forms["cl"]
            if rank == 4:
                out = self.emit("transpose", [src], f"{name}:nchw", s[1:], {"perm": [2, 0, 1]},
                                name=f"{name}:to_nchw")
            else:
                t = self.emit("reshape", [src], f"{name}:lc", (s[2], s[1]),
                              {"shape": [s[2], s[1]]}, name=f"{name}:to_lc")
                out = self.emit("transpose", [t], f"{name}:ncl", s[1:], {"perm": [1, 0]},
                                name=f"{name}:to_ncl")
        forms[layout] = out
        return out

    def cl_shape(self, s: tuple[int, ...]) -> tuple[int, ...]:
        return (s[2], s[3], s[1]) if len(s) == 4 else (1, s[2], s[1])

    def ir_shape(self, name: str, layout: str) -> tuple[int, ...]:
        s = self.shape(name)
        return self.cl_shape(s) if layout == "cl" and len(s) in CL_AXIS else s[1:]

    def put(self, name: str, layout: str, ir: str) -> None:
        """Record that ONNX tensor ``name`` is IR tensor ``ir`` in ``layout``."""
        if len(self.shape(name)) not in CL_AXIS:
            layout = "onnx"
        self.forms[name] = {layout: ir}

    def const_to(self, c: np.ndarray, rank: int, layout: str) -> np.ndarray:
        """A constant broadcastable against an ONNX tensor of ``rank``, in ``layout`` (with a
        size-1 batch axis so numpy broadcasts it over the batch)."""
        c = np.asarray(c, np.float32)
        if c.ndim > rank:
            raise self.fail(f"constant of rank {c.ndim} against an activation of rank {rank}")
        c = c.reshape((1,) * (rank - c.ndim) + c.shape)
        if c.shape[0] != 1:
            raise self.fail("a constant operand spans the batch axis")
        if layout == "cl" and rank == 4:
            return c.transpose(0, 2, 3, 1)
        if layout == "cl" and rank == 3:
            return c.transpose(0, 2, 1)[:, None]
        return c

    def channel_vector(self, c: np.ndarray, rank: int, channels: int) -> np.ndarray | None:
        """``c`` as a per-channel vector (ONNX axis 1) if it broadcasts along that axis only."""
        c = np.asarray(c, np.float32)
        if c.ndim > rank:
            return None
        full = c.reshape((1,) * (rank - c.ndim) + c.shape)
        others = [d for i, d in enumerate(full.shape) if i != min(1, rank - 1)]
        if any(d != 1 for d in others) or full.shape[min(1, rank - 1)] not in (1, channels):
            return None
        return np.broadcast_to(full.reshape(-1), (channels,)).astype(np.float32)

    def axis(self, a: int, rank: int) -> int:
        a = a + rank if a < 0 else a
        if not 0 <= a < rank:
            raise self.fail(f"axis {a} outside rank {rank}")
        if a == 0:
            raise self.fail("operating across the batch axis is not supported")
        return a

    # ------------------------------------------------------------ the walk
    def run(self) -> FloatGraph:
        g = self.m.graph
        inp = g.input[0]
        if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise CompileError(f"input {inp.name!r}: element type "
                               f"{onnx.TensorProto.DataType.Name(inp.type.tensor_type.elem_type)}"
                               " is not float32")
        self.forms[inp.name] = {"onnx": inp.name}
        self.ir_shapes[inp.name] = self.shape(inp.name)[1:]
        needed = self._needed()
        for idx, n in enumerate(g.node):
            if not any(o in needed for o in n.output):
                continue
            self.node, self.index = n, idx
            handler = HANDLERS.get(n.op_type)
            if handler is None:
                why = REFUSED.get(n.op_type, "no array lowering and no host implementation")
                raise self.fail(f"not supported ({why})")
            try:
                handler(self, n)
            except CompileError:
                raise
            except (ValueError, IndexError, KeyError, TypeError, AttributeError,
                    ZeroDivisionError, OverflowError) as e:
                raise self.fail(f"cannot translate ({type(e).__name__}: {e})") from e
        self.node = None
        outs = []
        for o in g.output:
            if o.name not in self.forms:
                raise CompileError(f"output {o.name!r} is not computed from the input")
            if o.name in self.qdq:
                raise CompileError(f"output {o.name!r} is a quantised integer tensor")
            outs.append(self.get(o.name, "onnx"))
        if len(set(outs)) != len(outs) or inp.name in outs:
            raise CompileError("outputs must be distinct tensors computed from the input")
        return FloatGraph(inp.name, self.ir_shapes[inp.name], outs, self.nodes,
                          dict(self.ir_shapes), fixed_ranges=dict(self.fixed))

    def _needed(self) -> set[str]:
        """Tensors the graph outputs depend on (nodes feeding nothing are skipped)."""
        need = {o.name for o in self.m.graph.output}
        for n in reversed(self.m.graph.node):
            if any(o in need for o in n.output):
                need.update(i for i in n.input if i)
        return need


# ---------------------------------------------------------------- convolution and dense
def _spatial(im: Importer, n: onnx.NodeProto, x: str, kernel: list[int],
             dilations: list[int]) -> tuple[list[int], list[int], tuple[int, int, int, int]]:
    """(kernel hw, strides hw, pads t b l r) of a 1-D or 2-D window op, auto_pad resolved."""
    a = attrs_of(n)
    s = im.shape(x)
    nd = len(s) - 2
    if nd not in (1, 2):
        raise im.fail(f"{nd}-D windows are not supported (1-D and 2-D only)")
    strides = list(a.get("strides", [1] * nd))
    pads = list(a.get("pads", [0] * 2 * nd))
    if len(kernel) != nd or len(strides) != nd or len(pads) != 2 * nd or len(dilations) != nd:
        raise im.fail("kernel, strides, pads and dilations must have one entry per spatial axis")
    if min(kernel + strides + dilations) < 1 or min(pads) < 0:
        raise im.fail("kernel, strides and dilations must be >= 1 and pads >= 0")
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        for i in range(nd):
            eff = (kernel[i] - 1) * dilations[i] + 1
            total = max((-(-s[2 + i] // strides[i]) - 1) * strides[i] + eff - s[2 + i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[nd + i] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * 2 * nd
    elif auto != "NOTSET":
        raise im.fail(f"auto_pad={auto!r} is not supported")
    if nd == 1:
        return [1, kernel[0]], [1, strides[0]], (0, 0, pads[0], pads[1])
    return kernel, strides, (pads[0], pads[2], pads[1], pads[3])


def _out_len(size: int, k: int, s: int, d: int, lo: int, hi: int, ceil: bool = False) -> int:
    eff = (k - 1) * d + 1
    span = size + lo + hi - eff
    return (-(-span // s) if ceil else span // s) + 1


def _conv(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    w = np.asarray(im.const(n.input[1], "the weight"), np.float32)
    s = im.shape(x)
    nd = len(s) - 2
    if nd not in (1, 2):
        raise im.fail(f"{nd}-D convolution is not supported (1-D and 2-D only)")
    group = int(a.get("group", 1))
    cout, cin_g = int(w.shape[0]), int(w.shape[1])
    if group < 1 or s[1] != cin_g * group or cout % group:
        raise im.fail(f"weight {w.shape} does not fit {s[1]} input channels in {group} groups")
    dil = list(a.get("dilations", [1] * nd))
    k, st, pads = _spatial(im, n, x, list(w.shape[2:]), dil)
    d = [1, dil[0]] if nd == 1 else dil
    w4 = w.reshape(cout, cin_g, k[0], k[1]).transpose(2, 3, 1, 0)  # KH KW Cin/g Cout
    b = im.opt_const(n, 2)
    b = np.zeros(cout, np.float32) if b is None else np.asarray(b, np.float32).reshape(cout)
    h, wd = (1, s[2]) if nd == 1 else (s[2], s[3])
    oh = _out_len(h, k[0], st[0], d[0], pads[0], pads[1])
    ow = _out_len(wd, k[1], st[1], d[1], pads[2], pads[3])
    if oh < 1 or ow < 1:
        raise im.fail("kernel larger than the padded input")
    if oh * ow * k[0] * k[1] * cin_g > MAX_ELEMENTS:
        raise im.fail(f"im2col patches of {oh * ow} x {k[0] * k[1] * cin_g} exceed "
                      f"{MAX_ELEMENTS} elements per sample")
    attrs = {"kh": k[0], "kw": k[1], "sh": st[0], "sw": st[1], "dh": d[0], "dw": d[1],
             "pads": list(pads), "groups": group}
    out = im.emit("conv2d", [im.get(x, "cl")], n.output[0], (oh, ow, cout), attrs,
                  {"w": w4, "b": b})
    im.put(n.output[0], "cl", out)


def _gemm(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    if not im.is_act(x) or a.get("transA", 0):
        raise im.fail("the first operand must be the activation, not transposed")
    w = np.asarray(im.const(n.input[1], "the second operand"), np.float32)
    if w.ndim != 2:
        raise im.fail(f"weight of shape {w.shape} is not 2-D")
    if a.get("transB", 0):
        w = w.T
    w = w * np.float32(a.get("alpha", 1.0))
    c = im.opt_const(n, 2)
    b = np.zeros(w.shape[1], np.float32)
    if c is not None:
        cv = im.channel_vector(np.asarray(c) * np.float32(a.get("beta", 1.0)), 2, w.shape[1])
        if cv is None:
            raise im.fail(f"bias of shape {np.shape(c)} is not a per-column vector")
        b = cv
    _dense(im, n, x, w, b)


def _dense(im: Importer, n: onnx.NodeProto, x: str, w: np.ndarray, b: np.ndarray) -> None:
    s = im.shape(x)
    if s[-1] != w.shape[0]:
        raise im.fail(f"activation {s} does not fit weight {w.shape}")
    out_shape = (*s[1:-1], w.shape[1])
    out = im.emit("dense", [im.get(x, "onnx")], n.output[0], out_shape, {},
                  {"w": np.ascontiguousarray(w, np.float32), "b": np.asarray(b, np.float32)})
    im.put(n.output[0], "onnx", out)


def _matmul(im: Importer, n: onnx.NodeProto) -> None:
    x, wname = n.input[0], n.input[1]
    if not im.is_act(x) or im.is_act(wname):
        raise im.fail("only activation x constant products are supported")
    w = np.asarray(im.const(wname, "the second operand"), np.float32)
    if w.ndim != 2 or len(im.shape(x)) < 2:
        raise im.fail(f"operands {im.shape(x)} x {w.shape}: need an activation of rank >= 2 "
                      "times a 2-D constant")
    _dense(im, n, x, w, np.zeros(w.shape[1], np.float32))


def _foldable(im: Importer, x: str) -> Node | None:
    """The conv/dense node producing ONNX tensor ``x`` if a per-channel op may fold into it."""
    forms = im.forms.get(x, {})
    if im.uses.get(x, 0) != 1 or len(forms) != 1:
        return None
    p = im.producer.get(next(iter(forms.values())))
    return p if p is not None and p.op in ("conv2d", "dense") else None


def _fold_scale_shift(im: Importer, n: onnx.NodeProto, x: str, scale: np.ndarray,
                      shift: np.ndarray) -> bool:
    """y = x * scale + shift per channel folded into the producer of ``x``; False if it cannot."""
    p = _foldable(im, x)
    if p is None:
        return False
    p.arrays["w"] = (p.arrays["w"] * scale).astype(np.float32)
    p.arrays["b"] = (p.arrays["b"] * scale + shift).astype(np.float32)
    im.fixed.pop(p.output, None)  # a QDQ range stated for the unfolded values no longer holds
    im.forms[n.output[0]] = dict(im.forms[x])
    return True


def _batchnorm(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    if len([o for o in n.output if o]) > 1:
        raise im.fail("training-mode batch normalisation (running statistics outputs)")
    gamma, beta, mean, var = (np.asarray(im.const(i, "batch-norm parameter"), np.float64)
                              for i in n.input[1:5])
    scale = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    shift = beta - mean * scale
    _channel_affine(im, n, x, scale.astype(np.float32), shift.astype(np.float32))


def _channel_affine(im: Importer, n: onnx.NodeProto, x: str, scale: np.ndarray,
                    shift: np.ndarray) -> None:
    if _fold_scale_shift(im, n, x, scale, shift):
        return
    lay = im.layout_of(x) if len(im.shape(x)) in CL_AXIS else "onnx"
    rank = len(im.shape(x))
    if rank >= 3 and lay != "cl":
        lay = "cl" if rank in CL_AXIS else lay
    if rank > 2 and rank not in CL_AXIS:
        raise im.fail(f"per-channel op on a rank-{rank} tensor")
    out = im.emit("affine", [im.get(x, lay)], n.output[0], im.ir_shape(x, lay), {},
                  {"scale": scale, "bias": shift})
    im.put(n.output[0], lay, out)


def _binary(im: Importer, n: onnx.NodeProto) -> None:
    op = BINARY[n.op_type]
    ins = [i for i in n.input]
    acts = [i for i in ins if im.is_act(i)]
    if not acts:
        raise im.fail("no activation operand")
    out_rank = len(im.shape(n.output[0]))
    if n.op_type in ("Sum", "Mean", "Max", "Min") and len(ins) > 2:
        if len(acts) != len(ins):
            raise im.fail("variadic op with constant operands")
        _variadic(im, n, op, ins)
        return
    if len(ins) == 1:
        im.forms[n.output[0]] = dict(im.forms[ins[0]])
        return
    if len(acts) == 2:
        if any(len(im.shape(i)) != out_rank or im.shape(i)[0] != im.shape(n.output[0])[0]
               for i in acts):
            raise im.fail("activations of different ranks do not broadcast per sample")
        lay = "cl" if all("cl" in im.forms[i] for i in acts) else "onnx"
        out = im.emit(op, [im.get(i, lay) for i in acts], n.output[0],
                      im.ir_shape(n.output[0], lay))
        im.put(n.output[0], lay, out)
        return
    x = acts[0]
    c = np.asarray(im.const(ins[1] if ins[0] == x else ins[0], "operand"), np.float32)
    c_first = ins[0] != x
    rank = len(im.shape(x))
    if out_rank != rank:
        raise im.fail(f"constant of shape {c.shape} changes the activation's rank")
    chans = im.shape(x)[min(1, rank - 1)]
    cv = im.channel_vector(c, rank, chans)
    if cv is not None and not c_first and op in ("add", "sub", "mul", "div"):
        scale, shift = {"add": (np.ones_like(cv), cv), "sub": (np.ones_like(cv), -cv),
                        "mul": (cv, np.zeros_like(cv)),
                        "div": (1.0 / cv, np.zeros_like(cv))}[op]
        if op != "div" or np.all(cv != 0):
            _channel_affine(im, n, x, scale.astype(np.float32), shift.astype(np.float32))
            return
    lay = im.layout_of(x) if rank in CL_AXIS else "onnx"
    out = im.emit(op, [im.get(x, lay)], n.output[0], im.ir_shape(n.output[0], lay),
                  {"c_first": c_first}, {"c": im.const_to(c, rank, lay)})
    im.put(n.output[0], lay, out)


def _variadic(im: Importer, n: onnx.NodeProto, op: str, ins: list[str]) -> None:
    lay = "cl" if all("cl" in im.forms[i] for i in ins) else "onnx"
    shape = im.ir_shape(n.output[0], lay)
    acc = im.get(ins[0], lay)
    step = {"avg": "add"}.get(op, op)
    for j, i in enumerate(ins[1:]):
        last = j == len(ins) - 2 and op != "avg"
        acc = im.emit(step, [acc, im.get(i, lay)], n.output[0] if last else f"{n.output[0]}:{j}",
                      shape, name=f"{n.name or n.op_type}:{j}")
    if op == "avg":
        k = np.float32(1.0 / len(ins))
        acc = im.emit("mul", [acc], n.output[0], shape, {"c_first": False},
                      {"c": np.array(k, np.float32)})
    im.put(n.output[0], lay, acc)


def _unary(im: Importer, n: onnx.NodeProto) -> None:
    op = UNARY[n.op_type]
    a = attrs_of(n)
    attrs = {k: float(a.get(k, v)) for k, v in UNARY_ATTRS.get(op, {}).items()}
    x = n.input[0]
    lay = im.layout_of(x)
    out = im.emit(op, [im.get(x, lay)], n.output[0], im.ir_shape(x, lay), attrs)
    im.put(n.output[0], lay, out)


def _clip(im: Importer, n: onnx.NodeProto) -> None:
    lo, hi = im.opt_const(n, 1), im.opt_const(n, 2)
    attrs = {"min": float(lo) if lo is not None else -np.inf,
             "max": float(hi) if hi is not None else np.inf}
    x = n.input[0]
    lay = im.layout_of(x)
    out = im.emit("clip", [im.get(x, lay)], n.output[0], im.ir_shape(x, lay), attrs)
    im.put(n.output[0], lay, out)


def _prelu(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    slope = np.asarray(im.const(n.input[1], "the slope"), np.float32)
    rank = len(im.shape(x))
    lay = im.layout_of(x) if rank in CL_AXIS else "onnx"
    out = im.emit("prelu", [im.get(x, lay)], n.output[0], im.ir_shape(x, lay), {},
                  {"slope": im.const_to(slope, rank, lay)})
    im.put(n.output[0], lay, out)


def _alias(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    if not im.is_act(x):
        raise im.fail("constant input")
    im.forms[n.output[0]] = dict(im.forms[x])


# ---------------------------------------------------------------- pooling and reductions
def _pool(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    if len([o for o in n.output if o]) > 1 and im.uses.get(n.output[1], 0):
        raise im.fail("max-pool indices output is not supported")
    x = n.input[0]
    s = im.shape(x)
    nd = len(s) - 2
    kernel = list(a.get("kernel_shape", []))
    dil = list(a.get("dilations", [1] * len(kernel)))
    k, st, pads = _spatial(im, n, x, kernel, dil)
    d = [1, dil[0]] if nd == 1 else dil
    ceil = bool(a.get("ceil_mode", 0))
    h, wd = (1, s[2]) if nd == 1 else (s[2], s[3])
    oh = _out_len(h, k[0], st[0], d[0], pads[0], pads[1], ceil)
    ow = _out_len(wd, k[1], st[1], d[1], pads[2], pads[3], ceil)
    if ceil:  # a last window starting inside the right/bottom padding is dropped (as ONNX does)
        if (oh - 1) * st[0] >= h + pads[0]:
            oh -= 1
        if (ow - 1) * st[1] >= wd + pads[2]:
            ow -= 1
    extra = [max((oh - 1) * st[0] + (k[0] - 1) * d[0] + 1 - (h + pads[0] + pads[1]), 0),
             max((ow - 1) * st[1] + (k[1] - 1) * d[1] + 1 - (wd + pads[2] + pads[3]), 0)]
    op = "maxpool" if n.op_type == "MaxPool" else "avgpool"
    attrs = {"kh": k[0], "kw": k[1], "sh": st[0], "sw": st[1], "dh": d[0], "dw": d[1],
             "pads": list(pads), "extra": extra,
             "count_pad": bool(a.get("count_include_pad", 0))}
    out = im.emit(op, [im.get(x, "cl")], n.output[0], (oh, ow, s[1]), attrs)
    im.put(n.output[0], "cl", out)


def _global_pool(im: Importer, n: onnx.NodeProto, op: str, keep: bool) -> None:
    x = n.input[0]
    s = im.shape(x)
    g = im.emit(op, [im.get(x, "cl")], f"{n.output[0]}:g", (s[1],), name=f"{n.name or op}:pool")
    if keep:
        out = im.emit("reshape", [g], n.output[0], (1, 1, s[1]), {"shape": [1, 1, s[1]]})
        im.put(n.output[0], "cl", out)
    else:
        im.forms[n.output[0]] = {"onnx": g}


def _global(im: Importer, n: onnx.NodeProto) -> None:
    if len(im.shape(n.input[0])) not in CL_AXIS:
        raise im.fail("global pooling of a tensor without 1 or 2 spatial axes")
    _global_pool(im, n, "global_avgpool" if n.op_type == "GlobalAveragePool" else
                 "global_maxpool", True)


def _reduce(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    rank = len(im.shape(x))
    axes = a.get("axes")
    if axes is None and len(n.input) > 1 and n.input[1]:
        axes = [int(v) for v in np.asarray(im.const(n.input[1], "axes")).reshape(-1)]
    if axes is None or len(axes) == 0:
        if a.get("noop_with_empty_axes", 0):
            _alias(im, n)
            return
        raise im.fail("reducing over every axis, batch included, is not supported")
    axes = sorted({im.axis(int(v), rank) for v in axes})
    keep = bool(a.get("keepdims", 1))
    kind = n.op_type[len("Reduce"):].lower()
    spatial = list(range(2, rank))
    if rank in CL_AXIS and axes == spatial and kind in ("mean", "max"):
        _global_pool(im, n, "global_avgpool" if kind == "mean" else "global_maxpool", keep)
        return
    out = im.emit("reduce", [im.get(x, "onnx")], n.output[0], im.shape(n.output[0])[1:],
                  {"kind": kind, "axes": axes, "keepdims": keep})
    im.put(n.output[0], "onnx", out)


def _lrn(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    if len(im.shape(x)) not in CL_AXIS:
        raise im.fail("LRN needs a tensor with 1 or 2 spatial axes")
    attrs = {"size": int(a["size"]), "alpha": float(a.get("alpha", 1e-4)),
             "beta": float(a.get("beta", 0.75)), "bias": float(a.get("bias", 1.0))}
    out = im.emit("lrn", [im.get(x, "cl")], n.output[0], im.ir_shape(x, "cl"), attrs)
    im.put(n.output[0], "cl", out)


def _softmax(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    rank = len(im.shape(x))
    ax = im.axis(int(attrs_of(n).get("axis", -1)), rank)
    lay = im.layout_of(x) if rank in CL_AXIS else "onnx"
    axis = CL_AXIS[rank][ax] if lay == "cl" else ax
    op = {"Softmax": "softmax", "LogSoftmax": "log_softmax"}[n.op_type]
    out = im.emit(op, [im.get(x, lay)], n.output[0], im.ir_shape(x, lay), {"axis": axis})
    im.put(n.output[0], lay, out)


# ---------------------------------------------------------------- shapes and layout
def _reshape_to_output(im: Importer, n: onnx.NodeProto) -> None:
    """Flatten, Reshape, Squeeze, Unsqueeze: a reshape to the inferred output shape, per sample."""
    x = n.input[0]
    s_in, s_out = im.shape(x), im.shape(n.output[0])
    if n.op_type == "Flatten" and im.axis(int(attrs_of(n).get("axis", 1)), len(s_in)) != 1:
        raise im.fail("Flatten with axis != 1 merges the batch axis")
    if not s_out or s_out[0] != s_in[0]:
        raise im.fail(f"reshape {s_in} -> {s_out} moves the batch axis")
    if n.op_type in ("Squeeze", "Unsqueeze"):
        axes = attrs_of(n).get("axes")
        if axes is None and len(n.input) > 1 and n.input[1]:
            axes = np.asarray(im.const(n.input[1], "axes")).reshape(-1).tolist()
        rank = len(s_out) if n.op_type == "Unsqueeze" else len(s_in)
        if axes is not None and any(int(v) % rank == 0 for v in axes):
            raise im.fail("squeezing or unsqueezing the batch axis is not supported")
    out = im.emit("reshape", [im.get(x, "onnx")], n.output[0], s_out[1:],
                  {"shape": list(s_out[1:])})
    im.put(n.output[0], "onnx", out)


def _transpose(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    rank = len(im.shape(x))
    perm = [int(p) for p in attrs_of(n).get("perm", list(range(rank))[::-1])]
    if perm[0] != 0:
        raise im.fail(f"perm {perm} moves the batch axis")
    forms = im.forms[x]
    if rank == 4 and perm == [0, 3, 1, 2] and "onnx" in forms:
        im.forms[n.output[0]] = {"cl": forms["onnx"]}  # NHWC -> NCHW: the input is the cl form
        return
    if rank == 4 and perm == [0, 2, 3, 1] and "cl" in forms:
        im.forms[n.output[0]] = {"onnx": forms["cl"]}  # NCHW -> NHWC: the cl form, read as onnx
        return
    out = im.emit("transpose", [im.get(x, "onnx")], n.output[0], im.shape(n.output[0])[1:],
                  {"perm": [p - 1 for p in perm[1:]]})
    im.put(n.output[0], "onnx", out)


def _concat(im: Importer, n: onnx.NodeProto) -> None:
    ins = [i for i in n.input if i]
    if not all(im.is_act(i) for i in ins):
        raise im.fail("concatenation with a constant is not supported")
    rank = len(im.shape(n.output[0]))
    ax = im.axis(int(attrs_of(n)["axis"]), rank)
    lay = "cl" if rank in CL_AXIS else "onnx"
    axis = CL_AXIS[rank][ax] if lay == "cl" else ax
    out = im.emit("concat", [im.get(i, lay) for i in ins], n.output[0],
                  im.ir_shape(n.output[0], lay), {"axis": axis})
    im.put(n.output[0], lay, out)


def _split(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    rank = len(im.shape(x))
    ax = im.axis(int(a.get("axis", 0)), rank)
    start = 0
    for o in n.output:
        size = im.shape(o)[ax]
        if o:
            out = im.emit("slice", [im.get(x, "onnx")], o, im.shape(o)[1:],
                          {"axes": [ax], "starts": [start], "ends": [start + size],
                           "steps": [1]}, name=f"{n.name or 'split'}:{o}")
            im.put(o, "onnx", out)
        start += size


def _slice(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    s = im.shape(x)
    starts = np.asarray(im.const(n.input[1], "starts")).reshape(-1)
    ends = np.asarray(im.const(n.input[2], "ends")).reshape(-1)
    axes_c, steps_c = im.opt_const(n, 3), im.opt_const(n, 4)
    axes = (np.arange(len(starts)) if axes_c is None else np.asarray(axes_c).reshape(-1))
    steps = np.ones(len(starts), np.int64) if steps_c is None else np.asarray(steps_c).reshape(-1)
    spec: dict[str, list[int]] = {"axes": [], "starts": [], "ends": [], "steps": []}
    for ax, b, e, st in zip(axes, starts, ends, steps, strict=True):
        a = int(ax) + len(s) if int(ax) < 0 else int(ax)
        lo, hi, step = slice(int(b), int(e), int(st)).indices(s[a]) if 0 <= a < len(s) else (0, 0, 1)
        if a == 0:
            if (lo, hi, step) != (0, s[0], 1):
                raise im.fail("slicing the batch axis is not supported")
            continue
        spec["axes"].append(a)
        spec["starts"].append(lo)
        spec["ends"].append(hi)
        spec["steps"].append(step)
    out = im.emit("slice", [im.get(x, "onnx")], n.output[0], im.shape(n.output[0])[1:], spec)
    im.put(n.output[0], "onnx", out)


def _pad(im: Importer, n: onnx.NodeProto) -> None:
    a = attrs_of(n)
    x = n.input[0]
    rank = len(im.shape(x))
    pads = a.get("pads")
    if pads is None:
        pads = np.asarray(im.const(n.input[1], "pads")).reshape(-1).tolist()
    value = im.opt_const(n, 2)
    value = float(a.get("value", 0.0)) if value is None else float(np.asarray(value).reshape(-1)[0])
    if len(n.input) > 3 and n.input[3]:
        raise im.fail("Pad with an axes input is not supported")
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("constant", "reflect", "edge"):
        raise im.fail(f"pad mode {mode!r} is not supported")
    if rank not in CL_AXIS or any(pads[i] or pads[rank + i] for i in (0, 1)) or min(pads) < 0:
        raise im.fail("only non-negative padding of the spatial axes of a 1-D or 2-D "
                      "activation is supported")
    hw = (0, 0, pads[2], pads[rank + 2]) if rank == 3 else (pads[2], pads[6], pads[3], pads[7])
    out = im.emit("pad", [im.get(x, "cl")], n.output[0], im.ir_shape(n.output[0], "cl"),
                  {"pads": list(hw), "mode": mode, "value": value})
    im.put(n.output[0], "cl", out)


def _tile(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    reps = [int(r) for r in np.asarray(im.const(n.input[1], "repeats")).reshape(-1)]
    if len(reps) != len(im.shape(x)) or reps[0] != 1 or min(reps) < 1:
        raise im.fail(f"repeats {reps} must keep the batch axis and be >= 1")
    out = im.emit("tile", [im.get(x, "onnx")], n.output[0], im.shape(n.output[0])[1:],
                  {"reps": reps[1:]})
    im.put(n.output[0], "onnx", out)


def _instance_norm(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    if len(im.shape(x)) not in CL_AXIS:
        raise im.fail("instance normalisation needs 1 or 2 spatial axes")
    arrays = {"scale": np.asarray(im.const(n.input[1], "the scale"), np.float32).reshape(-1),
              "bias": np.asarray(im.const(n.input[2], "the bias"), np.float32).reshape(-1)}
    out = im.emit("instance_norm", [im.get(x, "cl")], n.output[0], im.ir_shape(x, "cl"),
                  {"epsilon": float(attrs_of(n).get("epsilon", 1e-5))}, arrays)
    im.put(n.output[0], "cl", out)


# ---------------------------------------------------------------- QDQ
def _quant_bounds(im: Importer, n: onnx.NodeProto) -> tuple[float, float]:
    """The real interval a QuantizeLinear's (scale, zero point, type) represents."""
    scale = np.asarray(im.const(n.input[1], "the scale"), np.float64)
    if scale.size != 1:
        raise im.fail("per-channel activation quantisation is not supported")
    zp = im.opt_const(n, 2)
    dt = np.dtype(zp.dtype) if zp is not None else np.dtype(np.uint8)
    if not np.issubdtype(dt, np.integer):
        raise im.fail(f"zero point of type {dt} is not an integer type")
    z = float(np.asarray(zp).reshape(-1)[0]) if zp is not None else 0.0
    info = np.iinfo(dt)
    s = float(scale.reshape(-1)[0])
    if not (np.isfinite(s) and s > 0):
        raise im.fail(f"scale {s} is not a positive number")
    return (info.min - z) * s, (info.max - z) * s


def _quantize_linear(im: Importer, n: onnx.NodeProto) -> None:
    x = n.input[0]
    if not im.is_act(x):
        raise im.fail("constant input")
    im.qdq[n.output[0]] = (x, _quant_bounds(im, n))


def _dequantize_linear(im: Importer, n: onnx.NodeProto) -> None:
    """A QuantizeLinear -> DequantizeLinear pair is a clamp to the interval it represents (with
    rounding, which our own quantisation replaces). The tensor's range comes from that interval;
    a clamp at 0 (uint8 with zero point 0, how onnxruntime removes a Relu) becomes a relu; a
    symmetric clamp is what saturation at that range does anyway."""
    q = n.input[0]
    if q not in im.qdq:
        raise im.fail("dequantising a tensor that no QuantizeLinear produced")
    src, (lo, hi) = im.qdq[q]
    rng = max(abs(lo), abs(hi))
    lay = im.layout_of(src)
    if im.uses.get(src, 0) == 1:  # only the clamp reads it: values beyond the range are cut anyway
        for ir in im.forms[src].values():
            im.fixed[ir] = rng
    if lo >= 0:
        out = im.emit("relu", [im.get(src, lay)], n.output[0], im.ir_shape(src, lay))
        if lo > 0 or hi < rng:
            raise im.fail(f"quantisation interval [{lo}, {hi}] does not contain 0")
    elif hi >= rng * 0.99 and -lo >= rng * 0.99:
        im.forms[n.output[0]] = dict(im.forms[src])
        for ir in im.forms[src].values():
            im.fixed[ir] = rng
        return
    else:
        out = im.emit("clip", [im.get(src, lay)], n.output[0], im.ir_shape(src, lay),
                      {"min": lo, "max": hi})
    im.put(n.output[0], lay, out)
    im.fixed[out] = rng


HANDLERS: dict[str, Callable[[Importer, onnx.NodeProto], None]] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm,
    **dict.fromkeys(BINARY, _binary), **dict.fromkeys(UNARY, _unary),
    "Clip": _clip, "PRelu": _prelu, "Identity": _alias, "Dropout": _alias,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global,
    "GlobalMaxPool": _global, "ReduceMean": _reduce, "ReduceMax": _reduce, "ReduceSum": _reduce,
    "ReduceMin": _reduce, "LRN": _lrn, "Softmax": _softmax, "LogSoftmax": _softmax,
    **dict.fromkeys(("Flatten", "Reshape", "Squeeze", "Unsqueeze"), _reshape_to_output),
    "Transpose": _transpose, "Concat": _concat, "Split": _split, "Slice": _slice, "Pad": _pad,
    "Tile": _tile, "InstanceNormalization": _instance_norm,
    "QuantizeLinear": _quantize_linear, "DequantizeLinear": _dequantize_linear,
}


def import_model(m: onnx.ModelProto) -> FloatGraph:
    """The float IR of a prepared model."""
    return Importer(m).run()
