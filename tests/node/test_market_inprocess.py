"""The market end to end in one process, and its faults: real contracts on eth-tester, real
torrents on loopback, real training and evaluation. The only shortcut is the chain clock, moved
forward with ChainControl where a test would otherwise sit out a deadline."""

from __future__ import annotations

from pathlib import Path

import pytest
from morphware.runtime.demo import TOKEN, Participant
from morphware.runtime.node.daemon import wait_until
from node_helpers import CAST, phase, post, wait_phase

pytestmark = [pytest.mark.chain, pytest.mark.integration]

FEE = 1 * TOKEN
BID_STAKE = 5 * TOKEN


def _start(market, cast):
    market.add_all(list(cast))
    return market.balances()


def _delta(market, before):
    after = market.balances()
    return {k: after[k] - before[k] for k in after}


def test_job_runs_to_a_paid_result_and_a_too_high_bid_loses(local_market, tmp_path):
    greedy = Participant("worker-greedy", ("worker",), price_per_s=1e6)
    before = _start(local_market, [*CAST, greedy])
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 2, timeout=20)
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "done", 90), req.store.timeline(job)
    row = req.store.job(job, "requester")
    assert row.facts["outcome"] == "accepted"
    cj = req.market.job(job)
    a, b = (local_market.nodes[n].store.bid(job).price for n in ("worker-a", "worker-b"))
    assert a < b and cj.price == a  # cheapest wins, paid its own ask
    assert cj.winner == local_market.nodes["worker-a"].key.address
    greedy_row = local_market.nodes["worker-greedy"].store.job(job, "worker")
    assert greedy_row.phase == "skipped" and "exceeds the job's max price" in greedy_row.facts[
        "reason"]
    assert len(cj.metrics) == 3 and all(m > 0.5 * 10**6 for m in cj.metrics)
    assert Path(row.facts["model_path"]).is_file() and row.facts["loss_curve"]
    assert req.store.progress(job)  # live loss pulled from the worker while it trained
    for v in ("validator-1", "validator-2", "validator-3"):
        assert wait_phase(local_market.nodes[v], job, "validator", "done", 10)
    assert wait_phase(local_market.nodes["worker-a"], job, "worker", "done", 10)
    d = _delta(local_market, before)
    assert d["worker-a"] == cj.price and d["worker-b"] == 0 and d["worker-greedy"] == 0
    assert d["requester"] == -(cj.price + 3 * FEE)
    assert all(d[v] == FEE for v in ("validator-1", "validator-2", "validator-3"))


def test_array_worker_wins_trains_on_the_array_and_is_paid(local_market, tmp_path):
    """A worker whose only training backend is the systolic array (the golden model standing
    in for the board) prices from the cycle model, underbids the CPU worker, trains with every
    GEMM on the array and is paid once validators accept the model."""
    array = Participant("worker-array", ("worker",), price_per_s=0.1, train_backend="golden")
    cast = [c for c in CAST if c.name != "worker-b"] + [array]
    before = _start(local_market, cast)
    assert local_market.nodes["worker-array"].config.profile.clock_hz > 0
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 2, timeout=20)
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "done", 120), req.store.timeline(job)
    cj = req.market.job(job)
    assert cj.outcome == "accepted"
    assert cj.winner == local_market.nodes["worker-array"].key.address
    trained = [m.data for m in local_market.milestones if m.kind == "worker.trained"]
    assert [t["backend"] for t in trained] == ["golden"]
    assert wait_phase(local_market.nodes["worker-array"], job, "worker", "done", 10)
    d = _delta(local_market, before)
    assert d["worker-array"] == cj.price > 0 and d["worker-a"] == 0


def test_worker_killed_during_training_times_out_refunds_and_slashes(local_market, tmp_path):
    cast = [c for c in CAST if c.name != "worker-b"]
    before = _start(local_market, cast)
    job = post(local_market, tmp_path / "pkg", epochs=60)  # long enough to stop it mid-way
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    worker = local_market.nodes["worker-a"]
    assert wait_phase(worker, job, "worker", "training", 30)
    local_market.stop("worker-a")  # killed mid-training: no result will come
    req = local_market.nodes["requester"]
    assert phase(req, job, "requester") == "working"
    local_market.warp(121)  # past the work window
    assert wait_phase(req, job, "requester", "done", 30), req.store.timeline(job)
    assert req.store.job(job, "requester").facts["outcome"] == "work_timeout"
    d = _delta(local_market, before)
    assert d["requester"] == BID_STAKE  # everything back, plus the worker's forfeited stake
    assert d["worker-a"] == -BID_STAKE


