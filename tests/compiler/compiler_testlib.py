"""Helpers shared by the compiler tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import numpy as np
from morphware.systolic.params import ArrayParams

SMALL = ArrayParams(rows=4, cols=4, data_bits=8, acc_depth=64)


def sample_inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """Digits-like inputs in [0, 1]."""
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)
