"""Golden vs RTL simulation of whole compiled models: bit-exact outputs, cycles = cost model."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_testlib import sample_inputs
from morphware.compiler import cost, run

from tests.support import zoo

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_rtl_matches_golden_and_cost_model(compiled, name: str) -> None:
    _, program, _ = compiled[name]
    x = sample_inputs(program.input_shape, 2, seed=11)
    gold = run(program, x, "golden")
    rtl = run(program, x, "rtl")
    assert np.array_equal(gold.output, rtl.output)
    predicted = {g["layer"]: cost.instruction_cycles(g, 2, program.params) for g in program.gemms}
    assert rtl.cycles == predicted
    assert sum(rtl.stall_cycles.values()) == 0
    assert rtl.total_cycles == cost.program_cycles(program, 2)
