"""A validator drawn for more jobs than it can evaluate before their commit deadlines says so:
it commits and reveals DECLINED for those it cannot finish, is slashed for none, and is paid only
for what it evaluated (in process, real contracts, training and evaluation).

validator-1 evaluates two jobs at a time and believes an evaluation takes 110 s of a 200-s
commit window; its evaluations are held (a gate around the engine's ``evaluate``, after both
inputs arrived) so that they overlap the way long ones would. Of three jobs drawn one after the
other: the first two start; the third is declined at once (the two queued ahead leave no time);
the first is then let finish and is paid; the second is still running as its commit deadline
comes, so it is declined then, rather than blamed on the model that did arrive."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from morphware.runtime.cli import app
from morphware.runtime.demo import TOKEN
from morphware.runtime.node.daemon import wait_until
from node_helpers import CAST, make_package, wait_phase
from typer.testing import CliRunner

pytestmark = [pytest.mark.chain, pytest.mark.integration]

FEE = 1 * TOKEN
WINDOWS = [60, 60, 60, 120, 200, 60]  # bid, reveal, key, work, verdict commit, verdict reveal
BELIEVED_EVAL_S = 110  # 1 fits a 200-s window, 1.5 (one ahead on 2 slots) fits, 2 does not


def test_overdrawn_validator_declines_what_it_cannot_finish_and_is_never_slashed(
        local_market, tmp_path, monkeypatch):
    from morphware.runtime.node import engine

    gates: dict[int, threading.Event] = {}
    held: list[int] = []  # validator-1's jobs whose evaluation reached the engine, in order
    real = engine.evaluate

    def gated(model: Path, test: Path, metric: str, backend: str = "auto") -> float:
        if "validator-1" in Path(model).parts:
            job = int(Path(model).parent.name)
            held.append(job)
            gates.setdefault(job, threading.Event()).wait(120)
        return real(model, test, metric, backend=backend)

    monkeypatch.setattr(engine, "evaluate", gated)
    try:
        _run(local_market, tmp_path, gates, held)
    finally:  # never leave an evaluation held: the nodes' stop waits for their background work
        for g in list(gates.values()):
            g.set()


def _run(local_market, tmp_path, gates: dict[int, threading.Event], held: list[int]) -> None:
    cast = [CAST[0], CAST[1], *CAST[3:]]  # requester, worker-a, three validators
    local_market.add_all(cast)
    v1 = local_market.nodes["validator-1"]
    v1.config.eval_slots = 2
    v1.store.set_meta("eval_seconds", str(BELIEVED_EVAL_S))
    before = local_market.balances()
    req, worker = local_market.nodes["requester"], local_market.nodes["worker-a"]
    local = []
    for i in range(3):
        files, manifest, terms = make_package(tmp_path / f"pkg{i}")
        local.append(req.roles["requester"].submit_package(
            f"decline-{i}", files, manifest, {**terms, "windows": WINDOWS}))
    assert wait_until(lambda: all(req.store.submission(i).job_id for i in local), 60)
    jobs = [req.store.submission(i).job_id for i in local]
    for j in jobs:
        assert wait_phase(worker, j, "worker", "committed", 40), worker.store.timeline(j)
    local_market.warp_past_bidding(jobs[-1], 0, timeout=1)

    def v1_row(j: int):  # noqa: ANN202
        return v1.store.job(j, "validator")

    def declined(j: int) -> bool:
        r = v1_row(j)
        return r is not None and r.facts.get("verdict") == "declined"

    # two evaluations held, the third draw declined at once
    assert wait_until(lambda: len(held) == 2 and sum(map(declined, jobs)) == 1, 120), \
        (held, [v1_row(j) for j in jobs])
    first, second = held
    (third,) = [j for j in jobs if declined(j)]
    assert "evaluations queued ahead" in v1_row(third).facts["reason"]
    assert wait_phase(v1, third, "validator", "done", 60), v1.store.timeline(third)
    gates[first].set()  # the first evaluation finishes in time
    assert wait_phase(v1, first, "validator", "done", 60), v1.store.timeline(first)
    # the second is still running as its commit deadline comes: declined, not "model unusable"
    assert v1_row(second).phase == "drawn" and not v1_row(second).facts.get("waiting_for")
    gap = req.market.job(second).deadline - req.market.now() - 8  # validators act with 5 s left
    assert gap > 0
    local_market.warp(gap)
    assert wait_phase(v1, second, "validator", "done", 60), v1.store.timeline(second)
    gates[second].set()
    assert "still running" in v1_row(second).facts["reason"]

    for j in jobs:
        assert wait_phase(req, j, "requester", "done", 60), req.store.timeline(j)
        for v in ("validator-2", "validator-3"):
            assert wait_phase(local_market.nodes[v], j, "validator", "done", 30)
        assert wait_phase(worker, j, "worker", "done", 30)
    cjs = {j: req.market.job(j) for j in jobs}
    assert all(cj.outcome == "accepted" for cj in cjs.values())  # two metrics decide each
    assert {j: len(cj.metrics) for j, cj in cjs.items()} == {first: 3, second: 2, third: 2}
    assert all(cj.extra["declined"] == (j != first) for j, cj in cjs.items())
    assert all(not cj.extra["unrevealed"] for cj in cjs.values())  # nobody to slash
    client = req.market._inner.client
    assert not client.events(name="ValidatorSlashed")
    earned = {j: v1_row(j).facts["earned"] for j in jobs}
    assert earned == {first: FEE, second: 0, third: 0}
    assert [p for _, p, _ in v1.store.timeline(third, "validator")][:4] == [
        "drawn", "declined", "committed", "revealed"]

    after = local_market.balances()
    d = {k: after[k] - before[k] for k in after}
    paid = sum(cj.price for cj in cjs.values())
    assert d["validator-1"] == FEE  # one fee; its stake untouched
    assert d["validator-2"] == d["validator-3"] == 3 * FEE
    assert d["worker-a"] == paid
    assert d["requester"] == -(paid + 7 * FEE)  # the two declined fees came back

    shown = CliRunner().invoke(app, ["status", str(third), "--data-dir", str(v1.data_dir)])
    assert shown.exit_code == 0, shown.output
    assert "verdict: declined" in shown.output and "earned: 0" in shown.output
