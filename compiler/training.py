"""Training on the array: the integer GEMMs of a training step and their quantisation.

A training step of a Dense/Conv layer ``Y = A @ B`` (A: activations or im2col patches, M x K;
B: weights, K x N) has three products, all of which run on the array as raw-mode GEMM commands
(no requantisation: the int32 accumulator comes back and the host rescales it):

* forward          ``Y  = A  @ B``       A per-tensor, B per output column (round to nearest);
* input gradient   ``dA = dY @ B.T``     dY scaled by B's column scales, per row (stochastic);
* weight gradient  ``dB = A.T @ dY``     A's forward integers reused, dY per column (stochastic).

Every scale factors out of the product (a row scale of the left operand, a column scale of the
right one), so ``product = (qa @ qb) * row_scale * col_scale`` exactly in integers.

The accumulator must never wrap. Cauchy-Schwarz bounds every output of a product,
``|sum_k qa[m,k] qb[k,n]| <= ||qa[m,:]|| * ||qb[:,n]||``, and the norms of the quantised rows and
columns are bounded before rounding (rounding moves each element by at most 1/2, or 1 for
stochastic rounding). ``fit_headroom`` chooses how much to coarsen the scales so that bound stays
within int32; with int8 operands it never binds for K below 130,000, with int16 it costs the
few bits the data does not need. Commands are thus fixed by the shapes alone, so a step's cycles
follow from the cycle model before any data is seen (``step_commands``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from morphware.compiler.lower import m_chunks
from morphware.systolic.circuit import get_circuit
from morphware.systolic.commands import GemmCall
from morphware.systolic.params import ArrayParams

ACC_LIMIT = (1 << 31) - 1
SAFETY = 0.999  # float error in the norms: aim a hair below the limit
BISECT_STEPS = 60


class OverflowRisk(ValueError):
    """No choice of scales keeps a product inside the 32-bit accumulator (K far too deep)."""


@dataclass(frozen=True)
class QTensor:
    """Integers ``q`` (int64) with ``value ~= q * scale``; ``scale`` broadcasts against ``q``
    (a scalar, a column ``(M, 1)`` of row scales or a row ``(1, N)`` of column scales)."""

    q: np.ndarray
    scale: np.ndarray

    @property
    def t(self) -> QTensor:
        return QTensor(self.q.T, self.scale.T)


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def base_scale(x: np.ndarray, bits: int, axis: int | None) -> np.ndarray:
    """Symmetric scale mapping max |x| (per tensor, or along ``axis``) to qmax; 1 where zero."""
    m = np.abs(x).max(axis=axis, keepdims=True) if axis is not None else np.array(np.abs(x).max())
    return np.where(m > 0, m / qmax(bits), 1.0).astype(np.float64)


def max_norm(z: np.ndarray, side: str) -> float:
    """Largest L2 norm of the rows (``side="left"``) or columns (``"right"``) of ``z``."""
    axis = 1 if side == "left" else 0
    return float(np.sqrt(np.square(z).sum(axis=axis)).max()) if z.size else 0.0


def fit_headroom(norm_a: float, err_a: float, free_a: bool, norm_b: float, err_b: float,
                 free_b: bool, limit: float = ACC_LIMIT) -> float:
    """Factor ``u`` in (0, 1] to multiply the free operands' scaled values by so that
    ``(norm_a * u_a + err_a) * (norm_b * u_b + err_b) <= limit`` (``u_x = u`` if free else 1).

    ``norm`` is the largest row (left) or column (right) norm of the operand in quantisation
    units, ``err`` the largest norm rounding can add (sqrt(K)/2 nearest, sqrt(K) stochastic).
    """
    budget = limit * SAFETY

    def bound(u: float) -> float:
        return ((norm_a * (u if free_a else 1.0) + err_a)
                * (norm_b * (u if free_b else 1.0) + err_b))

    if bound(1.0) <= budget:
        return 1.0
    if bound(0.0) > budget:
        raise OverflowRisk(f"a product with operand norms {norm_a:.3g} x {norm_b:.3g} cannot fit "
                           f"the 32-bit accumulator at any scale; the inner dimension is too deep")
    lo, hi = 0.0, 1.0
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bound(mid) <= budget else (lo, mid)
    return lo


def round_units(z: np.ndarray, bits: int, noise: np.ndarray | None) -> np.ndarray:
    """Round values already in quantisation units: to nearest, or stochastically with uniform
    [0, 1) ``noise`` (unbiased: E[q] = z); saturated to +-qmax."""
    q = np.rint(z) if noise is None else np.floor(z + noise)
    top = qmax(bits)
    return np.clip(q, -top, top).astype(np.int64)


@dataclass(frozen=True)
class Operand:
    """One side of a product to quantise: float values, how to scale them, how to round."""

    x: np.ndarray
    axis: int | None            # None: per tensor; 1: per row (left); 0: per column (right)
    noise: np.ndarray | None = None  # stochastic rounding noise, same shape as x

    def rounding_error(self, side: str) -> float:
        """Largest norm rounding can add to a row (left) or column (right): each element
        moves by at most 1/2 (nearest) or 1 (stochastic)."""
        inner = self.x.shape[1] if side == "left" else self.x.shape[0]
        return math.sqrt(inner) * (1.0 if self.noise is not None else 0.5)


def quantize_pair(left: Operand | QTensor, right: Operand | QTensor, bits: int
                  ) -> tuple[QTensor, QTensor]:
    """Quantise the operands of ``left @ right`` so that no output can exceed int32.

    An operand given as a QTensor is already integer (reused from the forward pass) and keeps
    its scale; the free ones share the coarsening ``fit_headroom`` chooses.
    """
    sides: list[dict[str, Any]] = []
    for op, side in ((left, "left"), (right, "right")):
        if isinstance(op, QTensor):
            sides.append({"free": False, "norm": max_norm(op.q.astype(np.float64), side),
                          "err": 0.0})
        else:
            if not np.all(np.isfinite(op.x)):
                raise ValueError("non-finite values cannot be quantised for the array")
            s = base_scale(op.x, bits, op.axis)
            z = np.asarray(op.x, np.float64) / s
            sides.append({"free": True, "norm": max_norm(z, side), "err": op.rounding_error(side),
                          "z": z, "s": s, "noise": op.noise})
    u = fit_headroom(sides[0]["norm"], sides[0]["err"], sides[0]["free"],
                     sides[1]["norm"], sides[1]["err"], sides[1]["free"])
    out = []
    for op, sd in zip((left, right), sides, strict=True):
        if isinstance(op, QTensor):
            out.append(op)
        else:
            out.append(QTensor(round_units(sd["z"] * u, bits, sd["noise"]), sd["s"] / u))
    return out[0], out[1]


def orientation(m: int, k: int, n: int, p: ArrayParams, circuit: str = "ws") -> bool:
    """Whether ``a @ w`` is cheaper issued transposed, as ``(w.T @ a.T).T`` (cycle model)."""
    return command_cycles(n, k, m, p, circuit) < command_cycles(m, k, n, p, circuit)


def command_cycles(m: int, k: int, n: int, p: ArrayParams, circuit: str = "ws") -> int:
    """Cycles of an (m x k) @ (k x n) product issued as is, split into commands by rows."""
    cycles = get_circuit(circuit).cycles
    return sum(int(cycles(rows, k, n, p)) for _, rows in m_chunks(m, p.acc_depth))


def product_commands(m: int, k: int, n: int, p: ArrayParams, circuit: str = "ws"
                     ) -> list[tuple[int, int, int]]:
    """The (m, k, n) of every array command one product issues, in the cheaper orientation."""
    if orientation(m, k, n, p, circuit):
        m, n = n, m
    return [(rows, k, n) for _, rows in m_chunks(m, p.acc_depth)]


@dataclass(frozen=True)
class GemmLayer:
    """A GEMM layer as training sees it: per sample ``rows`` x ``k`` activations (rows: 1 for
    Dense, OH*OW for Conv) times a ``k`` x ``n`` weight; ``input_grad``: whether its input
    needs a gradient (not for the first layer, whose input is the data)."""

    rows: int
    k: int
    n: int
    input_grad: bool = True


def step_products(layers: Sequence[GemmLayer], batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every product of one training step on ``batch`` samples."""
    out = []
    for ly in layers:
        m = batch * ly.rows
        out.append((m, ly.k, ly.n))            # forward
        if ly.input_grad:
            out.append((m, ly.n, ly.k))        # dA = dY @ B.T
        out.append((ly.k, m, ly.n))            # dB = A.T @ dY
    return out


