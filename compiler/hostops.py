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


def _pad_hw(x: np.ndarray, pads: Pads, value: float | int) -> np.ndarray:
    t, b, left, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: Pads,
            value: float | int = 0) -> np.ndarray:
    """Sliding windows of an NHWC tensor: returns ``(N, OH, OW, KH, KW, C)``."""
    xp = _pad_hw(x, pads, value)
    if xp.shape[1] < kh or xp.shape[2] < kw:
        raise ValueError(f"window {kh}x{kw} larger than padded input {xp.shape[1:3]}")
    v = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))  # N,H',W',C,KH,KW
    v = v[:, ::sh, ::sw]
    return v.transpose(0, 1, 2, 4, 5, 3)


def im2col(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: Pads) -> np.ndarray:
    """Patches of an NHWC tensor as GEMM rows ``(N*OH*OW, KH*KW*C)``, ordered (kh, kw, c) like
    the Conv2D weight ``(KH, KW, Cin, Cout)`` reshaped to ``(KH*KW*Cin, Cout)``."""
    v = windows(x, kh, kw, sh, sw, pads, 0)
    n, oh, ow = v.shape[:3]
    return np.ascontiguousarray(v).reshape(n * oh * ow, -1)


def conv_out_hw(h: int, w: int, kh: int, kw: int, sh: int, sw: int, pads: Pads) -> tuple[int, int]:
    t, b, left, r = pads
    return (h + t + b - kh) // sh + 1, (w + left + r - kw) // sw + 1


def maxpool(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: Pads) -> np.ndarray:
    low = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
    return windows(x, kh, kw, sh, sw, pads, low).max(axis=(3, 4))


def avgpool(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: Pads) -> np.ndarray:
    """Average over the valid (unpadded) elements of each window, as ONNX's default does."""
    s = windows(x.astype(np.float32), kh, kw, sh, sw, pads, 0).sum(axis=(3, 4))
    ones = np.ones((1, *x.shape[1:3], 1), dtype=np.float32)
    cnt = windows(ones, kh, kw, sh, sw, pads, 0).sum(axis=(3, 4))
    return (s / cnt).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def quantize(x: np.ndarray, scale: float, qmin: int, qmax: int) -> np.ndarray:
    """Float to symmetric integers: round half to even, then saturate."""
    return np.clip(np.rint(np.asarray(x, np.float64) / scale), qmin, qmax).astype(np.int64)


def dequantize(q: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    return (np.asarray(q, np.float64) * np.asarray(scale, np.float64)).astype(np.float32)


def _f(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32)


# Ops on float tensors (or on integers where exact); each takes (inputs, attrs, arrays).
HostFn = Callable[[list[np.ndarray], dict[str, Any], dict[str, np.ndarray]], np.ndarray]


def _pool_args(a: dict[str, Any]) -> tuple[int, int, int, int, Pads]:
    return a["kh"], a["kw"], a["sh"], a["sw"], tuple(a["pads"])  # type: ignore[return-value]


HOST_OPS: dict[str, HostFn] = {
    "relu": lambda xs, a, arr: np.maximum(xs[0], 0),
    "leaky_relu": lambda xs, a, arr: np.where(_f(xs[0]) > 0, _f(xs[0]),
                                              np.float32(a["alpha"]) * _f(xs[0])),
    "sigmoid": lambda xs, a, arr: (1.0 / (1.0 + np.exp(-_f(xs[0])))).astype(np.float32),
    "tanh": lambda xs, a, arr: np.tanh(_f(xs[0])),
    "softmax": lambda xs, a, arr: softmax(_f(xs[0])),
    "maxpool": lambda xs, a, arr: maxpool(xs[0], *_pool_args(a)),
    "avgpool": lambda xs, a, arr: avgpool(xs[0], *_pool_args(a)),
    "global_maxpool": lambda xs, a, arr: xs[0].max(axis=(1, 2)),
    "global_avgpool": lambda xs, a, arr: _f(xs[0]).mean(axis=(1, 2), dtype=np.float32),
    "reshape": lambda xs, a, arr: xs[0].reshape(xs[0].shape[0], *a["shape"]),
    "transpose": lambda xs, a, arr: xs[0].transpose(0, *[p + 1 for p in a["perm"]]),
    "elu": lambda xs, a, arr: np.where(_f(xs[0]) > 0, _f(xs[0]),
                                       np.float32(a["alpha"]) * np.expm1(_f(xs[0]))),
    "softplus": lambda xs, a, arr: np.logaddexp(np.float32(0), _f(xs[0])).astype(np.float32),
    "softsign": lambda xs, a, arr: _f(xs[0]) / (1 + np.abs(_f(xs[0]))),
    "pad": lambda xs, a, arr: _pad_hw(xs[0], tuple(a["pads"]), 0),
    "concat": lambda xs, a, arr: np.concatenate([_f(x) for x in xs], axis=a["axis"]),
    "add": lambda xs, a, arr: _f(xs[0]) + _f(xs[1]),
    "sub": lambda xs, a, arr: _f(xs[0]) - _f(xs[1]),
    "mul": lambda xs, a, arr: _f(xs[0]) * _f(xs[1]),
    "avg": lambda xs, a, arr: (_f(xs[0]) + _f(xs[1])) * np.float32(0.5),
    "max": lambda xs, a, arr: np.maximum(_f(xs[0]), _f(xs[1])),
    "affine": lambda xs, a, arr: _f(xs[0]) * arr["scale"] + arr["bias"],
    "identity": lambda xs, a, arr: xs[0],
}

# Host ops that are exact on integer tensors: their output keeps the input's scale.
INT_EXACT = {"relu", "maxpool", "global_maxpool", "reshape", "transpose", "identity", "pad"}


def run_host(op: str, inputs: list[np.ndarray], attrs: dict[str, Any],
             arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Run one host op; unknown names raise KeyError naming the op."""
    if op not in HOST_OPS:
        raise KeyError(f"no host implementation for op {op!r}")
    return HOST_OPS[op](inputs, attrs, arrays)
