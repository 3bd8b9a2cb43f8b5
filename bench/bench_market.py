"""Market throughput: K jobs submitted at once to 3 workers and 3 validators.

Three paths (``MORPHWARE_BENCH_PATHS``), the first two over K = 1, 4, 8, 16 (32 with
``MORPHWARE_BENCH_K``):

- in process: ``LocalMarket`` (the embedded eth-tester chain, every node a thread of this
  process: the demo's setup);
- on anvil: workers and validators are separate ``morphware node`` processes on a real-time
  chain mining a block per second; the requester is a node in this process (it must seed the
  packages it submits);
- on anvil, capacity-bound: K = 16 only, with windows and worker estimates such that the jobs
  are more than the cheapest worker can finish (how the work spreads, ``capacity`` path).

The job is examples/digits cut to 2 epochs, packaged once and submitted K times under distinct
names. The chain runs in real time: a 10-s bid window and a 10-s reveal window are part of every
job's latency. Per K: wall time until every job is done, jobs per minute, per-job latency
(submission to done), outcomes, RPC calls per job (all nodes, from their counters), the largest
``eth_getLogs`` range any node used, the jobs each worker won; in process the share of wall time
the embedded chain's lock was held, on anvil the most transactions one node had in one block.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import Report, Table

TOKEN = 10**18
WINDOWS = [10, 10, 30, 600, 120, 60]  # bid, reveal, key, work, metric commit, metric reveal
WORKERS = (("worker-a", 0.6), ("worker-b", 1.1), ("worker-c", 2.0))
# Capacity-bound: a 15-s overhead in every estimate and a 100-s work window hold about five
# jobs per training slot, so 16 jobs are more than the cheapest worker can take (b has 2 slots).
CAPACITY_WORKERS = (("worker-a", 0.6, ["--overhead-s", "15"]),
                    ("worker-b", 1.1, ["--overhead-s", "15", "--train-slots", "2"]),
                    ("worker-c", 2.0, ["--overhead-s", "15"]))
CAPACITY_WINDOWS = [10, 10, 30, 100, 120, 60]
VALIDATORS = ("validator-1", "validator-2", "validator-3")
THRESHOLD = 0.7
MAX_PRICE = 400.0  # tokens: room for asks that carry a long queue on a slow (shared) machine


class TimedRLock:
    """An RLock that adds up how long it was held (outermost acquire to release)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = threading.local()
        self.held_s = 0.0
        self._since = 0.0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            d = getattr(self._depth, "n", 0)
            if d == 0:
                self._since = time.perf_counter()
            self._depth.n = d + 1
        return ok

    def release(self) -> None:
        self._depth.n -= 1
        if self._depth.n == 0:
            self.held_s += time.perf_counter() - self._since
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _package(tmp: Path) -> tuple[dict[str, Path], dict[str, Any], dict[str, Any]]:
    from morphware.runtime.demo import EXAMPLE_JOB
    from morphware.runtime.job.spec import load_job
    from morphware.runtime.node.engine import package
    from morphware.runtime.node.requester import market_terms

    spec = load_job(EXAMPLE_JOB)
    spec = replace(spec, training=replace(spec.training, epochs=2))
    pkg = package(spec, tmp / "package")
    # 2 epochs reach about 0.85-0.9 accuracy: the threshold is set below that, so that every
    # job can be accepted and the run measures the market, not the model
    terms = {**market_terms(spec), "windows": WINDOWS, "threshold": THRESHOLD,
             "max_price": MAX_PRICE}
    manifest = {**pkg.manifest, "metric": {**pkg.manifest["metric"], "threshold": THRESHOLD}}
    return pkg.files, manifest, terms


def _submit(requester: Any, files: dict[str, Path], manifest: dict[str, Any],
            terms: dict[str, Any], k: int, tag: str) -> list[int]:
    role = requester.roles["requester"]
    return [role.submit_package(f"{tag}-{i}", files, {**manifest, "name": f"{tag}-{i}"}, terms)
            for i in range(k)]