def step_cycles(layers: Sequence[GemmLayer], batch: int, p: ArrayParams,
                circuit: str = "ws") -> int:
    """Array cycles of one training step (cycle model; stalls and host work excluded)."""
    cycles = get_circuit(circuit).cycles
    return sum(int(cycles(*c, p)) for prod in step_products(layers, batch)
               for c in product_commands(*prod, p, circuit))


def epoch_cycles(layers: Sequence[GemmLayer], samples: int, batch: int, p: ArrayParams,
                 circuit: str = "ws") -> int:
    """Array cycles of one epoch: full batches and the last, partial one."""
    full, rest = divmod(samples, batch)
    total = full * step_cycles(layers, batch, p, circuit)
    return total + (step_cycles(layers, rest, p, circuit) if rest else 0)


@dataclass
class ArrayStats:
    """What the array did: commands, cycles (as reported by the engine) and MACs."""

    products: int = 0
    commands: int = 0
    cycles: int = 0
    macs: int = 0
    log: list[tuple[GemmCall, Any]] | None = None  # every (call, result), when recording


@dataclass
class IntGemm:
    """Runs integer products on a GEMM engine (``gemm(calls) -> results``: the compiler's
    golden or RTL executor, or the FPGA driver) as raw-mode commands."""

    engine: Any
    params: ArrayParams
    circuit: str = "ws"
    stats: ArrayStats = field(default_factory=ArrayStats)

    def record(self, on: bool = True) -> None:
        """Keep every command and its result in ``stats.log`` (tests compare engines)."""
        self.stats.log = [] if on else None

    def _calls(self, a: np.ndarray, w: np.ndarray) -> tuple[list[GemmCall], bool]:
        m, k = a.shape
        n = w.shape[1]
        flip = orientation(m, k, n, self.params, self.circuit)
        if flip:
            a, w = w.T, a.T
        n_out = w.shape[1]
        zeros, ones = np.zeros(n_out, np.int64), np.ones(n_out, np.int64)
        w = np.ascontiguousarray(w, np.int64)
        calls = [GemmCall(np.ascontiguousarray(a[s:s + rows], np.int64), w, zeros, ones, zeros,
                          raw=True) for s, rows in m_chunks(a.shape[0], self.params.acc_depth)]
        return calls, flip

    def products(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Exact integer ``a @ w`` of every pair, all in one engine call (one simulator run
        for the RTL); each in the orientation the cycle model prefers."""
        plans, calls = [], []
        for a, w in pairs:
            if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
                raise ValueError(f"array product needs (M, K) @ (K, N), got {a.shape} @ {w.shape}")
            if a.size == 0 or w.size == 0:
                raise ValueError(f"array product of an empty operand: {a.shape} @ {w.shape}")
            cs, flip = self._calls(a, w)
            plans.append((len(calls), len(cs), flip))
            calls += cs
        results = self.engine.gemm(calls)
        if len(results) != len(calls):
            raise RuntimeError(f"GEMM engine returned {len(results)} results for {len(calls)} "
                               "commands")
        self._account(calls, results)
        outs = []
        for start, count, flip in plans:
            y = np.concatenate([np.asarray(r.out, np.int64) for r in results[start:start + count]])
            outs.append(y.T if flip else y)
        return outs

    def _account(self, calls: list[GemmCall], results: list[Any]) -> None:
        st = self.stats
        st.commands += len(calls)
        for c, r in zip(calls, results, strict=True):
            st.cycles += int(r.cycles)
            st.macs += c.a.shape[0] * c.a.shape[1] * c.w.shape[1]
            if st.log is not None:
                st.log.append((c, r))

    def matmul(self, a: QTensor, b: QTensor) -> np.ndarray:
        """Float ``a @ b`` from the integer product and the operands' scales."""
        return self.matmuls([(a, b)])[0]

    def matmuls(self, pairs: Sequence[tuple[QTensor, QTensor]]) -> list[np.ndarray]:
        outs = self.products([(a.q, b.q) for a, b in pairs])
        self.stats.products += len(pairs)
        return [acc.astype(np.float64) * a.scale * b.scale
                for acc, (a, b) in zip(outs, pairs, strict=True)]
