"""Quantisation arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from morphware.compiler import quantize
from morphware.systolic.golden import MAX_SHIFT


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-9, max_value=6e4, allow_nan=False))
def test_requant_params_approximate_the_ratio(ratio: float) -> None:
    mult, shift = quantize.requant_params(np.array([ratio]))
    assert 0 <= mult[0] < 1 << 16 and 0 <= shift[0] <= MAX_SHIFT
    approx = mult[0] / 2.0 ** shift[0]
    # 15+ significant bits unless the shift is capped (tiny ratios)
    tol = 2.0 ** -14 * ratio if shift[0] < MAX_SHIFT else 2.0 ** -MAX_SHIFT
    assert abs(approx - ratio) <= tol


def test_zero_ratio_gives_zero_multiplier() -> None:
    mult, shift = quantize.requant_params(np.array([0.0, 1.0]))
    assert mult[0] == 0 and mult[1] / 2.0 ** shift[1] == 1.0


def test_weights_per_channel_and_no_accumulator_overflow() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((512, 3)) * np.array([1.0, 0.01, 0.0])
    for bits in (8, 16):
        wq, s = quantize.quantize_weights(w, bits)
        q = quantize.qmax(bits)
        assert np.abs(wq).max() <= q
        assert np.all(q * np.abs(wq).sum(axis=0) <= quantize.ACC_BUDGET)
        assert np.allclose(wq[:, :2] * s[:2], w[:, :2], atol=s[:2].max())
        assert s[2] == 1.0 and not wq[:, 2].any()
    wq8, _ = quantize.quantize_weights(w, 8)
    assert np.abs(wq8[:, 0]).max() == 127 and np.abs(wq8[:, 1]).max() == 127  # per channel
