"""Fixtures for the compiler tests: compiled zoo models and the digits data set."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from compiler_testlib import SMALL, sample_inputs
from morphware.compiler import Program, compile_model

from tests.support import zoo


@pytest.fixture(scope="session")
def compiled() -> dict[str, tuple[Any, Program, dict[str, Any]]]:
    """Every zoo model (untrained, seed 0) compiled for a 4x4 array: name -> (module, program, report)."""
    out = {}
    for name in zoo.ZOO:
        module, x = zoo.build(name)
        calib = sample_inputs(tuple(x.shape[1:]), 64, seed=1)
        program, rep = compile_model(module, SMALL, calib, name=name)
        out[name] = (module, program, rep)
    return out


@pytest.fixture(scope="session")
def digits() -> dict[str, np.ndarray]:
    """scikit-learn digits, scaled to [0, 1], split 80/20 with a fixed seed."""
    return zoo.digits()
