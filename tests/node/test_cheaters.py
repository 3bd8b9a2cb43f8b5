"""Cheating strategies against honest nodes, on the embedded market: a requester that releases a
data key that opens nothing, and a requester that never releases the test-set keys. In each the
honest nodes follow the protocol and end with at least what they put in (plus their pay where
they worked); the cheater gains nothing. (A worker that commits a result nobody can fetch is
covered on chain by test_chain_incentives.test_4_… and the counterfactual property test.)

A cheater is an honest node whose market port is swapped for one that lies at one call."""

from __future__ import annotations

import pytest
from morphware.runtime.demo import TOKEN
from node_helpers import CAST, post, wait_phase

pytestmark = [pytest.mark.chain, pytest.mark.integration]

FEE = 1 * TOKEN


def _start(market, names):
    market.add_all([p for p in CAST if p.name in names])
    return market.balances()


def _delta(market, before):
    after = market.balances()
    return {k: after[k] - before[k] for k in before}


def _outcome(market, job) -> str:
    return market.nodes["requester"].market.job(job).outcome


def _run_out_commit_window(market, job, missing: str) -> None:
    """Once every validator knows what it is missing, move the chain clock to the last seconds
    of the verdict commit window, where honest validators reveal whose fault that is."""
    from morphware.runtime.node.daemon import wait_until

    req = market.nodes["requester"]
    assert wait_until(lambda: req.market.job(job).status.value == "commit", 90)
    vals = [market.nodes[v] for v in ("validator-1", "validator-2", "validator-3")]
    assert wait_until(lambda: all(
        (r := v.store.job(job, "validator")) is not None
        and r.facts.get("waiting_for") == missing
        and (missing == "data" or "expected_finish" in r.facts)  # its evaluation has started
        for v in vals), 60)
    gap = req.market.job(job).deadline - req.market.now() - 8  # validators act with 5 s left
    if gap > 0:
        market.warp(gap)


def test_bogus_data_key_is_rejected_and_nobody_loses(local_market, tmp_path):
    names = {"requester", "worker-a", "validator-1", "validator-2", "validator-3"}
    before = _start(local_market, names)
    req = local_market.nodes["requester"]
    honest_release = req.market.release_key
    req.market.release_key = lambda job_id, wrapped: honest_release(job_id, b"\x00" * 129)
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    worker = local_market.nodes["worker-a"]
    assert wait_phase(worker, job, "worker", ("key_rejected", "done"), 60), \
        worker.store.timeline(job)
    assert _outcome(local_market, job) == "key_rejected"
    assert wait_phase(req, job, "requester", "done", 30)
    assert wait_phase(worker, job, "worker", "done", 30)
    d = _delta(local_market, before)
    assert d["worker-a"] == 0 and d["requester"] == 0


@pytest.mark.slow
def test_withheld_test_keys_pay_the_worker(local_market, tmp_path):
    names = {"requester", "worker-a", "validator-1", "validator-2", "validator-3"}
    before = _start(local_market, names)
    req = local_market.nodes["requester"]
    req.market.release_test_keys = lambda job_id, wrapped: None  # never sent
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    _run_out_commit_window(local_market, job, "data")
    assert wait_phase(req, job, "requester", "done", 90), req.store.timeline(job)
    assert _outcome(local_market, job) == "data_fault"
    price = req.market.job(job).price
    for v in ("validator-1", "validator-2", "validator-3"):
        assert wait_phase(local_market.nodes[v], job, "validator", "done", 30)
    assert wait_phase(local_market.nodes["worker-a"], job, "worker", "done", 30)
    d = _delta(local_market, before)
    assert d["worker-a"] == price  # paid in full: it delivered
    assert all(d[v] == FEE for v in ("validator-1", "validator-2", "validator-3"))
    assert d["requester"] == -(price + 3 * FEE)  # withholding saved it nothing
