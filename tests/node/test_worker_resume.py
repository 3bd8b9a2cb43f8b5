"""A worker killed mid-training resumes from its last checkpoint and is paid.

In-process market (real contracts on eth-tester, real torrents and training); the worker is
stopped in the middle of an epoch, well past half of the job, and started again on the same
data dir. It must say it resumes, retrain fewer steps than it had done before the crash, and
be paid the clearing price.
"""

from __future__ import annotations

import pytest
from morphware.runtime.node.daemon import wait_until
from node_helpers import CAST, make_package, wait_phase

pytestmark = [pytest.mark.chain, pytest.mark.integration]

EPOCHS = 24
STEPS_PER_EPOCH = 23  # 1437 digits, batches of 64


def _steps_done(node, job: int) -> int:
    prog = node.store.progress(job)
    return prog[-1]["step"] + 1 if prog else 0


def test_worker_killed_mid_training_resumes_from_its_checkpoint_and_is_paid(
        local_market, tmp_path):
    local_market.add_all([p for p in CAST if p.name != "worker-b"])
    files, manifest, terms = make_package(tmp_path / "pkg", epochs=EPOCHS)
    terms["windows"][3] = 1800  # a work window no slow machine runs out of
    req = local_market.nodes["requester"]
    local = req.roles["requester"].submit_package("digits-resume", files, manifest, terms)
    assert wait_until(lambda: req.store.submission(local).job_id is not None, 60)
    job = req.store.submission(local).job_id
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    worker = local_market.nodes["worker-a"]
    total = EPOCHS * STEPS_PER_EPOCH
    ckpt = worker.data_dir / "work" / str(job) / "checkpoint.pt"
    assert wait_phase(worker, job, "worker", "training", 120)
    assert wait_until(lambda: _steps_done(worker, job) > 0.6 * total and ckpt.is_file(), 600)
    before = _steps_done(worker, job)  # published steps: at most what was done
    local_market.stop("worker-a")  # mid-epoch: the step callback stops training at once
    worker = local_market.add(next(p for p in CAST if p.name == "worker-a"))
    assert wait_phase(req, job, "requester", "done", 600), req.store.timeline(job)
    row = worker.store.job(job, "worker")
    resumed = int(row.facts["resumed_steps"])
    assert row.facts["resumed_epoch"] == resumed // STEPS_PER_EPOCH > 0
    retrained = total - resumed
    assert 0 < retrained < before <= total  # resumed, not started over
    assert req.store.job(job, "requester").facts["outcome"] == "accepted"
    assert wait_phase(worker, job, "worker", "done", 20)
    cj = req.market.job(job)
    assert worker.store.job(job, "worker").facts["earned"] == cj.price > 0
    # the live loss curve carries on from the checkpoint: every step once, none missing
    assert [e["step"] for e in worker.store.progress(job)] == list(range(total))
