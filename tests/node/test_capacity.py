"""Nodes take on only what they can finish: a worker offered more jobs than it can train in
their windows bids on those that fit and no more; the rest get no bid and the requester has its
escrow back; nobody honest loses stake (in process, real contracts and training)."""

from __future__ import annotations

import pytest
from morphware.runtime.cli import app
from morphware.runtime.demo import TOKEN
from morphware.runtime.node.pricing import WorkerProfile
from node_helpers import CAST, wait_phase
from typer.testing import CliRunner

pytestmark = [pytest.mark.chain, pytest.mark.integration]

FEE = 1 * TOKEN
ESTIMATE_S = 50.0  # what the worker believes one job takes (really a few seconds)
WORK_MACS = 3 * (64 * 32 + 32 * 10) * 1437 * 2  # make_package's MLP, 2 epochs
WINDOWS = [60, 60, 60, 120, 60, 60]


def test_more_jobs_than_a_worker_can_finish_get_bids_only_where_they_fit(local_market,
                                                                         tmp_path):
    from node_helpers import make_package

    slow = WorkerProfile(backend="cpu", macs_per_s=WORK_MACS / (ESTIMATE_S - 2.0),
                         price_per_s=0.5, overhead_s=2.0)
    cast = [CAST[0], CAST[1], *CAST[3:]]  # requester, worker-a, three validators
    local_market.add_all(cast, profiles={"worker-a": slow})
    before = local_market.balances()
    req, worker = local_market.nodes["requester"], local_market.nodes["worker-a"]
    locals_ = []
    for i in range(4):
        files, manifest, terms = make_package(tmp_path / f"pkg{i}")
        manifest["name"] = f"capacity-{i}"
        locals_.append(req.roles["requester"].submit_package(
            f"capacity-{i}", files, manifest, {**terms, "windows": WINDOWS}))
    from morphware.runtime.node.daemon import wait_until

    assert wait_until(lambda: all(req.store.submission(i).job_id for i in locals_), 60)
    jobs = [req.store.submission(i).job_id for i in locals_]
    def decided() -> bool:  # a bid on each job that fits; the rest wait for a slot to free
        rows = [worker.store.job(j, "worker") for j in jobs]
        return all(r is not None and (r.phase == "committed" or "waiting" in r.facts)
                   for r in rows)

    assert wait_until(decided, 40), [worker.store.job(j, "worker") for j in jobs]
    bid = [j for j in jobs if worker.store.job(j, "worker").phase == "committed"]
    waiting = [j for j in jobs if j not in bid]
    # 60 s bid window + 120 s work window, 2 x 50 s per job: two fit after each other, not four
    assert len(bid) == 2 and len(waiting) == 2, [worker.store.job(j, "worker") for j in jobs]
    asks = sorted(worker.store.bid(j).price for j in bid)
    assert asks[1] > asks[0]  # the second waits behind the first: it costs more
    worker.save_rpc_stats()
    shown = CliRunner().invoke(app, ["status", "--data-dir", str(worker.data_dir)])
    assert shown.exit_code == 0, shown.output
    assert "worker: 0/1 training, 100s of work held" in shown.output  # two 50-s jobs bid on
    assert all(f"job {j}: committed" in shown.output for j in bid)
    assert "RPC calls (" in shown.output and "worker " in shown.output
    local_market.warp_past_bidding(jobs[-1], 0, timeout=1)
    skipped = waiting  # bidding closed with their slot still taken: no bid, reason kept
    for j in skipped:
        assert wait_phase(worker, j, "worker", "skipped", 30)
        assert "queued work does not fit" in worker.store.job(j, "worker").facts["reason"]
    for j in jobs:
        assert wait_phase(req, j, "requester", "done", 240), req.store.timeline(j)
    outcomes = {j: req.store.job(j, "requester").facts["outcome"] for j in jobs}
    assert [outcomes[j] for j in skipped] == ["no_bids", "no_bids"]
    assert [outcomes[j] for j in bid] == ["accepted", "accepted"]
    for v in ("validator-1", "validator-2", "validator-3"):
        for j in bid:
            assert wait_phase(local_market.nodes[v], j, "validator", "done", 30)
    for j in bid:
        assert wait_phase(worker, j, "worker", "done", 30)
    after = local_market.balances()
    d = {k: after[k] - before[k] for k in after}
    paid = sum(req.market.job(j).price for j in bid)
    assert d["worker-a"] == paid  # both trained in time: paid, never slashed
    assert all(d[v] == 2 * FEE for v in ("validator-1", "validator-2", "validator-3"))
    assert d["requester"] == -(paid + 2 * 3 * FEE)  # the unbid jobs' escrow came back
