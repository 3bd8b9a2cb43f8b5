"""Quantise a float IR and lower it to Program instructions.

Stages (each a pass of the Systolic hls4ml backend, see hls4ml_backend/passes):

* calibrate: run the float IR on calibration data, record max |x| of every tensor;
* lower: dense/conv2d -> ``gemm`` (conv via im2col), a following ReLU fused into the output stage,
  a GEMM producing the model output in raw mode + host ``dequantize``; everything else -> host
  ops, on integers where exact (relu, pools, reshape), otherwise on floats with explicit
  ``dequantize`` / ``quantize`` instructions at the boundaries;
* tile: annotate every GEMM with its K/N tiling for the R x C array;
* schedule: fix execution order and free every tensor after its last use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from morphware.compiler import hostops, quantize
from morphware.compiler.errors import CompileError
from morphware.compiler.graph import FloatGraph, Node
from morphware.systolic.params import ArrayParams


def check_calibration(calib: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The calibration batch as float32 ``(N, *shape)``, or a CompileError naming what is wrong
    (checked once, by the quantise pass, for every route into the backend)."""
    try:
        x = np.asarray(calib, np.float32)
    except (TypeError, ValueError) as e:
        raise CompileError(f"calibration data: not a numeric array ({e})") from e
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise CompileError(f"calibration data: shape {x.shape} does not match the model input "
                           f"(N, {', '.join(map(str, shape))})")
    if x.shape[0] == 0:
        raise CompileError("calibration data: no samples (N = 0)")
    if not np.all(np.isfinite(x)):
        raise CompileError("calibration data: contains NaN or infinity")
    return x


def calibrate(g: FloatGraph, calib: np.ndarray, batch: int = 256) -> dict[str, float]:
    """Max |x| of every tensor over the calibration set ``(N, *g.input_shape)``; tensors whose
    range the model states (QDQ scales) keep that range instead."""
    stats: dict[str, float] = {}
    for s in range(0, calib.shape[0], batch):
        env = g.run(calib[s:s + batch], keep=True)
        for name, v in env.items():
            m = float(np.nanmax(np.abs(v))) if v.size else 0.0
            if not np.isfinite(m):
                raise CompileError(f"tensor {name}: calibration produced NaN or infinity")
            stats[name] = max(stats.get(name, 0.0), m)
    stats.update(g.fixed_ranges)
    return stats


@dataclass
class Lowering:
    """Mutable state while lowering: emitted instructions, arrays and the domain of each tensor."""

    p: ArrayParams
    stats: dict[str, float]
    circuit: str = "ws"
    instructions: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)   # integer tensors -> their scale

    def emit(self, ins: dict[str, Any]) -> None:
        self.instructions.append(ins)

    def act_scale(self, tensor: str) -> float:
        if tensor not in self.stats:
            raise CompileError(f"tensor {tensor}: no calibration statistics")
        return quantize.tensor_scale(self.stats[tensor], self.p.data_bits)

    def as_int(self, tensor: str, layer: str) -> str:
        """Name of an integer version of ``tensor``, emitting a ``quantize`` if it is float."""
        if tensor in self.scale:
            return tensor
        q = f"{tensor}:q"
        if q not in self.scale:
            s = self.act_scale(tensor)
            self.emit({"op": "quantize", "layer": layer, "inputs": [tensor], "output": q, "scale": s})
            self.scale[q] = s
        return q

    def as_float(self, tensor: str, layer: str) -> str:
        """Name of a float version of ``tensor``, emitting a ``dequantize`` if it is integer."""
        if tensor not in self.scale:
            return tensor
        f = f"{tensor}:f"
        if not any(i["output"] == f for i in self.instructions):
            key = f"scale.{f}"
            self.arrays[key] = np.array([self.scale[tensor]], np.float64)
            self.emit({"op": "dequantize", "layer": layer, "inputs": [tensor], "output": f,
                       "scale_key": key})
        return f


def _fused_relu(g: FloatGraph, n: Node) -> Node | None:
    users = g.consumers(n.output)
    if n.output not in g.outputs and len(users) == 1 and users[0].op == "relu":
        return users[0]
    return None


