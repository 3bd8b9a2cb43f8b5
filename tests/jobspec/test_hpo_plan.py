"""The parts of a search that need no market: the successive-halving plan, the validation split
and the [hpo]/[data] rules of job.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from morphware.runtime.job.halving import Rung, promote, rungs
from morphware.runtime.job.spec import JobSpecError, load_job
from morphware.runtime.job.splits import SplitError, make_split

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def test_rungs_shrink_by_eta_and_end_at_the_full_budget():
    assert rungs(9, 2, 20, 3) == [Rung(0, 2, 9), Rung(1, 6, 3), Rung(2, 20, 1)]
    assert rungs(16, 1, 8, 2) == [Rung(0, 1, 16), Rung(1, 2, 8), Rung(2, 4, 4), Rung(3, 8, 2)]
    assert rungs(4, 1, 2, 2) == [Rung(0, 1, 4), Rung(1, 2, 2)]
    assert rungs(2, 3, 20, 3) == [Rung(0, 20, 2)]  # too few trials to halve
    assert rungs(8, None, 20, 3) == [Rung(0, 20, 8)]  # full budget for everyone
    with pytest.raises(ValueError, match="eta"):
        rungs(8, 1, 8, 1)


def test_promote_keeps_the_best_with_ties_to_the_earlier_trial():
    values = {0: 0.5, 1: 0.9, 2: 0.9, 3: 0.1}
    assert promote(values, 2, maximize=True) == [1, 2]
    assert promote(values, 1, maximize=False) == [3]
    assert promote({}, 3, maximize=True) == []


def _job(tmp_path: Path, data: str, hpo: str = "") -> Path:
    root = tmp_path / "job"
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True)
    text = (EXAMPLE / "job.toml").read_text().replace(
        'test = "data/test.npz"\n', f'test = "data/test.npz"\n{data}\n')
    (root / "job.toml").write_text(text + hpo)
    return root / "job.toml"


HPO = '\n[hpo]\ntrials = 4\n[hpo.space]\nlearning_rate = { low = 0.001, high = 0.1, log = true }\n'


@pytest.mark.parametrize(("data", "hpo", "match"), [
    ("", HPO, "validation split, never on the test set"),
    ('validation = "data/test.npz"', "", "name the same file"),
    ('validation_fraction = 0.95', "", "validation_fraction must be in"),
    ('validation_fraction = 0.2\nvalidation = "data/train.npz"', "", "not both"),
    ("validation_fraction = 0.2", HPO.replace("trials = 4", "trials = 4\nmin_epochs = 50"),
     "exceeds \\[training\\].epochs"),
    ("validation_fraction = 0.2", HPO.replace("trials = 4", "trials = 4\neta = 1"), "eta"),
    ("validation_fraction = 0.2", HPO + "epochs = { low = 1, high = 3 }\n",
     "budget is not a hyperparameter"),
    ("validation_fraction = 0.2", HPO.replace("trials = 4", "trials = 4\ntrial_threshold = 2"),
     "trial_threshold"),
])
def test_bad_search_specs_name_the_problem(tmp_path, data, hpo, match):
    with pytest.raises(JobSpecError, match=match):
        load_job(_job(tmp_path, data, hpo))


def test_fraction_split_is_deterministic_disjoint_and_keeps_every_sample(tmp_path):
    spec = load_job(_job(tmp_path, "validation_fraction = 0.25", HPO))
    a = make_split(spec, tmp_path / "a")
    b = make_split(spec, tmp_path / "b")
    train = np.load(spec.data.train)
    assert a.validation_samples == round(len(train["x"]) * 0.25)
    assert a.train_samples + a.validation_samples == len(train["x"])
    assert (b.train_samples, b.validation_samples) == (a.train_samples, a.validation_samples)
    for name in ("train.npz", "validation.npz"):
        assert np.array_equal(np.load(tmp_path / "a" / name)["x"],
                              np.load(tmp_path / "b" / name)["x"])
    rows = {r.tobytes() for r in np.load(a.train)["x"]}
    assert not any(r.tobytes() in rows for r in np.load(a.validation)["x"])


def test_a_validation_file_sharing_rows_with_train_is_refused(tmp_path):
    root = tmp_path / "job"
    spec_path = _job(tmp_path, 'validation = "data/val.npz"', HPO)
    train = np.load(root / "data" / "train.npz")
    np.savez(root / "data" / "val.npz", x=train["x"][:10], y=train["y"][:10])
    with pytest.raises(SplitError, match="share 10 input row"):
        make_split(load_job(spec_path), tmp_path / "s")


def test_a_trial_spec_swaps_inputs_model_and_threshold(tmp_path):
    spec = load_job(_job(tmp_path, "validation_fraction = 0.2", HPO))
    onnx = tmp_path / "parent.onnx"
    onnx.write_bytes(b"")
    trial = spec.with_inputs(train=tmp_path / "t.npz", test=tmp_path / "v.npz", model=onnx,
                             threshold=0.0)
    assert (trial.data.train, trial.data.test) == (tmp_path / "t.npz", tmp_path / "v.npz")
    assert trial.model.kind == "onnx" and trial.model.input_shape == spec.model.input_shape
    assert trial.metric.threshold == 0.0 and trial.metric.name == spec.metric.name
    with pytest.raises(JobSpecError, match="build_model arguments"):
        trial.with_hparams({"hidden": 16})
