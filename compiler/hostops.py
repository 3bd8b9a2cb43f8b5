"""Host operations: the numpy code that runs every op the array does not.

The same functions serve the float reference (calibration) and every executor of a Program, so
golden, RTL and FPGA runs of a Program share one host implementation and can only differ in their
GEMMs. Activations are channels-last with a leading batch axis: ``(N, H, W, C)`` or ``(N, F)``.
Integer inputs stay integer where the op is exact on integers (relu, max-pool, reshape, transpose).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Pads = tuple[int, int, int, int]  # top, bottom, left, right


def _pad_hw(x: np.ndarray, pads: Pads, value: float | int, mode: str = "constant") -> np.ndarray:
    t, b, left, r = pads
    if not any(pads):
        return x
    widths = ((0, 0), (t, b), (left, r), (0, 0))
    if mode == "constant":
        return np.pad(x, widths, constant_values=np.asarray(value).astype(x.dtype))
    return np.pad(x, widths, mode=mode)


def windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: Pads,
            value: float | int = 0, dh: int = 1, dw: int = 1) -> np.ndarray:
    """Sliding (dilated) windows of an NHWC tensor: returns ``(N, OH, OW, KH, KW, C)``."""
    xp = _pad_hw(x, pads, value)
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if xp.shape[1] < eh or xp.shape[2] < ew:
        raise ValueError(f"window {eh}x{ew} larger than padded input {xp.shape[1:3]}")
    v = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(1, 2))  # N,H',W',C,EH,EW
    v = v[:, ::sh, ::sw, :, ::dh, ::dw]
    return v.transpose(0, 1, 2, 4, 5, 3)


def im2col(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: Pads, dh: int = 1,
           dw: int = 1) -> np.ndarray:
    """Patches of an NHWC tensor as GEMM rows ``(N*OH*OW, KH*KW*C)``, ordered (kh, kw, c) like
    the Conv2D weight ``(KH, KW, Cin, Cout)`` reshaped to ``(KH*KW*Cin, Cout)``."""
    v = windows(x, kh, kw, sh, sw, pads, 0, dh, dw)
    n, oh, ow = v.shape[:3]
    return np.ascontiguousarray(v).reshape(n * oh * ow, -1)


def conv_out_hw(h: int, w: int, kh: int, kw: int, sh: int, sw: int, pads: Pads, dh: int = 1,
                dw: int = 1) -> tuple[int, int]:
    t, b, left, r = pads
    return (h + t + b - (kh - 1) * dh - 1) // sh + 1, (w + left + r - (kw - 1) * dw - 1) // sw + 1


def _pool_pads(a: dict[str, Any]) -> Pads:
    """Real pads plus the ceil-mode extension at the bottom/right."""
    t, b, left, r = a["pads"]
    eh, ew = a.get("extra", (0, 0))
    return t, b + eh, left, r + ew


def maxpool(x: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    low = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
    return windows(x, a["kh"], a["kw"], a["sh"], a["sw"], _pool_pads(a), low,
                   a.get("dh", 1), a.get("dw", 1)).max(axis=(3, 4))


def avgpool(x: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    """Window averages. ONNX divides by the valid elements of each window, or with
    ``count_include_pad`` by those plus the real padding (never the ceil-mode extension)."""
    pads = _pool_pads(a)
    args = (a["kh"], a["kw"], a["sh"], a["sw"], pads, 0, a.get("dh", 1), a.get("dw", 1))
    s = windows(x.astype(np.float32), *args).sum(axis=(3, 4))
    ones = np.ones((1, *x.shape[1:3], 1), dtype=np.float32)
    if a.get("count_pad"):
        t, b, left, r = a["pads"]
        ones = np.pad(ones, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=1)
        eh, ew = a.get("extra", (0, 0))
        args = (*args[:4], (0, eh, 0, ew), *args[5:])
    cnt = windows(ones, *args).sum(axis=(3, 4))
    return (s / np.maximum(cnt, 1)).astype(np.float32)


# Ops on float tensors (or on integers where exact); each takes (inputs, attrs, arrays).
HostFn = Callable[[list[np.ndarray], dict[str, Any], dict[str, np.ndarray]], np.ndarray]


def _f(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=axis, keepdims=True))).astype(np.float32)


def lrn(x: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    """Local response normalisation across the last (channel) axis, as ONNX defines it."""
    size = int(a["size"])
    sq = np.square(x.astype(np.float32))
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    pad = np.pad(sq, [(0, 0)] * (x.ndim - 1) + [(lo, hi)])
    c = np.cumsum(pad, axis=-1, dtype=np.float64)
    c = np.concatenate([np.zeros((*c.shape[:-1], 1)), c], axis=-1)
    win = c[..., size:] - c[..., :-size]
    return (x / (a["bias"] + a["alpha"] / size * win) ** a["beta"]).astype(np.float32)


def reduce(x: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    fn = {"mean": np.mean, "sum": np.sum, "max": np.max, "min": np.min}[a["kind"]]
    return np.asarray(fn(_f(x), axis=tuple(a["axes"]), keepdims=bool(a["keepdims"])), np.float32)


def slice_(x: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    idx = [slice(None)] * x.ndim
    for ax, b, e, st in zip(a["axes"], a["starts"], a["ends"], a["steps"], strict=True):
        idx[ax] = slice(b, e if e >= 0 or st > 0 else None, st)
    return x[tuple(idx)]


def instance_norm(x: np.ndarray, eps: float, arr: dict[str, np.ndarray]) -> np.ndarray:
    """Per sample and channel, normalise over the spatial axes (1, 2) of an NHWC tensor."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return ((x - mean) / np.sqrt(var + np.float32(eps)) * arr["scale"] + arr["bias"]).astype(
        np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    import math

    return np.vectorize(math.erf, otypes=[np.float32])(x)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> HostFn:
    """A two-operand op; the second operand is a stored constant ``c`` when there is one."""
    def run(xs: list[np.ndarray], a: dict[str, Any], arr: dict[str, np.ndarray]) -> np.ndarray:
        if "c" in arr:
            x, c = _f(xs[0]), _f(arr["c"])
            return np.asarray(fn(c, x) if a.get("c_first") else fn(x, c), np.float32)
        return np.asarray(fn(_f(xs[0]), _f(xs[1])), np.float32)
    return run