def group_layout(n: Node, m: int, p: ArrayParams, circuit: str) -> tuple[str, int, int]:
    """For a grouped convolution: ``("groups", cycles_grouped, cycles_blockdiag)`` or
    ``("blockdiag", ...)``, whichever costs fewer array cycles for ``m`` output rows per sample.

    Per-group GEMMs issue ``g`` commands of (K/g x N/g) per row chunk; the block-diagonal layout
    issues one command of (K x N) whose weights are zero outside the diagonal blocks."""
    from morphware.systolic.circuit import get_circuit

    cycles = get_circuit(circuit).cycles
    g = int(n.attrs.get("groups", 1))
    w = n.arrays["w"]
    k_g, cout = int(np.prod(w.shape[:-1])), int(w.shape[-1])
    grouped = blockdiag = 0
    for _, rows in m_chunks(m, p.acc_depth):
        grouped += g * int(cycles(rows, k_g, cout // g, p))
        blockdiag += int(cycles(rows, k_g * g, cout, p))
    return ("groups" if grouped <= blockdiag else "blockdiag"), grouped, blockdiag


def block_diagonal(w: np.ndarray, g: int) -> np.ndarray:
    """(KH, KW, Cin/g, Cout) grouped weights -> (KH, KW, Cin, Cout), zero off the diagonal."""
    kh, kw, cg, cout = w.shape
    ng = cout // g
    full = np.zeros((kh, kw, cg * g, cout), w.dtype)
    for j in range(g):
        full[:, :, j * cg:(j + 1) * cg, j * ng:(j + 1) * ng] = w[..., j * ng:(j + 1) * ng]
    return full


def _lower_gemm(lw: Lowering, g: FloatGraph, n: Node, relu: Node | None) -> None:
    p = lw.p
    src = lw.as_int(n.inputs[0], n.name)
    s_x = lw.scale[src]
    out = relu.output if relu else n.output
    raw = out in g.outputs and relu is None
    w = n.arrays["w"]
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(n.arrays["b"]))):
        raise CompileError(f"node {n.name}: op {n.op}: weights or bias contain NaN or infinity")
    groups = int(n.attrs.get("groups", 1))
    macs = int(np.prod(w.shape))
    choice = None
    if groups > 1:
        m = int(np.prod(g.shapes[out][:-1]))
        choice = group_layout(n, m, p, lw.circuit)
        if choice[0] == "blockdiag":
            w = block_diagonal(w, groups)
            groups = 1
    try:
        wq, s_w = quantize.quantize_weights(w.reshape(-1, w.shape[-1]), p.data_bits)
    except ValueError as e:
        raise CompileError(f"node {n.name}: op {n.op}: {e}") from e
    acc_scale = s_x * s_w
    bias = quantize.quantize_bias(n.arrays["b"], acc_scale)
    k = int(np.prod(w.shape[:-1]))
    ncols = int(w.shape[-1])
    pre = f"L{len(lw.instructions)}.{n.name}"
    lw.arrays[f"{pre}.w"] = wq.reshape(k, ncols).astype(np.int16 if p.data_bits == 16 else np.int8)
    lw.arrays[f"{pre}.bias"] = bias.astype(np.int32)
    ins: dict[str, Any] = {"op": "gemm", "layer": n.name, "kind": n.op, "inputs": [src],
                           "output": out, "k": k, "n": ncols, "groups": groups,
                           "macs_per_row": macs, "relu": relu is not None, "raw": raw,
                           "w_key": f"{pre}.w", "bias_key": f"{pre}.bias",
                           "in_shape": list(g.shapes[n.inputs[0]]), "out_shape": list(g.shapes[out])}
    if choice is not None:
        ins["group_choice"] = {"layout": choice[0], "cycles_groups": choice[1],
                               "cycles_blockdiag": choice[2], "groups": int(n.attrs["groups"])}
    if n.op == "conv2d":
        ins["conv"] = {k2: n.attrs.get(k2, 1) for k2 in ("kh", "kw", "sh", "sw", "pads", "dh", "dw")}
    if raw:
        mult = np.ones(ncols, np.int64)
        shift = np.zeros(ncols, np.int64)
    else:
        s_y = lw.act_scale(out)
        try:
            mult, shift = quantize.requant_params(acc_scale / s_y)
        except ValueError as e:
            raise CompileError(f"node {n.name}: op {n.op}: {e}") from e
        ins["out_scale"] = s_y
    lw.arrays[f"{pre}.mult"] = mult.astype(np.uint16)
    lw.arrays[f"{pre}.shift"] = shift.astype(np.uint8)
    ins["mult_key"], ins["shift_key"] = f"{pre}.mult", f"{pre}.shift"
    lw.emit(ins)
    if raw:  # accumulator units -> float on the host, per output column
        lw.arrays[f"{pre}.acc_scale"] = acc_scale.astype(np.float64)
        lw.emit({"op": "dequantize", "layer": n.name, "inputs": [out], "output": f"{out}:f",
                 "scale_key": f"{pre}.acc_scale"})
    else:
        lw.scale[out] = s_y


