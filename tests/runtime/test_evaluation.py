"""Metrics, and the cross-backend evaluation suite: one test body, every backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from morphware.runtime.backends.registry import get_backend
from morphware.runtime.model.evaluation import MetricError, evaluate, predict, score


def test_metric_functions() -> None:
    out = np.array([[0.1, 0.9, 0, 0, 0, 0], [0.8, 0.1, 0, 0, 0, 0.5], [-1, 0, 1, 2, 3, 4]])
    y = np.array([1, 5, 0])
    assert score("accuracy", out, y) == pytest.approx(1 / 3)
    assert score("top5", out, y) == pytest.approx(2 / 3)  # label 0 of row 3 is ranked last
    assert score("accuracy", out, np.eye(6)[y]) == pytest.approx(1 / 3)  # one-hot targets
    reg = np.array([[1.0], [2.0], [4.0]])
    assert score("mse", reg, np.array([1.0, 1.0, 1.0])) == pytest.approx(10 / 3)
    assert score("mae", reg, np.array([1.0, 1.0, 1.0])) == pytest.approx(4 / 3)
    assert score("accuracy", np.array([[-1.0], [2.0]]), np.array([0, 1])) == 1.0  # binary logit


def test_metric_errors() -> None:
    with pytest.raises(MetricError, match="unknown metric 'f1'"):
        score("f1", np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(MetricError, match="at least 5"):
        score("top5", np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(MetricError, match="3 outputs for 2 targets"):
        score("accuracy", np.zeros((3, 3)), np.zeros(2))


BACKENDS = ["cpu", "cuda", "golden", pytest.param("rtl", marks=[pytest.mark.rtl])]
RTL_SUBSET = 8


def _usable(name: str) -> None:
    ok, why = get_backend(name).available()
    if not ok:
        pytest.skip(f"{name} backend not usable here: {why}")


@pytest.fixture(scope="module")
def test_set(digits_data) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    z = np.load(digits_data[1])
    return z["x"], z["y"]


@pytest.fixture(scope="module")
def outputs(trained_digits, test_set):  # type: ignore[no-untyped-def]
    """``outputs(backend)``: the trained digits MLP's outputs on the test inputs (a subset on
    rtl), computed once per backend; every Program backend calibrates on the same 256 inputs."""
    cache: dict[str, np.ndarray] = {}
    x = test_set[0]

    def get(backend: str) -> np.ndarray:
        if backend not in cache:
            n = RTL_SUBSET if backend == "rtl" else len(x)
            out, name = predict(trained_digits[0].onnx_path, x[:n], backend=backend,
                                calib=x[:256])
            assert name == backend
            cache[backend] = out
        return cache[backend]
    return get


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_agrees_with_float_reference(backend: str, outputs) -> None:  # type: ignore[no-untyped-def]
    """Top-1 agreement >= 99% with the float model (all of digits; a subset on rtl), and
    outputs within the quantisation tolerance."""
    _usable(backend)
    out = outputs(backend)
    ref = outputs("cpu")[:len(out)]
    assert out.shape == ref.shape
    agree = float((out.argmax(1) == ref.argmax(1)).mean())
    assert agree >= (0.99 if len(out) >= 100 else 1.0), f"{backend}: top-1 agreement {agree:.3f}"
    tol = 1e-4 if backend in ("cpu", "cuda") else 0.1 * float(np.abs(ref).max())
    assert float(np.abs(out - ref).max()) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_accuracy_on_every_backend(backend: str, trained_digits, digits_data,  # type: ignore[no-untyped-def]
                                            tmp_path: Path) -> None:
    _usable(backend)
    test_npz = digits_data[1]
    if backend == "rtl":
        z = np.load(test_npz)
        test_npz = tmp_path / "subset.npz"
        np.savez(test_npz, x=z["x"][:RTL_SUBSET], y=z["y"][:RTL_SUBSET])
    acc = evaluate(trained_digits[0].onnx_path, test_npz, "accuracy", backend=backend)
    assert acc >= (0.94 if backend != "rtl" else 0.75)


@pytest.mark.rtl
def test_golden_equals_rtl_bit_for_bit(outputs) -> None:  # type: ignore[no-untyped-def]
    """Rows are independent in a Program, so golden's first rows are the rtl subset's reference."""
    _usable("golden")
    _usable("rtl")
    np.testing.assert_array_equal(outputs("rtl"), outputs("golden")[:RTL_SUBSET])