def quantize(x: np.ndarray, scale: float, qmin: int, qmax: int) -> np.ndarray:
    """Float to symmetric integers: round half to even, then saturate."""
    return np.clip(np.rint(np.asarray(x, np.float64) / scale), qmin, qmax).astype(np.int64)


def dequantize(q: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    return (np.asarray(q, np.float64) * np.asarray(scale, np.float64)).astype(np.float32)






HOST_OPS: dict[str, HostFn] = {
    "relu": lambda xs, a, arr: np.maximum(xs[0], 0),
    "leaky_relu": lambda xs, a, arr: np.where(_f(xs[0]) > 0, _f(xs[0]),
                                              np.float32(a["alpha"]) * _f(xs[0])),
    "prelu": lambda xs, a, arr: np.where(_f(xs[0]) > 0, _f(xs[0]), arr["slope"] * _f(xs[0])),
    "sigmoid": lambda xs, a, arr: (1.0 / (1.0 + np.exp(-_f(xs[0])))).astype(np.float32),
    "hard_sigmoid": lambda xs, a, arr: np.clip(np.float32(a["alpha"]) * _f(xs[0])
                                               + np.float32(a["beta"]), 0, 1),
    "hard_swish": lambda xs, a, arr: _f(xs[0]) * np.clip(_f(xs[0]) / 6 + np.float32(0.5), 0, 1),
    "tanh": lambda xs, a, arr: np.tanh(_f(xs[0])),
    "softmax": lambda xs, a, arr: softmax(_f(xs[0]), a.get("axis", -1)),
    "log_softmax": lambda xs, a, arr: log_softmax(_f(xs[0]), a.get("axis", -1)),
    "maxpool": lambda xs, a, arr: maxpool(xs[0], a),
    "avgpool": lambda xs, a, arr: avgpool(xs[0], a),
    "global_maxpool": lambda xs, a, arr: xs[0].max(axis=(1, 2)),
    "global_avgpool": lambda xs, a, arr: _f(xs[0]).mean(axis=(1, 2), dtype=np.float32),
    "reduce": lambda xs, a, arr: reduce(xs[0], a),
    "lrn": lambda xs, a, arr: lrn(_f(xs[0]), a),
    "reshape": lambda xs, a, arr: xs[0].reshape(xs[0].shape[0], *a["shape"]),
    "transpose": lambda xs, a, arr: xs[0].transpose(0, *[p + 1 for p in a["perm"]]),
    "slice": lambda xs, a, arr: slice_(xs[0], a),
    "elu": lambda xs, a, arr: np.where(_f(xs[0]) > 0, _f(xs[0]),
                                       np.float32(a["alpha"]) * np.expm1(_f(xs[0]))),
    "celu": lambda xs, a, arr: (np.maximum(_f(xs[0]), 0) + np.minimum(
        0, np.float32(a["alpha"]) * np.expm1(_f(xs[0]) / np.float32(a["alpha"])))),
    "selu": lambda xs, a, arr: np.float32(a["gamma"]) * np.where(
        _f(xs[0]) > 0, _f(xs[0]), np.float32(a["alpha"]) * np.expm1(_f(xs[0]))),
    "thresholded_relu": lambda xs, a, arr: np.where(_f(xs[0]) > a["alpha"], _f(xs[0]), 0),
    "softplus": lambda xs, a, arr: np.logaddexp(np.float32(0), _f(xs[0])).astype(np.float32),
    "softsign": lambda xs, a, arr: _f(xs[0]) / (1 + np.abs(_f(xs[0]))),
    "clip": lambda xs, a, arr: np.clip(_f(xs[0]), a["min"], a["max"]),
    "exp": lambda xs, a, arr: np.exp(_f(xs[0])),
    "log": lambda xs, a, arr: np.log(_f(xs[0])),
    "sqrt": lambda xs, a, arr: np.sqrt(_f(xs[0])),
    "neg": lambda xs, a, arr: -_f(xs[0]),
    "abs": lambda xs, a, arr: np.abs(_f(xs[0])),
    "reciprocal": lambda xs, a, arr: 1 / _f(xs[0]),
    "erf": lambda xs, a, arr: _erf(_f(xs[0])),
    "pad": lambda xs, a, arr: _pad_hw(xs[0], tuple(a["pads"]), a.get("value", 0),
                                      a.get("mode", "constant")),
    "concat": lambda xs, a, arr: np.concatenate(xs, axis=a["axis"]),
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "div": _binary(np.divide),
    "pow": _binary(np.power),
    "avg": _binary(lambda x, y: (x + y) * np.float32(0.5)),
    "max": _binary(np.maximum),
    "min": _binary(np.minimum),
    "affine": lambda xs, a, arr: _f(xs[0]) * arr["scale"] + arr["bias"],
    "identity": lambda xs, a, arr: xs[0],
    "tile": lambda xs, a, arr: np.tile(xs[0], (1, *a["reps"])),
    "instance_norm": lambda xs, a, arr: instance_norm(_f(xs[0]), a["epsilon"], arr),
}

# Host ops that are exact on integer tensors: their output keeps the input's scale. ``concat``
# and ``pad`` qualify only under conditions the lowering checks (equal input scales; zero or
# edge/reflect padding).
INT_EXACT = {"relu", "maxpool", "global_maxpool", "reshape", "transpose", "identity", "slice"}


def run_host(op: str, inputs: list[np.ndarray], attrs: dict[str, Any],
             arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Run one host op; unknown names raise KeyError naming the op."""
    if op not in HOST_OPS:
        raise KeyError(f"no host implementation for op {op!r}")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return HOST_OPS[op](inputs, attrs, arrays)