def _int_exact(lw: Lowering, n: Node) -> bool:
    """Whether ``n`` may run on the integer versions of its inputs, keeping their scale."""
    if not n.inputs or not all(i in lw.scale for i in n.inputs):
        return False
    if n.op == "concat":
        return len({lw.scale[i] for i in n.inputs}) == 1
    if n.op == "pad":
        return n.attrs.get("mode", "constant") != "constant" or n.attrs.get("value", 0) == 0
    return n.op in hostops.INT_EXACT


def _lower_host(lw: Lowering, n: Node) -> None:
    ins: dict[str, Any] = {"op": n.op, "layer": n.name, "output": n.output, "attrs": n.attrs}
    for k, v in n.arrays.items():
        key = f"L{len(lw.instructions)}.{n.name}.{k}"
        lw.arrays[key] = np.asarray(v, np.float32)
        ins[f"{k}_key"] = key
    if _int_exact(lw, n):
        ins["inputs"] = list(n.inputs)
        lw.scale[n.output] = lw.scale[n.inputs[0]]
    else:
        ins["inputs"] = [lw.as_float(i, n.name) for i in n.inputs]
    lw.emit(ins)


def share_concat_scales(g: FloatGraph, stats: dict[str, float]) -> dict[str, float]:
    """Give the inputs of a concatenation one range (their largest) when each is produced by an
    array op (or the ReLU fused into it) and read by nothing else: the GEMMs then requantise to
    one scale and the concatenation stays on integers (SqueezeNet's fire modules, Inception)."""
    producer = {n.output: n for n in g.nodes}
    out = dict(stats)
    for n in g.nodes:
        if n.op != "concat" or any(i not in stats for i in n.inputs):
            continue
        ok = True
        for i in n.inputs:
            src = producer.get(i)
            if src is not None and src.op == "relu" and src.inputs:
                src = producer.get(src.inputs[0])
            if (src is None or src.op not in ("dense", "conv2d") or len(g.consumers(i)) != 1
                    or i in g.outputs):
                ok = False
        if ok:
            top = max(stats[i] for i in n.inputs)
            out.update(dict.fromkeys(n.inputs, top))
    return out


def lower(g: FloatGraph, stats: dict[str, float], p: ArrayParams,
          input_adapt: dict[str, Any] | None, circuit: str = "ws",
          ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], list[str]]:
    """Lower the float IR; returns (instructions, arrays, names of the float output tensors)."""
    stats = share_concat_scales(g, stats)
    lw = Lowering(p, stats, circuit)
    if input_adapt is not None:
        lw.emit(input_adapt)
    fused: set[str] = set()
    for n in g.nodes:
        if n.name in fused:
            continue
        if n.op in ("dense", "conv2d"):
            relu = _fused_relu(g, n)
            if relu is not None:
                fused.add(relu.name)
            _lower_gemm(lw, g, n, relu)
        else:
            _lower_host(lw, n)
    outs = []
    for out in g.outputs:
        if any(i["output"] == f"{out}:f" for i in lw.instructions):
            outs.append(f"{out}:f")
        else:
            outs.append(lw.as_float(out, "output"))
    return lw.instructions, lw.arrays, outs


def tile(instructions: list[dict[str, Any]], p: ArrayParams) -> None:
    """Annotate GEMMs with their tiling: K in tiles of R rows, N in tiles of C columns, and the
    output rows each sample contributes (M per sample; conv: OH*OW)."""
    for ins in instructions:
        if ins["op"] != "gemm":
            continue
        ins["k_tiles"] = math.ceil(ins["k"] / p.rows)
        ins["n_tiles"] = math.ceil(ins["n"] // ins.get("groups", 1) / p.cols)
        out_shape = ins["out_shape"]
        ins["m_per_sample"] = int(np.prod(out_shape[:-1])) if len(out_shape) > 1 else 1


def schedule(instructions: list[dict[str, Any]], keep: set[str]) -> None:
    """Annotate each instruction with the tensors that die after it (``free``), so executors hold
    only live activations. Order is the topological order hls4ml gave; it is already valid."""
    last: dict[str, int] = {}
    for idx, ins in enumerate(instructions):
        for t in ins["inputs"]:
            last[t] = idx
    for idx, ins in enumerate(instructions):
        ins["free"] = sorted(t for t in set(ins["inputs"]) if last[t] == idx and t not in keep)


def m_chunks(m: int, acc_depth: int) -> list[tuple[int, int]]:
    """Split M output rows into commands of at most ``acc_depth`` rows: [(start, rows), ...]."""
    return [(s, min(acc_depth, m - s)) for s in range(0, m, acc_depth)]
