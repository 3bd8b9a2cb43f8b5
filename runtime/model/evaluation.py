"""Evaluation: one metric of a model over an .npz test set (arrays x, y), on any backend.

Validators call ``evaluate``; it is the same function on every backend, so a worker's claim and a
validator's check are computed identically. On a Program backend (golden, rtl, fpga) the model is
first compiled for the array, calibrating activation scales on (up to ``CALIB_SAMPLES`` of) the
test inputs themselves: the validator has no other data, and calibration only sets scales.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from morphware.runtime.model.safe_io import DatasetError, load_onnx, load_xy

CALIB_SAMPLES = 256
METRICS = ("accuracy", "top5", "mse", "mae")


class MetricError(ValueError):
    """A metric that does not exist or does not fit the outputs/targets."""


def _labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == n_classes:  # one-hot / soft labels
        return y.argmax(axis=1)
    if y.ndim != 1:
        raise MetricError(f"classification targets must be labels (N,) or one-hot (N, "
                          f"{n_classes}), got {y.shape}")
    return y.astype(np.int64)


def accuracy(out: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy; a single-output model is read as a binary classifier (logit > 0)."""
    if out.ndim == 2 and out.shape[1] == 1 or out.ndim == 1:
        pred = (out.reshape(len(out)) > 0).astype(np.int64)
        return float((pred == y.reshape(len(y)).astype(np.int64)).mean())
    return float((out.argmax(axis=1) == _labels(y, out.shape[1])).mean())


def top5(out: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose label is among the five highest outputs."""
    if out.ndim != 2 or out.shape[1] < 5:
        raise MetricError(f"top5 needs at least 5 class outputs, model gives {out.shape[1:]}")
    best = np.argpartition(-out, 4, axis=1)[:, :5]
    return float((best == _labels(y, out.shape[1])[:, None]).any(axis=1).mean())


def _regression(out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = y.astype(np.float64)
    if out.size != y.size:
        raise MetricError(f"outputs {out.shape} and targets {y.shape} differ in size")
    return out.reshape(y.shape).astype(np.float64), y


def mse(out: np.ndarray, y: np.ndarray) -> float:
    o, t = _regression(out, y)
    return float(np.mean((o - t) ** 2))


def mae(out: np.ndarray, y: np.ndarray) -> float:
    o, t = _regression(out, y)
    return float(np.mean(np.abs(o - t)))


METRIC_FNS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy, "top5": top5, "mse": mse, "mae": mae}


def score(metric: str, out: np.ndarray, y: np.ndarray) -> float:
    """``metric`` of outputs ``out`` against targets ``y``."""
    if metric not in METRIC_FNS:
        raise MetricError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    if len(out) != len(y):
        raise MetricError(f"{len(out)} outputs for {len(y)} targets")
    return METRIC_FNS[metric](np.asarray(out), np.asarray(y))


def predict(model_path: str | Path, x: np.ndarray, backend: str = "auto",
            calib: np.ndarray | None = None, array: str | None = None) -> tuple[np.ndarray, str]:
    """(outputs, backend name) of the ONNX model at ``model_path`` on inputs ``x``.

    ``array`` ("8x8", "16x16", ...) sets the array shape for Program backends."""
    from morphware.runtime.backends.registry import get_backend, select_backend

    model = load_onnx(model_path)
    b = select_backend("eval", model) if backend == "auto" else get_backend(backend)
    b.require(model)
    if array is not None:
        b = b.with_array(array)
    if calib is None:
        calib = x[:CALIB_SAMPLES]
    return b.predict(model, x, calib=calib), b.name


def evaluate(model_path: str | Path, test_npz: str | Path, metric: str,
             backend: str = "auto", array: str | None = None) -> float:
    """``metric`` ("accuracy", "top5", "mse", "mae") of the model on ``test_npz`` (x, y)."""
    if metric not in METRIC_FNS:
        raise MetricError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    x, y = load_xy(test_npz)
    try:
        out, _ = predict(model_path, x, backend, array=array)
    except DatasetError as e:
        raise DatasetError(f"{test_npz}: {e}") from e
    return score(metric, out, y)
