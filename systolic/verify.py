"""The verification suite: directed and random GEMM commands run on a circuit in simulation and
scored bit for bit against the circuit's golden model, cycles against its cycle model.

It only uses the ``Circuit`` interface, so a second circuit is verified without changing it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from morphware.systolic.circuit import Circuit
from morphware.systolic.commands import GemmCall, GemmResult
from morphware.systolic.params import ArrayParams
from morphware.systolic.sim import Stress, run_gemms


@dataclass
class CaseResult:
    name: str
    m: int
    k: int
    n: int
    passed: bool
    cycles: int
    model_cycles: int
    stall_cycles: int
    mismatches: int

    @property
    def cycles_ok(self) -> bool:
        return self.cycles == self.model_cycles


def _call(rng: np.random.Generator, p: ArrayParams, m: int, k: int, n: int, *,
          relu: bool = False, raw: bool = False, shift_max: int = 24) -> GemmCall:
    return GemmCall(
        a=rng.integers(p.qmin, p.qmax + 1, (m, k)), w=rng.integers(p.qmin, p.qmax + 1, (k, n)),
        bias=rng.integers(-(1 << 20), 1 << 20, n), mult=rng.integers(0, 1 << 16, n),
        shift=rng.integers(0, shift_max + 1, n), relu=relu, raw=raw)


def directed_cases(p: ArrayParams) -> list[tuple[str, GemmCall]]:
    """Extremes: most negative squared, saturation both ways, zeros, wrap, shift 0 and 47, and a
    command that fills the accumulator."""
    r, c = p.rows, p.cols
    k, n, m = 2 * r + 1, c + 1, 3
    lo, hi = p.qmin, p.qmax
    ones = np.ones(n, dtype=np.int64)
    cases = [
        ("min*min raw", GemmCall(np.full((m, k), lo), np.full((k, n), lo), 0 * ones, ones,
                                 0 * ones, raw=True)),
        ("saturate high", GemmCall(np.full((m, k), hi), np.full((k, n), hi), 0 * ones, ones,
                                   0 * ones)),
        ("saturate low", GemmCall(np.full((m, k), lo), np.full((k, n), hi), 0 * ones, ones,
                                  0 * ones)),
        ("zeros", GemmCall(np.zeros((m, k), np.int64), np.zeros((k, n), np.int64), 0 * ones,
                           ones, 0 * ones)),
        ("bias wraps int32", GemmCall(np.full((m, k), lo), np.full((k, n), lo),
                                      np.full(n, (1 << 31) - 1), ones, 0 * ones, raw=True)),
        ("max mult, shift 47", GemmCall(np.full((m, k), hi), np.full((k, n), lo),
                                        np.full(n, -(1 << 31)), np.full(n, (1 << 16) - 1),
                                        np.full(n, 47))),
        ("relu, round half up", GemmCall(np.arange(-m * k, 0).reshape(m, k) % (hi + 1),
                                         np.eye(k, n, dtype=np.int64) - 1, np.arange(n) - n // 2,
                                         ones, np.full(n, 1), relu=True)),
        ("M = acc_depth", _call(np.random.default_rng(99), p, p.acc_depth, r + 1, c + 1,
                                relu=True)),
    ]
    return cases


def random_cases(p: ArrayParams, seed: int = 0, count: int = 6) -> list[tuple[str, GemmCall]]:
    """Random shapes around the tile sizes (K, N not multiples of R, C; M from 1 to 2R+3)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        m = int(rng.integers(1, min(p.acc_depth, 2 * p.rows + 3) + 1))
        k = int(rng.integers(1, 3 * p.rows + 2))
        n = int(rng.integers(1, 3 * p.cols + 2))
        out.append((f"random {i}", _call(rng, p, m, k, n, relu=bool(i % 2), raw=i % 3 == 2)))
    return out


def score(circuit: Circuit, p: ArrayParams, cases: list[tuple[str, GemmCall]],
          results: list[GemmResult]) -> list[CaseResult]:
    """The scoreboard: compare each result with the golden model and the cycle model."""
    out = []
    for (name, c), r in zip(cases, results, strict=True):
        m, k, n = c.a.shape[0], c.a.shape[1], c.w.shape[1]
        want = circuit.golden_gemm(c.a, c.w, c.bias, c.mult, c.shift, p, c.relu, c.raw)
        bad = int(np.count_nonzero(want != r.out)) if want.shape == r.out.shape else want.size
        out.append(CaseResult(name, m, k, n, bad == 0, r.cycles, circuit.cycles(m, k, n, p),
                              r.stall_cycles, bad))
    return out


def run_suite(circuit: Circuit, p: ArrayParams, sim: str = "verilator", seed: int = 0,
              stress: Stress | None = None, random_count: int = 6) -> list[CaseResult]:
    """Directed + random cases in one simulation; every case must pass and match cycles."""
    cases = directed_cases(p) + random_cases(p, seed, random_count)
    stress = replace(stress or Stress(), check_errors=True)
    results = run_gemms(p, [c for _, c in cases], sim=sim, stress=stress, circuit=circuit)
    return score(circuit, p, cases, results)
