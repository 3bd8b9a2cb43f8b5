"""Helpers of the node tests: the cast of an in-process market and hand-built job packages.

Hand-built packages (``make_package``) exist for jobs packaging must not produce: artifacts that
try to smuggle code (a pickle in an .npz, an ONNX with a custom-op domain) and jobs with
deliberately tiny budgets. Everything else goes through the real packaging.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from morphware.runtime.demo import EXAMPLE_JOB, Participant

DIGITS = EXAMPLE_JOB.parent


def export_digits_mlp(path: Path, hidden: int = 32) -> Path:
    """The digits MLP exported to ONNX (what packaging produces for examples/digits)."""
    import torch

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                            torch.nn.Linear(hidden, 10))
    torch.onnx.export(m, (torch.zeros(1, 64),), str(path), dynamo=False, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "b"}, "logits": {0: "b"}})
    return path


def make_package(out: Path, *, epochs: int = 3, threshold: float = 0.5,
                 max_price: float = 100.0) -> tuple[dict[str, Path], dict, dict]:
    """(files, manifest, terms) of a small digits job."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"model": export_digits_mlp(out / "model.onnx"),
             "train": Path(shutil.copy(DIGITS / "data" / "train.npz", out / "train.npz")),
             "test": Path(shutil.copy(DIGITS / "data" / "test.npz", out / "test.npz")),
             "recipe": out / "training.toml"}
    files["recipe"].write_text(
        f'[training]\nloss = "cross_entropy"\noptimizer = "adam"\nlearning_rate = 0.01\n'
        f'epochs = {epochs}\nbatch_size = 64\nseed = 0\n')
    n = int(np.load(files["train"])["x"].shape[0])
    manifest = {"macs_per_sample": 64 * 32 + 32 * 10, "train_samples": n, "epochs": epochs,
                "ops": ["Gemm", "Relu"], "metric": {"name": "accuracy", "threshold": threshold}}
    terms = {"max_price": max_price, "validator_fee": 1.0, "validators": 3,
             "threshold": threshold, "metric": "accuracy", "lower_is_better": False,
             "bid_stake": 5.0, "windows": [60, 60, 60, 120, 60, 60]}
    return files, manifest, terms


CAST = [
    Participant("requester", ("requester",)),
    Participant("worker-a", ("worker",), price_per_s=0.5),
    Participant("worker-b", ("worker",), price_per_s=1.0),
    Participant("validator-1", ("validator",)),
    Participant("validator-2", ("validator",)),
    Participant("validator-3", ("validator",)),
]