def _wait_done(requester: Any, local_ids: list[int], timeout: float) -> dict[int, float]:
    """{job id: seconds from submission to done} once all are done (or ``timeout``)."""
    store = requester.store
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        subs = [store.submission(i) for i in local_ids]
        jobs = [s.job_id for s in subs if s is not None and s.job_id is not None]
        rows = [store.job(j, "requester") for j in jobs]
        if len(jobs) == len(local_ids) and all(r is not None and r.phase == "done"
                                                for r in rows):
            break
        time.sleep(0.5)
    out = {}
    for i in local_ids:
        sub = store.submission(i)
        if sub is None or sub.job_id is None:
            continue
        done = [t for _, p, t in store.timeline(sub.job_id, "requester") if p == "done"]
        if done:
            out[sub.job_id] = done[-1] - sub.created
    return out


def _outcomes(requester: Any, jobs: list[int], names: dict[str, str]) -> tuple[dict, dict]:
    outcomes: dict[str, int] = {}
    won: dict[str, int] = {}
    for j in jobs:
        row = requester.store.job(j, "requester")
        if row is None:
            continue
        o = str(row.facts.get("outcome", "?"))
        outcomes[o] = outcomes.get(o, 0) + 1
        w = names.get(str(row.facts.get("winner", "")).lower())
        if w:
            won[w] = won.get(w, 0) + 1
    return outcomes, won


def _row(path: str, k: int, wall: float, lat: dict[int, float], calls: int, max_range: int,
         outcomes: dict, won: dict, **extra: Any) -> dict[str, Any]:
    vals = sorted(lat.values()) or [float("nan")]
    accepted = outcomes.get("accepted", 0)
    return {"path": path, "K": k, "done": len(lat), "wall_s": round(wall, 1),
            "jobs_per_min": round(len(lat) / wall * 60, 2) if wall > 0 else 0.0,
            "accepted_per_min": round(accepted / wall * 60, 2) if wall > 0 else 0.0,
            "latency_median_s": round(statistics.median(vals), 1),
            "latency_max_s": round(vals[-1], 1),
            "rpc_calls_per_job": round(calls / max(k, 1)),
            "max_getLogs_blocks": max_range,
            "outcomes": " ".join(f"{o}:{n}" for o, n in sorted(outcomes.items())),
            "won": " ".join(f"{w[-1]}:{n}" for w, n in sorted(won.items())), **extra}


# -- in process --------------------------------------------------------------------------------

def _inprocess(ks: list[int], tmp: Path, pkg: tuple) -> list[dict[str, Any]]:
    from morphware.contracts import tx
    from morphware.runtime.demo import LocalMarket, Participant

    lm = LocalMarket(tmp / "inproc", poll_interval=0.2, fund=(max(ks) + 2) * 500 * TOKEN)
    timed = TimedRLock()
    tx._LOCKS[lm.w3] = timed  # type: ignore[assignment]
    lm.lock = timed  # type: ignore[assignment]
    rows = []
    try:
        lm.add(Participant("requester", ("requester",)))
        for name, price in WORKERS:
            lm.add(Participant(name, ("worker",), price_per_s=price))
        for name in VALIDATORS:
            lm.add(Participant(name, ("validator",)))
        names = {n.key.address.lower(): name for name, n in lm.nodes.items()}
        req = lm.nodes["requester"]
        counter = req.market.rpc
        for k in ks:
            calls0, held0 = counter.total(), timed.held_s
            t0 = time.time()
            ids = _submit(req, *pkg, k, f"in{k}")
            lat = _wait_done(req, ids, timeout=300 + 60 * k)
            wall = time.time() - t0
            outcomes, won = _outcomes(req, list(lat), names)
            rows.append(_row("in process", k, wall, lat, counter.total() - calls0,
                             counter.max_logs_range, outcomes, won,
                             chain_lock_share=round((timed.held_s - held0) / wall, 2)))
            print(rows[-1], flush=True)
    finally:
        lm.close()
    return rows


# -- anvil, separate processes -----------------------------------------------------------------