def test_validator_that_never_reveals_is_slashed_and_job_still_settles(local_market, tmp_path):
    before = _start(local_market, [c for c in CAST if c.name != "worker-b"])
    local_market.stop("validator-3")  # registered (so drawn), then silent for good
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    v1, v2 = local_market.nodes["validator-1"], local_market.nodes["validator-2"]
    assert wait_phase(v1, job, "validator", "committed", 60), (
        v1.store.timeline(job), local_market.nodes["requester"].store.timeline(job),
        local_market.nodes["requester"].market.job(job))
    assert wait_phase(v2, job, "validator", "committed", 30)
    local_market.warp(61)  # commit window over: the two commitments get revealed
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "done", 30), req.store.timeline(job)
    cj = req.market.job(job)
    assert cj.outcome == "accepted" and len(cj.metrics) == 2
    d = _delta(local_market, before)
    slashed = local_market.deployment.params["slash_bps"] * 5 * TOKEN // 10_000
    assert d["validator-3"] == -slashed
    assert d["requester"] == -(cj.price + 2 * FEE)  # the slash is burned, not paid to anyone
    assert d["validator-1"] == FEE and d["validator-2"] == FEE


def test_requester_killed_and_restarted_mid_job_resumes(local_market, tmp_path):
    _start(local_market, [c for c in CAST if c.name != "worker-b"])
    job = post(local_market, tmp_path / "pkg", epochs=10)
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "working", 30)
    released = len(req.market._inner.client.events(name="KeyReleased", job=job))
    local_market.stop("requester")
    worker = local_market.nodes["worker-a"]
    assert wait_phase(worker, job, "worker", ("submitted", "done"), 60)
    req = local_market.add(CAST[0])  # same data dir: resumes from SQLite + chain
    assert wait_phase(req, job, "requester", "done", 60), req.store.timeline(job)
    row = req.store.job(job, "requester")
    assert row.facts["outcome"] == "accepted" and Path(row.facts["model_path"]).is_file()
    client = req.market._inner.client
    assert len(client.events(name="KeyReleased", job=job)) == released == 1  # not done twice
    assert len(client.events(name="TestKeysReleased", job=job)) == 1


def test_result_seeder_that_vanishes_and_returns(local_market, tmp_path):
    cast = [c for c in CAST if c.name != "worker-b"]
    _start(local_market, cast)
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    worker = local_market.nodes["worker-a"]
    assert wait_phase(worker, job, "worker", "submitted", 60)
    local_market.stop("worker-a")  # the only seeder of the trained model is gone
    v1 = local_market.nodes["validator-1"]
    assert wait_phase(v1, job, "validator", "drawn", 20)
    assert not wait_phase(v1, job, "validator", "evaluated", 3)  # nothing to fetch from
    local_market.add(cast[1])  # the worker comes back and seeds again
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "done", 60), req.store.timeline(job)
    assert req.store.job(job, "requester").facts["outcome"] == "accepted"


def test_model_below_threshold_refunds_requester_and_slashes_worker(local_market, tmp_path):
    before = _start(local_market, [c for c in CAST if c.name != "worker-b"])
    job = post(local_market, tmp_path / "pkg", epochs=1, threshold=0.995)
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "done", 90), req.store.timeline(job)
    cj = req.market.job(job)
    assert cj.outcome == "rejected" and cj.median < 995_000
    assert req.store.job(job, "requester").facts.get("model_path") is None
    assert wait_phase(local_market.nodes["worker-a"], job, "worker", "done", 10)
    d = _delta(local_market, before)
    assert d["worker-a"] == -BID_STAKE
    assert d["requester"] == -3 * FEE + BID_STAKE  # price back; validators still paid


@pytest.mark.parametrize("hostile", ["pickled", "custom_op"])
def test_worker_refuses_hostile_artifacts_and_stays_up(local_market, tmp_path, hostile):
    _start(local_market, [CAST[0], CAST[1], *CAST[3:]])  # validators: a job needs a pool
    job = post(local_market, tmp_path / "bad", **{hostile: True})
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    worker = local_market.nodes["worker-a"]
    assert wait_phase(worker, job, "worker", "failed", 60), worker.store.timeline(job)
    err = worker.store.job(job, "worker").facts["error"]
    assert err.startswith("refused unsafe input")
    assert ("pickle" in err) if hostile == "pickled" else ("custom" in err and "evil.ops" in err)
    assert not worker.store.progress(job)  # nothing ran
    # still up: the next job is seen and bid on
    job2 = post(local_market, tmp_path / "good")
    assert wait_phase(worker, job2, "worker", "committed", 20)
    assert wait_until(lambda: worker._thread.is_alive(), 1)
