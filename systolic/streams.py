"""Beat-level AXI4-Stream images of one GEMM command (format: see ``regmap``).

Drivers (simulation or DMA) send these beats; the functions are vectorised so a 256^3 GEMM packs in
well under a second.
"""

from __future__ import annotations

import numpy as np
from morphware.systolic.cycle_model import tiles
from morphware.systolic.golden import MAX_SHIFT, MULT_BITS, check_operands
from morphware.systolic.params import ArrayParams


def _pad(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=np.int64)
    out[: x.shape[0], : x.shape[1]] = x
    return out


def check_call(a: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: np.ndarray,
               shift: np.ndarray, p: ArrayParams) -> None:
    """Raise ValueError naming the first operand the array cannot take."""
    check_operands(a, w, p)
    n = w.shape[1]
    if not 1 <= a.shape[0] <= p.acc_depth:
        raise ValueError(f"a has {a.shape[0]} rows; one command takes 1..{p.acc_depth}")
    for name, v in (("bias", bias), ("mult", mult), ("shift", shift)):
        if np.shape(v) != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {np.shape(v)}")
    if np.any(bias < -(1 << 31)) or np.any(bias >= (1 << 31)):
        raise ValueError("bias outside int32")
    if np.any(mult < 0) or np.any(mult >= (1 << MULT_BITS)):
        raise ValueError(f"mult outside uint{MULT_BITS}")
    if np.any(shift < 0) or np.any(shift > MAX_SHIFT):
        raise ValueError(f"shift outside 0..{MAX_SHIFT}")


def activation_beats(a: np.ndarray, n: int, p: ArrayParams) -> np.ndarray:
    """(NT * KT * M, R) lane values for ``s_axis_a``."""
    m, k = a.shape
    kt, nt = tiles(k, n, p)
    ap = _pad(np.asarray(a, dtype=np.int64), m, kt * p.rows)
    per_n = ap.reshape(m, kt, p.rows).transpose(1, 0, 2).reshape(kt * m, p.rows)
    return np.tile(per_n, (nt, 1))


def weight_beats(w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                 p: ArrayParams) -> np.ndarray:
    """(NT * (KT * R + 3), C) lane values for ``s_axis_w``."""
    k, n = w.shape
    kt, nt = tiles(k, n, p)
    wp = _pad(np.asarray(w, dtype=np.int64), kt * p.rows, nt * p.cols)
    params = np.stack([_pad(np.asarray(v, dtype=np.int64)[None, :], 1, nt * p.cols)[0]
                       for v in (bias, mult, shift)])
    out = []
    for j in range(nt):
        cols = slice(j * p.cols, (j + 1) * p.cols)
        for i in range(kt):
            out.append(wp[i * p.rows:(i + 1) * p.rows, cols])
            if i == 0:
                out.append(params[:, cols])
    return np.concatenate(out)


def to_hex_lines(beats: np.ndarray, lane_bits: int) -> list[str]:
    """One hex string per beat, lane 0 in the least significant bits (two's complement lanes)."""
    dtype = {8: "<i1", 16: "<i2", 32: "<i4"}[lane_bits]
    raw = np.ascontiguousarray(beats.astype(np.int64).astype(dtype)).view(np.uint8)
    raw = raw.reshape(beats.shape[0], -1)[:, ::-1]
    return [row.tobytes().hex() for row in raw]


def from_hex_lines(lines: list[str], lanes: int) -> np.ndarray:
    """Inverse of ``to_hex_lines`` for 32-bit lanes: (beats, lanes) int64."""
    nbytes = lanes * 4
    buf = b"".join(bytes.fromhex(s.strip().rjust(2 * nbytes, "0"))[::-1] for s in lines)
    return np.frombuffer(buf, dtype="<i4").reshape(len(lines), lanes).astype(np.int64)


def output_matrix(beats: np.ndarray, m: int, n: int, p: ArrayParams) -> np.ndarray:
    """(M, N) result from the ``m_axis_o`` beats of one command."""
    nt = -(-n // p.cols)
    if beats.shape != (nt * m, p.cols):
        raise ValueError(f"expected {nt * m} output beats of {p.cols} lanes, got {beats.shape}")
    return beats.reshape(nt, m, p.cols).transpose(1, 0, 2).reshape(m, nt * p.cols)[:, :n]
