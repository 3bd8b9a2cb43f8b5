"""The market end to end in one process: real contracts on eth-tester, real torrents on
loopback, real training and evaluation."""

from __future__ import annotations

import pytest
from morphware.runtime.node.daemon import wait_until
from node_helpers import CAST, make_package

pytestmark = [pytest.mark.chain, pytest.mark.integration]


def _phase(node, job_id, role):
    row = node.store.job(job_id, role)
    return row.phase if row else None


def _post(market, tmp_path, **kw):
    req = market.nodes["requester"]
    files, manifest, terms = make_package(tmp_path / "pkg", **kw)
    local = req.roles["requester"].submit_package("digits-test", files, manifest, terms)
    assert wait_until(lambda: req.store.submission(local).job_id is not None, 20)
    return req.store.submission(local).job_id


def test_job_runs_to_a_paid_result(local_market, tmp_path):
    for p in CAST:
        local_market.add(p)
    job = _post(local_market, tmp_path)
    assert local_market.warp_past_bidding(job, 2, timeout=20)
    req = local_market.nodes["requester"]
    assert wait_until(lambda: _phase(req, job, "requester") == "done", 90), \
        req.store.timeline(job)
    row = req.store.job(job, "requester")
    assert row.facts["outcome"] == "accepted"
    cj = req.market.job(job)
    a, b = (local_market.nodes[n].store.bid(job).price for n in ("worker-a", "worker-b"))
    assert a < b and cj.price == b  # cheapest wins, paid the second price
    assert cj.winner == local_market.nodes["worker-a"].key.address
    assert len(cj.metrics) == 3 and all(m > 0.5 * 10**6 for m in cj.metrics)
    assert row.facts["model_path"] and row.facts["loss_curve"]
    assert req.store.progress(job)  # live loss pulled from the worker during training
