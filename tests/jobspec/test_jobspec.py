"""job.toml parsing: the example loads; each bad field gives an error naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from morphware.runtime.job.spec import (
    JobSpecError,
    MetricSpec,
    TrainingRecipe,
    load_job,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"

GOOD = """
[job]
name = "t"
[model]
source = "model.py"
input_shape = [64]
hparams = { hidden = 16 }
[data]
train = "train.npz"
test = "test.npz"
[training]
epochs = 3
[metric]
name = "accuracy"
threshold = 0.9
[market]
max_price = 10.0
"""


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    for name in ("model.py", "train.npz", "test.npz", "m.onnx"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "job.toml").write_text(GOOD)
    return tmp_path


def _edit(job_dir: Path, old: str, new: str) -> Path:
    text = (job_dir / "job.toml").read_text()
    assert old in text
    (job_dir / "job.toml").write_text(text.replace(old, new))
    return job_dir / "job.toml"


def test_example_loads() -> None:
    spec = load_job(EXAMPLE / "job.toml")
    assert spec.name == "digits-mlp"
    assert spec.model.source == EXAMPLE / "model.py" and spec.model.kind == "py"
    assert spec.model.input_shape == (64,)
    assert spec.data.train == EXAMPLE / "data" / "train.npz"
    assert spec.training.epochs == 20 and spec.training.learning_rate == 0.01
    assert spec.metric.higher_is_better and spec.metric.passes(0.95)
    assert spec.market.validators == 3 and spec.hpo is None
    assert spec.root == EXAMPLE


def test_example_hpo_loads() -> None:
    spec = load_job(EXAMPLE / "hpo.toml")
    assert spec.hpo is not None and spec.hpo.trials == 9 and spec.hpo.parallel == 3
    assert (spec.hpo.min_epochs, spec.hpo.eta, spec.hpo.sampler) == (2, 3, "tpe")
    assert spec.data.validation_fraction == 0.2
    space = {p.name: p for p in spec.hpo.space}
    assert space["learning_rate"].log and space["learning_rate"].low == 1e-4
    assert space["hidden"].choices == (32, 64, 128)


def test_defaults_and_relative_paths(job_dir: Path) -> None:
    spec = load_job(job_dir)  # a folder means its job.toml
    assert spec.training == TrainingRecipe(epochs=3)
    assert spec.data.test == (job_dir / "test.npz").resolve()
    assert spec.market.bid_window_s == 60


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("epochs = 3", 'epochs = "ten"',
         "job.toml: [training].epochs must be a positive integer, got 'ten'"),
        ("epochs = 3", "epochs = 0", "[training].epochs must be a positive integer"),
        ("epochs = 3", 'loss = "hinge"', "[training].loss must be one of"),
        ("epochs = 3", 'optimizer = "lbfgs"', "[training].optimizer must be one of"),
        ("epochs = 3", "learning_rate = -1.0", "[training].learning_rate must be > 0"),
        ("epochs = 3", "batch_size = 1.5", "[training].batch_size must be a positive integer"),
        ("epochs = 3", "epoch = 3", "[training] has unknown field(s) epoch"),
        ('name = "accuracy"', 'name = "f1"', "[metric].name must be one of"),
        ("threshold = 0.9", "threshold = 1.5", "[metric].threshold for accuracy must be in [0, 1]"),
        ("threshold = 0.9", "", "[metric].threshold is required"),
        ("max_price = 10.0", "max_price = 0", "[market].max_price must be > 0"),
        ("max_price = 10.0", "max_price = 1.0\nvalidators = -2",
         "[market].validators must be a positive integer"),
        ('source = "model.py"', 'source = "model.h5"', "[model].source must end in"),
        ('source = "model.py"', 'source = "nope.py"', "[model].source: file not found"),
        ("input_shape = [64]", "", "[model].input_shape is required for a .py model"),
        ("input_shape = [64]", "input_shape = [0]", "[model].input_shape must be a non-empty"),
        ('train = "train.npz"', 'train = "train.csv"', "[data].train must end in .npz"),
        ('test = "test.npz"', "", "[data].test is required"),
        ('[job]\nname = "t"', "", "missing table [job]"),
        ("[market]\nmax_price = 10.0", "", "missing table [market]"),
        ("[job]", "[jobs]\n[job]", "job.toml has unknown field(s) jobs"),
    ],
)
def test_bad_field_is_named(job_dir: Path, old: str, new: str, message: str) -> None:
    path = _edit(job_dir, old, new)
    with pytest.raises(JobSpecError, match=re.escape(message)):
        load_job(path)


@pytest.mark.parametrize(
    ("hpo", "message"),
    [
        ("[hpo]\ntrials = 0\n[hpo.space]\nx = { choices = [1] }", "[hpo].trials must be"),
        ("[hpo]\ntrials = 2\n[hpo.space]\nx = { low = 1.0, high = 0.5 }", "low must be < high"),
        ("[hpo]\ntrials = 2\n[hpo.space]\nx = { low = 0.0, high = 1.0, log = true }",
         "a log range needs low > 0"),
        ("[hpo]\ntrials = 2\n[hpo.space]\nx = { choices = [] }", "x.choices must be a non-empty"),
        ("[hpo]\ntrials = 2\ndirection = \"up\"\n[hpo.space]\nx = { choices = [1] }",
         "[hpo].direction must be one of"),
        ("[hpo]\ntrials = 2", "[hpo].space is required"),
    ],
)
def test_bad_hpo_is_named(job_dir: Path, hpo: str, message: str) -> None:
    (job_dir / "job.toml").write_text(GOOD + hpo + "\n")
    with pytest.raises(JobSpecError, match=re.escape(message)):
        load_job(job_dir / "job.toml")


def test_not_toml(job_dir: Path) -> None:
    (job_dir / "job.toml").write_text("[job\nname=")
    with pytest.raises(JobSpecError, match="not valid TOML"):
        load_job(job_dir / "job.toml")
    with pytest.raises(JobSpecError, match="job file not found"):
        load_job(job_dir / "missing.toml")


def test_onnx_model_needs_no_shape(job_dir: Path) -> None:
    path = _edit(job_dir, 'source = "model.py"\ninput_shape = [64]\nhparams = { hidden = 16 }',
                 'source = "m.onnx"')
    spec = load_job(path)
    assert spec.model.kind == "onnx" and spec.model.input_shape is None
    with pytest.raises(JobSpecError, match="need a .py/.ipynb model"):
        spec.with_hparams({"hidden": 3})


def test_with_hparams_splits_recipe_and_model(job_dir: Path) -> None:
    spec = load_job(job_dir)
    trial = spec.with_hparams({"learning_rate": 0.05, "hidden": 128, "depth": 2})
    assert trial.training.learning_rate == 0.05 and trial.training.epochs == 3
    assert dict(trial.model.hparams) == {"hidden": 128, "depth": 2}
    assert dict(spec.model.hparams) == {"hidden": 16}  # the original is untouched
    with pytest.raises(JobSpecError, match="learning_rate must be > 0"):
        spec.with_hparams({"learning_rate": 0.0})


def test_recipe_dict_round_trip() -> None:
    r = TrainingRecipe(loss="mse", optimizer="sgd", learning_rate=0.1, epochs=2, momentum=0.5)
    assert TrainingRecipe.from_dict(r.to_dict()) == r
    with pytest.raises(JobSpecError, match="unknown field"):
        TrainingRecipe.from_dict({**r.to_dict(), "code": "import os"})
    with pytest.raises(JobSpecError, match="epochs must be a positive integer"):
        TrainingRecipe(epochs=True)  # bool is not an integer here


def test_metric_direction() -> None:
    assert MetricSpec("mse", 0.1).passes(0.05) and not MetricSpec("mse", 0.1).passes(0.2)
    assert MetricSpec("top5", 0.8).higher_is_better
    assert not MetricSpec("mae", 2.0).higher_is_better
    with pytest.raises(JobSpecError, match="must be one of"):
        MetricSpec("auc", 0.5)
