"""cocotb simulation of the ws array on Icarus and Verilator, scored against the golden model and
the cycle model (the suite itself lives in morphware.systolic.verify)."""

from __future__ import annotations

import pytest
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams
from morphware.systolic.sim import Stress
from morphware.systolic.verify import CaseResult, run_suite

pytestmark = pytest.mark.rtl

SHAPES = [(2, 2), (3, 5), (4, 4), (8, 8)]


def assert_all_good(results: list[CaseResult]) -> None:
    bad = [r for r in results if not (r.passed and r.cycles_ok)]
    assert not bad, "\n".join(map(str, bad))


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("rows,cols", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
def test_suite_bit_exact_and_cycle_exact(sim: str, rows: int, cols: int) -> None:
    res = run_suite(get_circuit(), ArrayParams(rows, cols), sim, seed=rows * 31 + cols)
    assert_all_good(res)
    assert all(r.stall_cycles == 0 for r in res)  # free-flowing streams never stall the array


def test_suite_16x16_verilator() -> None:
    assert_all_good(run_suite(get_circuit(), ArrayParams(16, 16), "verilator", seed=16))


@pytest.mark.parametrize("rows,cols", [(1, 16), (7, 2)], ids=["1x16", "7x2"])
def test_extreme_aspect_ratios_icarus(rows: int, cols: int) -> None:
    """C > 2R + 6 makes ceil(C/2) set the slot (parameter-ring spacing); R >> C the opposite."""
    assert_all_good(run_suite(get_circuit(), ArrayParams(rows, cols), "icarus", seed=11))


def test_int16_icarus() -> None:
    assert_all_good(run_suite(get_circuit(), ArrayParams(3, 4, data_bits=16), "icarus", seed=5))


@pytest.mark.parametrize("sim,rows,cols", [("icarus", 3, 5), ("verilator", 4, 4)])
def test_backpressure_and_valid_gaps(sim: str, rows: int, cols: int) -> None:
    res = run_suite(get_circuit(), ArrayParams(rows, cols), sim, seed=7,
                    stress=Stress(a_gap=0.4, w_gap=0.4, o_stall=0.5))
    assert_all_good(res)  # cycles exclude stalls, so they still equal the model
    assert sum(r.stall_cycles for r in res) > 0


def test_reset_in_the_middle_of_a_run() -> None:
    res = run_suite(get_circuit(), ArrayParams(4, 4), "icarus", seed=3,
                    stress=Stress(o_stall=0.3, interrupt_after=23), random_count=3)
    assert_all_good(res)
