"""Post-training quantisation: symmetric scales, per-output-channel weights, and the integer
requantisation (16-bit multiplier + rounding shift) the array's output stage executes."""

from __future__ import annotations

import numpy as np
from morphware.systolic.golden import MAX_SHIFT, MULT_BITS


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def tensor_scale(max_abs: float, bits: int) -> float:
    """Symmetric per-tensor scale; an all-zero tensor gets scale 1 so nothing divides by zero."""
    return float(max_abs) / qmax(bits) if max_abs > 0 else 1.0


ACC_BUDGET = 1 << 30  # |sum a*w| bound, leaving half the int32 range to the bias


def quantize_weights(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (last axis) symmetric weights: returns ``(wq int64, scale float64[N])``.

    The 32-bit accumulator must never wrap: for every column, ``qmax * sum_k |wq[k, n]|`` (the
    worst case over all inputs) stays within ACC_BUDGET. With int8 this never binds; with int16
    it coarsens the weights of wide columns instead of letting the sum overflow.
    """
    w2 = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
    m = np.abs(w2).max(axis=0)
    l1 = np.abs(w2).sum(axis=0)
    # rounding adds at most 1/2 per element: sum|wq| <= l1/scale + K/2
    room = ACC_BUDGET - qmax(bits) * w2.shape[0] / 2
    if room <= 0:
        raise ValueError(f"K = {w2.shape[0]} is too deep for a 32-bit accumulator at int{bits}")
    scale = np.maximum(m / qmax(bits), l1 * qmax(bits) / room)
    scale = np.where(m > 0, scale, 1.0)
    wq = np.clip(np.rint(w2 / scale), -qmax(bits), qmax(bits)).astype(np.int64)
    return wq.reshape(w.shape), scale


def quantize_bias(b: np.ndarray, acc_scale: np.ndarray) -> np.ndarray:
    """Bias in accumulator units (``s_x * s_w[n]``), saturated to +-ACC_BUDGET (so that
    ``acc + bias`` cannot wrap either)."""
    return np.clip(np.rint(np.asarray(b, np.float64) / acc_scale), -ACC_BUDGET, ACC_BUDGET).astype(np.int64)


def requant_params(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approximate each real ``ratio`` = s_x*s_w/s_y as ``mult / 2**shift``.

    The shift is the largest (<= MAX_SHIFT) that keeps ``mult`` within uint16, so the multiplier
    keeps 15-16 significant bits. Ratios too small for shift MAX_SHIFT underflow towards 0 and a
    ratio >= 2**16 (never seen with calibrated scales) saturates mult.
    """
    ratio = np.asarray(ratio, np.float64)
    if np.any(ratio < 0) or not np.all(np.isfinite(ratio)):
        raise ValueError("requantisation ratios must be finite and non-negative")
    top = (1 << MULT_BITS) - 1
    shift = np.zeros(ratio.shape, np.int64)
    pos = ratio > 0
    # ratio * 2**shift <= top  <=>  shift <= log2(top / ratio)
    shift[pos] = np.floor(np.log2(top / ratio[pos])).astype(np.int64)
    shift = np.clip(shift, 0, MAX_SHIFT)
    mult = np.rint(np.minimum(ratio * np.exp2(shift), 2.0 ** 62)).astype(np.int64)
    over = mult > top  # float rounding at the boundary
    shift[over] = np.maximum(shift[over] - 1, 0)
    mult = np.clip(np.rint(ratio * np.exp2(shift)), 0, top).astype(np.int64)
    return mult, shift
