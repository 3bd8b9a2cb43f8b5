"""Packaging: the example's .py and .ipynb export the same checked ONNX with the right public
figures; bad models and bad data are refused with errors naming the problem."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from morphware.runtime.job.packaging import (
    PackagingError,
    analyse_onnx,
    load_npz,
    package_job,
    read_recipe,
)
from morphware.runtime.job.spec import load_job

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


@pytest.fixture(scope="module")
def digits_pkg(tmp_path_factory: pytest.TempPathFactory):
    return package_job(load_job(EXAMPLE / "job.toml"), tmp_path_factory.mktemp("pkg"))


def test_digits_package(digits_pkg) -> None:
    m = json.loads(digits_pkg.manifest_path.read_text())
    assert m == digits_pkg.manifest
    assert m["model"]["params"] == 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10
    assert m["model"]["macs_per_sample"] == 64 * 64 + 64 * 64 + 64 * 10
    assert m["model"]["input_shape"] == [64] and m["model"]["output_shape"] == [10]
    assert m["data"]["train"]["samples"] == 1437 and m["data"]["test"]["samples"] == 360
    assert m["metric"] == {"name": "accuracy", "threshold": 0.9, "higher_is_better": True}
    for role in ("train", "test"):
        assert len(m["data"][role]["sha256"]) == 64
    recipe, metric = read_recipe(digits_pkg.recipe)
    spec = load_job(EXAMPLE / "job.toml")
    assert recipe == spec.training and metric == spec.metric
    assert set(digits_pkg.artifacts) == {"model", "train", "test", "recipe"}


def test_exported_model_runs_with_any_batch(digits_pkg) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(digits_pkg.model), providers=["CPUExecutionProvider"])
    x, _ = load_npz(digits_pkg.test)
    assert sess.run(None, {"input": x[:7]})[0].shape == (7, 10)


def test_notebook_gives_the_same_model(digits_pkg, tmp_path: Path) -> None:
    nb = package_job(load_job(EXAMPLE / "notebook.toml"), tmp_path)
    for k in ("params", "macs_per_sample", "input_shape", "output_shape", "ops"):
        assert nb.manifest["model"][k] == digits_pkg.manifest["model"][k]
    assert nb.manifest["model"]["source_kind"] == "ipynb"


def test_onnx_source_is_taken_as_is(digits_pkg, tmp_path: Path) -> None:
    job = tmp_path / "job"
    shutil.copytree(EXAMPLE / "data", job / "data")
    shutil.copy(digits_pkg.model, job / "given.onnx")
    text = (EXAMPLE / "job.toml").read_text().replace(
        'source = "model.py"\ninput_shape = [64]\nhparams = { hidden = 64 }', 'source = "given.onnx"')
    (job / "job.toml").write_text(text)
    pkg = package_job(load_job(job / "job.toml"), tmp_path / "out")
    assert pkg.model.read_bytes() == (job / "given.onnx").read_bytes()
    assert pkg.manifest["model"]["macs_per_sample"] == digits_pkg.manifest["model"][
        "macs_per_sample"]


def test_example_trains_past_its_threshold(digits_pkg) -> None:
    """The example must be a job a worker can actually win: >= 95% in a few CPU seconds."""
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: more threads only contend on a busy CI runner
    try:
        acc = _train_and_score(torch, digits_pkg)
    finally:
        torch.set_num_threads(threads)
    assert acc >= 0.95


def _train_and_score(torch, digits_pkg) -> float:
    """Train the example with its own recipe; return test accuracy."""
    from morphware.runtime.job.packaging import build_model

    spec = load_job(EXAMPLE / "job.toml")
    model = build_model(spec.model.source, spec.model.hparams)
    x, y = (torch.from_numpy(a) for a in load_npz(digits_pkg.train))
    xt, yt = (torch.from_numpy(a) for a in load_npz(digits_pkg.test))
    opt = torch.optim.Adam(model.parameters(), lr=spec.training.learning_rate)
    for _ in range(spec.training.epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), spec.training.batch_size):
            idx = perm[i:i + spec.training.batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return (model(xt).argmax(1) == yt).float().mean().item()


def test_conv_macs(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\n"
        "def build_model(c=4):\n"
        "    return nn.Sequential(nn.Conv2d(1, c, 3), nn.ReLU(), nn.Flatten(),"
        " nn.Linear(c * 36, 10))\n")
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        np.savez(tmp_path / f"{name}.npz", x=rng.random((20, 1, 8, 8), dtype=np.float32),
                 y=rng.integers(0, 10, 20))
    (tmp_path / "job.toml").write_text(_job("m.py", "[1, 8, 8]"))
    pkg = package_job(load_job(tmp_path / "job.toml"), tmp_path / "out")
    assert pkg.manifest["model"]["macs_by_op"] == {"Conv": 4 * 6 * 6 * 9, "Gemm": 144 * 10}
    # per GEMM: rows per sample, K, N, and whether its input needs a gradient
    assert pkg.manifest["model"]["gemms"] == [[36, 9, 4, 0], [1, 144, 10, 1]]
    assert pkg.public_manifest()["gemms"] == [[36, 9, 4, 0], [1, 144, 10, 1]]
    info = analyse_onnx(pkg.model)
    assert info["params"] == 4 * 9 + 4 + 144 * 10 + 10


def _job(source: str, shape: str, extra: str = "") -> str:
    return (f'[job]\nname = "t"\n[model]\nsource = "{source}"\ninput_shape = {shape}\n'
            f'[data]\ntrain = "train.npz"\ntest = "test.npz"\n[training]\nepochs = 1\n{extra}'
            f'[metric]\nname = "accuracy"\nthreshold = 0.5\n[market]\nmax_price = 1.0\n')


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\ndef build_model(h=8):\n"
        "    return nn.Sequential(nn.Linear(4, h), nn.ReLU(), nn.Linear(h, 3))\n")
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        np.savez(tmp_path / f"{name}.npz", x=rng.random((10, 4), dtype=np.float32),
                 y=rng.integers(0, 3, 10))
    (tmp_path / "job.toml").write_text(_job("m.py", "[4]"))
    return tmp_path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: np.savez(d / "train.npz", x=np.array([{"a": 1}] * 10, dtype=object),
                            y=np.zeros(10)),
         "holds object (pickled) arrays"),
        (lambda d: np.savez(d / "train.npz", x=np.zeros((10, 5), np.float32), y=np.zeros(10)),
         "x has per-sample shape [5], the model expects [4]"),
        (lambda d: np.savez(d / "train.npz", x=np.zeros((10, 4), np.float32), y=np.zeros(9)),
         "x has 10 samples but y has 9"),
        (lambda d: np.savez(d / "test.npz", x=np.zeros((10, 4), np.float32), y=np.full(10, 7)),
         "labels span 7..7 but the model has 3 outputs"),
        (lambda d: np.savez(d / "train.npz", features=np.zeros((10, 4))),
         "must hold arrays 'x' and 'y'; missing x, y"),
        (lambda d: (d / "test.npz").write_bytes(b"not a zip"), "cannot read as .npz"),
        (lambda d: (d / "m.py").write_text("x = 1\n"), "must define build_model"),
        (lambda d: (d / "m.py").write_text("def build_model(h=1):\n    return 3\n"),
         "returned int, not a torch.nn.Module"),
        (lambda d: (d / "m.py").write_text("import nonexistent_pkg_xyz\n"),
         "m.py failed while loading: ModuleNotFoundError"),
        (lambda d: (d / "job.toml").write_text(_job("m.py", "[7]")),
         "does not accept input of shape (batch, 7)"),
    ],
)
def test_bad_job_is_refused(job: Path, setup, message: str) -> None:
    setup(job)
    with pytest.raises(PackagingError, match=re.escape(message)):
        package_job(load_job(job / "job.toml"), job / "out")


def test_unknown_hparam_is_named(job: Path) -> None:
    spec = load_job(job / "job.toml").with_hparams({"width": 3})
    with pytest.raises(PackagingError, match="width"):
        package_job(spec, job / "out")


def test_extra_arrays_do_not_travel(job: Path) -> None:
    np.savez(job / "train.npz", x=np.zeros((10, 4), np.float32), y=np.zeros(10, np.int64),
             secret=np.arange(3))
    pkg = package_job(load_job(job / "job.toml"), job / "out")
    with np.load(pkg.train, allow_pickle=False) as z:
        assert sorted(z.files) == ["x", "y"]


def test_regression_targets_must_match_the_output(job: Path) -> None:
    text = _job("m.py", "[4]", 'loss = "mse"\n').replace(
        'name = "accuracy"\nthreshold = 0.5', 'name = "mse"\nthreshold = 0.5')
    (job / "job.toml").write_text(text)
    rng = np.random.default_rng(1)
    for name in ("train", "test"):
        np.savez(job / f"{name}.npz", x=rng.random((10, 4), dtype=np.float32),
                 y=rng.random((10, 3), dtype=np.float32))
    pkg = package_job(load_job(job / "job.toml"), job / "out")
    assert pkg.manifest["metric"]["higher_is_better"] is False
    np.savez(job / "train.npz", x=rng.random((10, 4), dtype=np.float32),
             y=rng.random((10, 2), dtype=np.float32))
    with pytest.raises(PackagingError, match=re.escape("y has per-sample shape [2], the model "
                                                       "outputs [3]")):
        package_job(load_job(job / "job.toml"), job / "out")


def test_declared_shape_must_match_an_onnx_model(digits_pkg, job: Path) -> None:
    shutil.copy(digits_pkg.model, job / "given.onnx")
    (job / "job.toml").write_text(_job("given.onnx", "[4]"))
    with pytest.raises(PackagingError, match=re.escape("[model].input_shape [4] differs from "
                                                       "the model's input [64]")):
        package_job(load_job(job / "job.toml"), job / "out")
