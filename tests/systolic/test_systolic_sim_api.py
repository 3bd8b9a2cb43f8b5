"""The simulation API's input checks and the scoreboard, without running a simulator."""

from __future__ import annotations

import numpy as np
import pytest
from morphware.systolic.circuit import get_circuit
from morphware.systolic.commands import GemmCall, GemmResult
from morphware.systolic.cycle_model import gemm_cycles
from morphware.systolic.golden import gemm
from morphware.systolic.params import ArrayParams
from morphware.systolic.sim import Stress, run_gemms
from morphware.systolic.verify import directed_cases, random_cases, score

P = ArrayParams(2, 3, acc_depth=8)


def _call(m: int = 2, k: int = 3, n: int = 4) -> GemmCall:
    rng = np.random.default_rng(0)
    return GemmCall(rng.integers(-128, 128, (m, k)), rng.integers(-128, 128, (k, n)),
                    np.zeros(n, np.int64), np.ones(n, np.int64), np.zeros(n, np.int64))


def test_run_gemms_rejects_unknown_simulator() -> None:
    with pytest.raises(ValueError, match="unknown simulator"):
        run_gemms(P, [_call()], sim="modelsim")


def test_run_gemms_checks_operands_before_simulating() -> None:
    bad = _call()
    bad.shift = np.full(4, 60)
    with pytest.raises(ValueError, match="shift"):
        run_gemms(P, [bad], sim="icarus")
    with pytest.raises(ValueError, match="rows"):
        run_gemms(P, [_call(m=9)], sim="icarus")


def test_run_gemms_of_nothing_is_nothing() -> None:
    assert run_gemms(P, [], sim="icarus") == []


def test_stress_probabilities_are_checked() -> None:
    assert Stress(0.5, 0.0, 0.25).levels().tolist() == [128, 0, 64]
    with pytest.raises(ValueError, match="probabilities"):
        Stress(o_stall=1.0).levels()


def test_scoreboard_flags_wrong_values_and_wrong_cycles() -> None:
    circ = get_circuit()
    c = _call()
    good = gemm(c.a, c.w, c.bias, c.mult, c.shift, P)
    cyc = gemm_cycles(2, 3, 4, P)
    wrong = good.copy()
    wrong[1, 2] += 1
    res = score(circ, P, [("ok", c), ("bad value", c), ("bad cycles", c)],
                [GemmResult(good, cyc, 0), GemmResult(wrong, cyc, 0),
                 GemmResult(good, cyc + 1, 3)])
    assert [(r.passed, r.cycles_ok) for r in res] == [(True, True), (False, True), (True, False)]
    assert res[1].mismatches == 1


def test_suite_cases_are_legal_for_the_array() -> None:
    for p in (ArrayParams(2, 2), ArrayParams(3, 5, data_bits=16), ArrayParams(16, 16)):
        for _, c in directed_cases(p) + random_cases(p, seed=1):
            gemm(c.a, c.w, c.bias, c.mult, c.shift, p, c.relu, c.raw)  # raises if out of range
            assert 1 <= c.a.shape[0] <= p.acc_depth
