"""The golden model: the exact integer semantics of the array's GEMM command, in numpy.

This is the specification every executor (RTL simulation, FPGA, the compiler's golden executor)
must match bit for bit. Rules, written down once:

* inputs ``a`` (M x K) and weights ``w`` (K x N) are signed ``data_bits`` integers;
* products are exact; the accumulator is ``acc_bits`` (32) wide and WRAPS (two's complement) on
  overflow, both while summing over K and when the bias is added;
* requantisation per output column n:  ``p = (acc + bias[n]) * mult[n]`` exactly (<= 48 bits:
  32-bit sum times 16-bit unsigned multiplier), then a rounding arithmetic right shift by
  ``shift[n]`` (0..47): ``y = (p + 2**(shift-1)) >> shift`` (round half towards +inf; no rounding
  term when shift == 0);
* optional ReLU: ``y = max(y, 0)``;
* saturation to the output width: ``clip(y, -2**(data_bits-1), 2**(data_bits-1)-1)``.
* ``raw`` mode skips requantisation, ReLU and saturation and returns ``acc + bias`` (wrapped int32).
"""

from __future__ import annotations

import numpy as np
from morphware.systolic.params import ArrayParams

MULT_BITS = 16
MAX_SHIFT = 47


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits``."""
    x = np.asarray(x, dtype=np.int64)
    m = np.int64(1) << np.int64(bits)
    h = np.int64(1) << np.int64(bits - 1)
    return ((x + h) & (m - 1)) - h


def check_operands(a: np.ndarray, w: np.ndarray, p: ArrayParams) -> None:
    """Raise ValueError naming the operand that is out of range or misshaped."""
    if a.ndim != 2 or w.ndim != 2:
        raise ValueError(f"gemm operands must be 2-D, got a{a.shape} w{w.shape}")
    if a.shape[1] != w.shape[0]:
        raise ValueError(f"gemm inner dimensions differ: a{a.shape} w{w.shape}")
    for name, x in (("a", a), ("w", w)):
        if x.size and (x.min() < p.qmin or x.max() > p.qmax):
            raise ValueError(f"operand {name} outside int{p.data_bits}: [{x.min()}, {x.max()}]")


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, relu: bool,
               p: ArrayParams) -> np.ndarray:
    """The output stage, applied to wrapped ``acc + bias`` values (int64 array, M x N)."""
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if mult.size and (mult.min() < 0 or mult.max() >= (1 << MULT_BITS)):
        raise ValueError(f"mult outside uint{MULT_BITS}")
    if shift.size and (shift.min() < 0 or shift.max() > MAX_SHIFT):
        raise ValueError(f"shift outside 0..{MAX_SHIFT}")
    prod = acc * mult
    rnd = np.where(shift > 0, np.int64(1) << np.maximum(shift - 1, 0), 0)
    y = (prod + rnd) >> shift
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, p.qmin, p.qmax)


FLOAT_EXACT = 2**53  # every integer below this is a float64


def exact_matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a @ w`` of int64 matrices, exactly. numpy has no BLAS for integers; float64 BLAS is
    exact when no product or partial sum can reach 2**53 (K x max|a| x max|w| below it: always
    for 8- and 16-bit operands at any K under 2**21), and several times faster."""
    amax = int(np.abs(a).max(initial=0))
    wmax = int(np.abs(w).max(initial=0))
    if amax * wmax * max(a.shape[-1], 1) < FLOAT_EXACT:
        return (a.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    return a @ w


def gemm(a: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
         p: ArrayParams, relu: bool = False, raw: bool = False) -> np.ndarray:
    """One GEMM command: ``a`` (M x K) times ``w`` (K x N) with the per-column output stage.

    Returns int64 values: saturated to data_bits normally, wrapped int32 in ``raw`` mode.
    """
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    check_operands(a, w, p)
    acc = wrap(exact_matmul(a, w), p.acc_bits)  # exact; the sum wraps mod 2**acc_bits
    acc = wrap(acc + np.asarray(bias, dtype=np.int64), p.acc_bits)
    if raw:
        return acc
    return requantize(acc, mult, shift, relu, p)
