"""Fixtures for the runtime tests: the digits example exported to ONNX, and one trained copy
shared by the whole session (training is the expensive part)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from morphware.runtime.job.spec import TrainingRecipe

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
TRAIN_NPZ = DIGITS / "data" / "train.npz"
TEST_NPZ = DIGITS / "data" / "test.npz"
RECIPE = TrainingRecipe(loss="cross_entropy", optimizer="adam", learning_rate=0.01, epochs=12,
                        batch_size=64, seed=0)


def export_torch(module, example, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Export a torch module the way the requester's packaging does (legacy exporter)."""
    import warnings

    import torch

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
                          do_constant_folding=False)
    return path


def digits_module(hidden: int = 64, seed: int = 0):  # type: ignore[no-untyped-def]
    import torch

    spec = importlib.util.spec_from_file_location("digits_model", DIGITS / "model.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(seed)
    return mod.build_model(hidden=hidden)


@pytest.fixture(scope="session")
def export_module():  # type: ignore[no-untyped-def]
    """The export helper, as a fixture (test folders are not packages, so no imports)."""
    return export_torch


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    path = tmp_path_factory.mktemp("digits") / "digits.onnx"
    return export_torch(digits_module(), torch.zeros(1, 64), path)


@pytest.fixture(scope="session")
def trained_digits(digits_onnx: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(TrainResult, events) of one CPU training run of the digits MLP."""
    from morphware.runtime.model.training import train_onnx

    events = []
    out = tmp_path_factory.mktemp("trained") / "trained.onnx"
    result = train_onnx(digits_onnx, TRAIN_NPZ, RECIPE, out, on_event=events.append,
                        backend="cpu")
    return result, events


@pytest.fixture(scope="session")
def digits_data() -> tuple[Path, Path]:
    """(train.npz, test.npz) of the digits example."""
    return TRAIN_NPZ, TEST_NPZ


@pytest.fixture(scope="session")
def digits_recipe() -> TrainingRecipe:
    return RECIPE
