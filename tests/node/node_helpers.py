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


def add_custom_op(path: Path) -> Path:
    """Rewrite an ONNX model so that it calls an operator from a custom domain (the way a
    model would smuggle a native-code kernel)."""
    import onnx

    m = onnx.load(str(path))
    out = m.graph.output[0].name
    m.graph.node[-1].output[0] = "pre_custom"
    m.graph.node.append(onnx.helper.make_node("Exfiltrate", ["pre_custom"], [out],
                                              domain="evil.ops", name="payload"))
    m.opset_import.append(onnx.helper.make_opsetid("evil.ops", 1))
    onnx.save(m, str(path))
    return path


def pickled_npz(path: Path) -> Path:
    """An .npz whose x array is an object array: loading it would need pickle."""
    x = np.empty(4, dtype=object)
    for i in range(4):
        x[i] = np.zeros(64, dtype=np.float32)
    np.savez(path, x=x, y=np.zeros(4, dtype=np.int64))
    return path


def make_package(out: Path, *, epochs: int = 2, threshold: float = 0.5,
                 max_price: float = 100.0, custom_op: bool = False,
                 pickled: bool = False) -> tuple[dict[str, Path], dict, dict]:
    """(files, manifest, terms) of a small digits job (optionally with a hostile artifact)."""
    out.mkdir(parents=True, exist_ok=True)
    model = export_digits_mlp(out / "model.onnx")
    if custom_op:
        add_custom_op(model)
    train = (pickled_npz(out / "train.npz") if pickled
             else Path(shutil.copy(DIGITS / "data" / "train.npz", out / "train.npz")))
    files = {"model": model, "train": train,
             "test": Path(shutil.copy(DIGITS / "data" / "test.npz", out / "test.npz")),
             "recipe": out / "training.toml"}
    files["recipe"].write_text(
        f'[training]\nloss = "cross_entropy"\noptimizer = "adam"\nlearning_rate = 0.01\n'
        f'epochs = {epochs}\nbatch_size = 64\nseed = 0\n')
    n = 1437
    manifest = {"macs_per_sample": 64 * 32 + 32 * 10, "train_samples": n, "epochs": epochs,
                "batch_size": 64, "gemms": [[1, 64, 32, 0], [1, 32, 10, 1]],
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


def post(market, out: Path, **kw) -> int:
    """Submit a hand-built package through the requester node; its job id once posted."""
    from morphware.runtime.node.daemon import wait_until

    req = market.nodes["requester"]
    files, manifest, terms = make_package(out, **kw)
    local = req.roles["requester"].submit_package("digits-test", files, manifest, terms)
    assert wait_until(lambda: req.store.submission(local).job_id is not None, 30)
    return req.store.submission(local).job_id


def phase(node, job_id: int, role: str) -> str | None:
    row = node.store.job(job_id, role)
    return row.phase if row else None


def wait_phase(node, job_id: int, role: str, want: str | tuple[str, ...],
               timeout: float = 60) -> bool:
    from morphware.runtime.node.daemon import wait_until

    wants = (want,) if isinstance(want, str) else want
    return wait_until(lambda: phase(node, job_id, role) in wants, timeout, interval=0.05)