def _node_stats(tmp: Path) -> tuple[int, int]:
    """(calls, largest getLogs range) summed / maxed over the node processes' stores."""
    import sqlite3

    calls, rng = 0, 0
    for name in [n for n, _ in WORKERS] + list(VALIDATORS):
        db = sqlite3.connect(str(tmp / name / "node.db"))
        row = db.execute("SELECT value FROM meta WHERE key = 'rpc_stats'").fetchone()
        db.close()
        if row:
            st = json.loads(row[0])
            calls += sum(r["n"] for r in st["calls"])
            rng = max(rng, int(st["max_logs_range"]))
    return calls, rng


def _anvil(ks: list[int], tmp: Path, pkg: tuple, workers: tuple = WORKERS,
           path: str = "anvil, processes") -> list[dict[str, Any]]:
    from tests.support.anvil_market import anvil_market, txs_per_block

    rows = []
    tmp.mkdir(parents=True, exist_ok=True)
    with anvil_market(tmp, list(workers), list(VALIDATORS),
                      requester_tokens=(max(ks) + 2) * 500 * TOKEN) as net:
        req, w3 = net.requester, net.w3
        market = req.market
        for k in ks:
            time.sleep(6)  # let every node flush its RPC counters
            calls0 = _node_stats(tmp)[0] + market.rpc.total()
            first = int(w3.eth.block_number)
            t0 = time.time()
            ids = _submit(req, *pkg, k, f"an{k}")
            lat = _wait_done(req, ids, timeout=300 + 60 * k)
            wall = time.time() - t0
            time.sleep(6)
            calls, rng = _node_stats(tmp)
            calls += market.rpc.total()
            outcomes, won = _outcomes(req, list(lat), net.names)
            tpb = txs_per_block(w3, first, int(w3.eth.block_number), net.names)
            rows.append(_row(path, k, wall, lat, calls - calls0,
                             max(rng, market.rpc.max_logs_range), outcomes, won,
                             max_txs_per_block_per_node=max(tpb.values(), default=0)))
            print(rows[-1], flush=True)
    return rows


def run(quick: bool = False) -> Report:
    ks = [1, 4] if quick else [int(k) for k in os.environ.get(
        "MORPHWARE_BENCH_K", "1,4,8,16").split(",")]
    paths = os.environ.get("MORPHWARE_BENCH_PATHS", "inprocess,anvil,capacity").split(",")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-market-") as d:
        tmp = Path(d)
        pkg = _package(tmp)
        if "inprocess" in paths:
            rows += _inprocess(ks, tmp, pkg)
        if "anvil" in paths:
            rows += _anvil(ks, tmp / "anvil", pkg)
        if "capacity" in paths:
            files, manifest, terms = pkg
            rows += _anvil([16], tmp / "capacity", (files, manifest,
                                                    {**terms, "windows": CAPACITY_WINDOWS}),
                           CAPACITY_WORKERS, "anvil, capacity-bound")
    targets = {}
    for path in {r["path"] for r in rows}:
        by_k = {r["K"]: r for r in rows if r["path"] == path}
        if 4 in by_k and 16 in by_k:
            targets[f"{path}: jobs/min at K=16 >= 80% of K=4"] = (
                by_k[16]["jobs_per_min"] >= 0.8 * by_k[4]["jobs_per_min"])
    return Report(
        name="market",
        tables=[Table("K digits jobs (2 epochs) at once; 3 workers, 3 validators", rows, [
            "wall: first submission to the last job done; latency: a job's submission to done "
            "(includes the 10-s bid and 10-s reveal windows: the chain runs in real time)",
            "rpc_calls_per_job: every JSON-RPC call of every node during the run (idle polls "
            "included) divided by K",
            "max_getLogs_blocks: the largest block range any eth_getLogs asked for (the node's "
            "log_range caps it at 2000)",
            "chain_lock_share: in process, the share of wall time the embedded chain's lock "
            "was held (every node's chain call takes it)",
            "won: jobs won per worker (a, b, c ask 0.6, 1.1, 2.0 tokens per second)",
            "anvil, capacity-bound: K=16 with a 100-s work window and a 15-s overhead in every "
            "estimate (about 5 jobs per training slot); worker-b has 2 slots",
            "max_txs_per_block_per_node: on anvil, the most transactions one node had mined in "
            "one block during the run",
            "a shared 2-core machine: training and evaluation of all nodes compete for it"])],
        targets=targets, meta={"quick": quick, "ks": ks},
    )
