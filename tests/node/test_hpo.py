"""A hyperparameter search on the market: every Optuna trial is a real job, trials in parallel."""

from __future__ import annotations

import shutil

import optuna
import pytest
from morphware.runtime.demo import EXAMPLE_JOB
from morphware.runtime.job.hpo import HpoError, run_hpo
from node_helpers import CAST

pytestmark = [pytest.mark.chain, pytest.mark.integration]

HPO_JOB = """
[job]
name = "digits-hpo"

[model]
source = "model.py"
input_shape = [64]
hparams = { hidden = 32 }

[data]
train = "data/train.npz"
test = "data/test.npz"

[training]
learning_rate = 0.01
epochs = 2

[metric]
name = "accuracy"
threshold = 0.2

[market]
max_price = 50.0
validators = 1
validator_fee = 1.0
bid_window_s = 8
reveal_window_s = 30
work_window_s = 300
validation_window_s = 60

[hpo]
trials = 2
parallel = 2
direction = "maximize"

[hpo.space]
learning_rate = { low = 0.003, high = 0.03, log = true }
hidden = { choices = [16, 32] }
"""


def test_each_trial_is_a_market_job_and_the_study_gets_validated_metrics(local_market,
                                                                          tmp_path):
    for p in CAST[:2] + CAST[3:4]:  # requester, one worker, one validator
        local_market.add(p)
    shutil.copytree(EXAMPLE_JOB.parent, tmp_path / "job")
    job = tmp_path / "job" / "hpo.toml"
    job.write_text(HPO_JOB)
    data_dir = local_market.nodes["requester"].data_dir
    results = run_hpo(job, data_dir, timeout=150, poll=0.2)
    assert [r.number for r in results] == [0, 1]
    assert len({r.job_id for r in results}) == 2
    assert all(r.outcome == "accepted" and 0.2 <= r.value <= 1.0 for r in results), results
    study = optuna.load_study(study_name="digits-hpo", storage=f"sqlite:///{data_dir}/hpo.db")
    assert study.best_value == max(r.value for r in results)
    with pytest.raises(HpoError, match="no \\[hpo\\] table"):
        run_hpo(EXAMPLE_JOB, data_dir)
