"""Hyperparameter search on the market: every training run is a real job, trials in parallel,
ranked on the validation split, promoted trials continue from their parent's weights, and a
restarted driver re-attaches instead of re-posting."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from morphware.runtime.demo import EXAMPLE_JOB
from morphware.runtime.job.hpo import HpoError, run_hpo
from node_helpers import CAST

pytestmark = [pytest.mark.chain, pytest.mark.integration]

HPO_JOB = """
[job]
name = "{name}"

[model]
source = "model.py"
input_shape = [64]
hparams = {{ hidden = 32 }}

[data]
train = "data/train.npz"
test = "data/test.npz"
validation_fraction = 0.25

[training]
learning_rate = 0.01
epochs = {epochs}

[metric]
name = "accuracy"
threshold = 0.2

[market]
max_price = 50.0
validators = 1
validator_fee = 1.0
bid_window_s = 8
reveal_window_s = 60
work_window_s = 300
validation_window_s = 240

[hpo]
trials = {trials}
parallel = {parallel}
direction = "maximize"
{extra}

[hpo.space]
learning_rate = {{ low = 0.003, high = 0.03, log = true }}
hidden = {{ choices = [16, 32] }}
"""


def _job(tmp_path: Path, **kw: object) -> Path:
    shutil.copytree(EXAMPLE_JOB.parent, tmp_path / "job", dirs_exist_ok=True)
    job = tmp_path / "job" / f"{kw['name']}.toml"
    job.write_text(HPO_JOB.format(**{"extra": "", **kw}))
    return job


def _package(data_dir: Path, local_id: int) -> Path:
    return data_dir / "packages" / str(local_id)


def test_trials_are_market_jobs_ranked_on_the_validation_split(local_market, tmp_path):
    local_market.add_all(CAST[:2] + CAST[3:4])  # requester, one worker, one validator
    job = _job(tmp_path, name="digits-hpo", epochs=2, trials=2, parallel=2)
    data_dir = local_market.nodes["requester"].data_dir
    res = run_hpo(job, data_dir, timeout=150, poll=0.2)
    assert [r.number for r in res.trials] == [0, 1]
    assert len({r.job_id for r in res.trials}) == 2
    assert all(r.outcome == "accepted" and 0.2 <= r.value <= 1.0 for r in res.trials), res
    study = optuna.load_study(study_name="digits-hpo", storage=f"sqlite:///{data_dir}/hpo.db")
    assert study.best_value == max(r.value for r in res.trials) == res.best.value
    # validators scored every trial on the validation split, never on the test set
    val = np.load(data_dir / "hpo" / "digits-hpo" / "split" / "validation.npz")
    test = np.load(EXAMPLE_JOB.parent / "data" / "test.npz")
    store = local_market.nodes["requester"].store
    for sub in store.submissions():
        held_out = np.load(_package(data_dir, sub.local_id) / "test.npz")
        assert np.array_equal(held_out["x"], val["x"])
        assert held_out["x"].shape != test["x"].shape or not np.array_equal(held_out["x"],
                                                                            test["x"])
    assert res.best_model is not None and res.best_model.is_file()
    assert res.test_metric is not None and 0.2 <= res.test_metric <= 1.0
    with pytest.raises(HpoError, match="no \\[hpo\\] table"):
        run_hpo(EXAMPLE_JOB, data_dir)


def test_successive_halving_continues_from_parent_weights_and_resumes(local_market, tmp_path):
    local_market.add_all(CAST[:3] + CAST[3:4])  # requester, two workers, one validator
    job = _job(tmp_path, name="digits-sh", epochs=2, trials=4, parallel=3,
               extra="min_epochs = 1\neta = 2")
    data_dir = local_market.nodes["requester"].data_dir
    store = local_market.nodes["requester"].store
    with pytest.raises(HpoError, match="resumes where it stopped"):  # the driver dies early
        run_hpo(job, data_dir, timeout=3, poll=0.2, echo=print)
    posted_before = len(store.submissions())
    assert 1 <= posted_before <= 3
    res = run_hpo(job, data_dir, timeout=420, poll=0.2, echo=print)
    subs = store.submissions()
    assert len(subs) == 4 + 2, [s.facts.get("name") for s in subs]  # nothing posted twice
    assert sorted(s.facts["name"] for s in subs) == sorted(
        [f"digits-sh-t{n}-r0" for n in range(4)]
        + [f"digits-sh-t{r.number}-r1" for r in res.trials if r.rung == 1])
    promoted = [r for r in res.trials if r.rung == 1]
    assert len(promoted) == 2 and res.best in promoted
    stopped = [r for r in res.trials if r.rung == 0]
    assert min(p.value for p in promoted) >= max(s.value for s in stopped) - 1e-9 or any(
        s.value is None for s in stopped)
    by_name = {s.facts["name"]: s for s in subs}
    for r in promoted:
        parent = by_name[f"digits-sh-t{r.number}-r0"]
        child = by_name[f"digits-sh-t{r.number}-r1"]
        trained = store.job(parent.job_id, "requester").facts["model_path"]
        sent = _package(data_dir, child.local_id) / "model.onnx"
        assert Path(trained).read_bytes() == sent.read_bytes()  # continues from its weights
        assert child.facts["hparams"]["epochs"] == 1  # only the extra epoch
        assert "hidden" not in child.facts["hparams"]  # the architecture is the parent's
