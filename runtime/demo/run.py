"""``morphware demo``: a whole market in one process, one real job end to end.

An embedded chain (eth-tester / py-evm) with the real contracts, one requester, four workers
that price the same job differently (their measured speed times their own price per second; the
FPGA-class one, training with every GEMM on the systolic array, from the array's cycle model),
three validators (two evaluate with torch on the CPU, one with the compiled systolic Program on
the bit-exact ``golden`` backend), each node a thread with its own account, SQLite store,
libtorrent session on loopback and HTTP endpoint. The digits job goes through sealed bids,
pay-as-bid clearing, encrypted delivery, training, validation and settlement.

The only thing the demo does that a real network would not is move the chain's clock: once every
worker has sealed its bid it jumps to the end of the bid window (``ChainControl.advance_time``),
so the demo does not sit out a 60-second window. Everything else happens because the nodes react
to chain events.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morphware.runtime.demo.market import LocalMarket, Milestone, Participant, default_cast
from morphware.runtime.node.daemon import Node, wait_until
from morphware.runtime.node.pricing import from_base_units

# The repository's examples/ in a checkout; morphware/examples in an installed package (setup.py
# ships the folder beside the parts, so one relative path finds it in both).
EXAMPLE_JOB = Path(__file__).resolve().parents[2] / "examples" / "digits" / "job.toml"


@dataclass
class DemoResult:
    job_id: int
    outcome: str
    winner: str
    clearing_price: float
    asks: dict[str, float]
    metrics: dict[str, float]
    payments: dict[str, float]
    phases: dict[str, float]
    model_path: str
    loss_curve: list[float]
    seconds: float
    milestones: list[Milestone] = field(default_factory=list)

    @property
    def paid(self) -> bool:
        return self.outcome == "accepted" and bool(self.model_path)


def run_demo(job: Path = EXAMPLE_JOB, root: Path | None = None, *, timeout: float = 300.0,
             echo: Callable[[str], None] | None = print,
             cast: list[Participant] | None = None,
             on_requester: Callable[[Node], Any] | None = None) -> DemoResult:
    """Run the market on ``job`` until the requester holds the trained model (or ``timeout``).
    ``on_requester`` is called with the requester's node as soon as it exists, before the other
    nodes start (``morphware demo --dashboard`` serves its store from there); what it raises
    stops the demo."""
    if root is None:  # kept: the trained model is there
        root = Path(tempfile.mkdtemp(prefix="morphware-demo-"))
    cast = cast or default_cast()
    t0 = time.time()
    market = LocalMarket(Path(root), echo=echo)
    try:
        for p in cast:  # the requester first (the dashboard serves its store from the start)
            if p.name == "requester":
                node = market.add(p)
                if on_requester is not None:
                    on_requester(node)
        market.add_all([p for p in cast if p.name != "requester"])  # registrations in one block
        before = market.balances()
        requester = market.nodes["requester"]
        local_id = requester.roles["requester"].submit(job)
        job_id = _wait_for_job_id(requester, local_id, timeout)
        n_workers = sum(1 for p in cast if "worker" in p.roles)
        market.warp_past_bidding(job_id, n_workers, timeout=max(5.0, timeout / 4))
        ok = wait_until(lambda: _phase(requester, job_id) == "done",
                        timeout - (time.time() - t0), interval=0.2)
        if not ok:
            raise TimeoutError(f"demo job {job_id} did not finish in {timeout:.0f}s; requester "
                               f"is in phase {_phase(requester, job_id)!r}")
        after = market.balances()
        return _result(market, job_id, before, after, time.time() - t0)
    finally:
        market.close()


def _wait_for_job_id(requester: Node, local_id: int, timeout: float) -> int:
    def posted() -> bool:
        sub = requester.store.submission(local_id)
        if sub is not None and sub.state == "failed":
            raise RuntimeError(f"submission failed: {sub.facts.get('error')}")
        return sub is not None and sub.job_id is not None

    if not wait_until(posted, timeout):
        raise TimeoutError("the requester did not post the job in time")
    sub = requester.store.submission(local_id)
    assert sub is not None and sub.job_id is not None
    return sub.job_id


def _phase(node: Node, job_id: int) -> str:
    row = node.store.job(job_id, "requester")
    return row.phase if row else ""


def _result(market: LocalMarket, job_id: int, before: dict[str, int], after: dict[str, int],
            seconds: float) -> DemoResult:
    req = market.nodes["requester"]
    row = req.store.job(job_id, "requester")
    assert row is not None
    cj = req.market.job(job_id)
    names = {n.key.address.lower(): name for name, n in market.nodes.items()}
    asks = {}
    for name, node in market.nodes.items():
        bid = node.store.bid(job_id) if "worker" in node.roles else None
        if bid is not None:
            asks[name] = from_base_units(bid.price)
    metrics = {}
    for name, node in market.nodes.items():
        vrow = node.store.job(job_id, "validator") if "validator" in node.roles else None
        if vrow is not None and "metric" in vrow.facts:
            metrics[f"{name} ({vrow.facts.get('backend')})"] = float(vrow.facts["metric"])
    payments = {name: from_base_units(after[name] - before.get(name, 0)) for name in after}
    return DemoResult(
        job_id=job_id, outcome=cj.outcome, winner=names.get((cj.winner or "").lower(), "-"),
        clearing_price=from_base_units(cj.price), asks=asks, metrics=metrics, payments=payments,
        phases=phase_durations(req.store, job_id),
        model_path=str(row.facts.get("model_path", "")),
        loss_curve=list(row.facts.get("loss_curve", [])), seconds=seconds,
        milestones=list(market.milestones))


PHASE_LABELS = {"auction": "auction (seal, reveal, finalize)",
                "working": "key release + training + result",
                "validating": "validation (evaluate, commit, reveal)",
                "closed": "settlement + model download"}


def phase_durations(store: Any, job_id: int) -> dict[str, float]:
    """Seconds spent in each requester phase, in order, starting with packaging + seeding +
    posting (from the submission to the job on chain)."""
    timeline = store.timeline(job_id, "requester")
    out: dict[str, float] = {}
    row = store.job(job_id, "requester")
    sub = store.submission(int(row.facts["local_id"])) if row and "local_id" in row.facts else None
    if sub is not None and timeline:
        out["package + encrypt + seed + post"] = timeline[0][2] - sub.created
    for (_, phase, at), (_, _, nxt) in zip(timeline, timeline[1:], strict=False):
        out[PHASE_LABELS.get(phase, phase)] = nxt - at
    return out


def summary(r: DemoResult) -> str:
    """The closing table of the demo."""
    lines = [
        "",
        f"job {r.job_id}: {r.outcome.upper()} in {r.seconds:.1f}s",
        f"  winner          {r.winner}",
        "  asks (sealed)   " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(r.asks.items())),
        f"  clearing price  {r.clearing_price:.4g} tokens (the winner's own ask)",
        "  accuracy        " + ", ".join(f"{k}: {v:.4f}" for k, v in r.metrics.items()),
        "  payments        " + ", ".join(f"{k} {v:+.4g}" for k, v in r.payments.items()),
        "  time per phase  " + ", ".join(f"{k}: {v:.1f}s" for k, v in r.phases.items()),
        f"  loss curve      {' '.join(f'{v:.3f}' for v in r.loss_curve[:: max(1, len(r.loss_curve) // 8)])}",
        f"  trained model   {r.model_path or '-'}",
    ]
    return "\n".join(lines)
