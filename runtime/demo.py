"""``morphware demo``: a whole market in one process, one real job end to end.

An embedded chain (eth-tester / py-evm) with the real contracts, one requester, three workers
that price the same job differently (their measured speed times their own price per second),
three validators (two evaluate with torch on the CPU, one with the compiled systolic Program on
the bit-exact ``golden`` backend), each node a thread with its own account, SQLite store,
libtorrent session on loopback and HTTP endpoint. The digits job goes through sealed bids,
second-price clearing, encrypted delivery, training, validation and settlement.

The only thing the demo does that a real network would not is move the chain's clock: once every
worker has sealed its bid it jumps to the end of the bid window (``ChainControl.advance_time``),
so the demo does not sit out a 60-second window. Everything else happens because the nodes react
to chain events.

``LocalMarket`` is the same harness the node tests use.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morphware.runtime.node.daemon import Node, NodeConfig, wait_until
from morphware.runtime.node.keystore import NodeKey
from morphware.runtime.node.pricing import WorkerProfile, from_base_units

log = logging.getLogger("morphware.demo")

TOKEN = 10**18
EXAMPLE_JOB = Path(__file__).resolve().parents[1] / "examples" / "digits" / "job.toml"


@dataclass(frozen=True)
class Participant:
    """One node of the demo: its roles, and for workers the price it asks per second."""

    name: str
    roles: tuple[str, ...]
    price_per_s: float = 1.0
    train_backend: str = "cpu"
    eval_backend: str = "cpu"


def default_cast() -> list[Participant]:
    """One requester, three workers at different prices, three validators (one on golden)."""
    import importlib.util

    cuda = "cpu"
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = "cuda" if torch.cuda.is_available() else "cpu"
    return [
        Participant("requester", ("requester",)),
        Participant("worker-a", ("worker",), price_per_s=0.6, train_backend="cpu"),
        Participant("worker-b", ("worker",), price_per_s=1.1, train_backend="cpu"),
        Participant("worker-c", ("worker",), price_per_s=2.0, train_backend=cuda),
        Participant("validator-1", ("validator",), eval_backend="cpu"),
        Participant("validator-2", ("validator",), eval_backend="cpu"),
        Participant("validator-golden", ("validator",), eval_backend="golden"),
    ]


@dataclass
class Milestone:
    at: float
    kind: str
    data: dict[str, Any]


class LocalMarket:
    """An embedded chain with the contracts deployed, and in-process nodes on loopback."""

    def __init__(self, root: Path, *, n_accounts: int = 12, poll_interval: float = 0.1,
                 fund: int = 2_000 * TOKEN, block_time: float = 1.0,
                 echo: Callable[[str], None] | None = None) -> None:
        from morphware.contracts import ChainControl, deploy, embedded_chain
        from morphware.contracts.tx import lock_for

        self.root = Path(root)
        self.chain = embedded_chain(n_accounts)
        self.w3 = self.chain.w3
        self.deployment = deploy(self.w3, self.chain.accounts[0], min_stake=TOKEN)
        self.lock = lock_for(self.w3)
        self.control = ChainControl(self.w3)
        self.poll_interval = poll_interval
        self.fund_amount = fund
        self.nodes: dict[str, Node] = {}
        self.milestones: list[Milestone] = []
        self._next_account = 1
        self._accounts: dict[str, Any] = {}
        self._echo = echo
        self._t0 = time.time()
        self._mlock = threading.Lock()
        self._closing = threading.Event()
        self._miner = threading.Thread(target=self._produce_blocks, args=(block_time,),
                                       daemon=True, name="block-producer")
        self._miner.start()

    def _produce_blocks(self, block_time: float) -> None:
        """Mine an empty block when the chain has had none for ``block_time`` seconds, as any
        live chain does: deadlines are checked against block time, and an idle eth-tester's
        clock would stand still. (eth-tester stamps each block at least one second after its
        parent, so mining more often would run the chain clock ahead of the wall clock.)"""
        while not self._closing.wait(block_time / 2):
            with self.lock:
                if time.time() - self.control.now() >= block_time:
                    self.control.mine()

    def _sink(self, kind: str, data: dict[str, Any]) -> None:
        with self._mlock:
            self.milestones.append(Milestone(time.time(), kind, data))
        if self._echo is not None:
            self._echo(_describe(time.time() - self._t0, kind, data))

    def market_for(self, name: str) -> Any:
        """A Market for a participant's account (a fresh account the first time)."""
        from morphware.contracts import MarketClient
        from morphware.runtime.node.chain import Locked
        from morphware.runtime.node.market_adapter import ContractsMarket

        if name not in self._accounts:
            if self._next_account >= len(self.chain.accounts):
                raise ValueError(f"no account left for {name}; raise n_accounts")
            self._accounts[name] = self.chain.accounts[self._next_account]
            self._next_account += 1
            fresh = True
        else:
            fresh = False
        acct = self._accounts[name]
        market = Locked(ContractsMarket(MarketClient(self.w3, self.deployment, acct)), self.lock)
        if fresh:
            market.fund(self.fund_amount)
        return market

    def add(self, p: Participant, *, profile: WorkerProfile | None = None,
            fetch_timeout: float = 60.0, stall_timeout: float = 6.0) -> Node:
        """Start (or restart, on the same data dir) the node of ``p``."""
        market = self.market_for(p.name)
        acct = self._accounts[p.name]
        if "worker" in p.roles and profile is None:
            profile = WorkerProfile(backend=p.train_backend, macs_per_s=measured_macs(
                p.train_backend), price_per_s=p.price_per_s)
        cfg = NodeConfig(roles=p.roles, data_dir=self.root / p.name, peers_dir=self.root / "peers",
                         profile=profile, train_backend=p.train_backend,
                         eval_backend=p.eval_backend, worker_stake=5 * TOKEN,
                         validator_stake=5 * TOKEN, poll_interval=self.poll_interval,
                         fetch_timeout=fetch_timeout, stall_timeout=stall_timeout, name=p.name)
        node = Node(NodeKey(acct.address, bytes(acct.key)), market, cfg, on_event=self._sink)
        self.nodes[p.name] = node
        node.start()
        return node

    def stop(self, name: str) -> None:
        self.nodes.pop(name).stop()

    def close(self) -> None:
        self._closing.set()
        for name in list(self.nodes):
            self.stop(name)

    def balances(self) -> dict[str, int]:
        """Token wallet + free balance in the market + stake, per participant."""
        from morphware.contracts import MarketClient

        out = {}
        with self.lock:
            for name, acct in self._accounts.items():
                c = MarketClient(self.w3, self.deployment, acct)
                out[name] = c.token_balance() + c.balance() + c.stake()
        return out

    def warp_past_bidding(self, job_id: int, expected_bids: int, timeout: float) -> bool:
        """Once ``expected_bids`` are sealed (or ``timeout``), jump to the end of the bid
        window; returns whether the jump happened."""
        from morphware.contracts import MarketClient, Phase

        client = MarketClient(self.w3, self.deployment, self.chain.accounts[0])

        def sealed() -> bool:
            with self.lock:
                return client.job(job_id).n_bids >= expected_bids

        wait_until(sealed, timeout)
        with self.lock:
            s = client.job(job_id)
            if s.phase != Phase.BIDDING:
                return False
            gap = s.deadline - self.control.now() + 1
            if gap > 0:
                self.control.advance_time(gap)
        self._sink("chain.clock", {"jumped_s": max(gap, 0), "reason": "all bids sealed"})
        return True

    def warp(self, seconds: int) -> None:
        with self.lock:
            self.control.advance_time(seconds)
        self._sink("chain.clock", {"jumped_s": seconds, "reason": "deadline"})


_PROFILE_CACHE: dict[str, float] = {}


def measured_macs(backend: str) -> float:
    """This machine's measured MAC/s on ``backend`` (the backends' own profile, cached)."""
    if backend not in _PROFILE_CACHE:
        try:
            from morphware.runtime.backends.registry import get_backend

            _PROFILE_CACHE[backend] = float(get_backend(backend).profile().macs_per_s)
        except Exception as e:  # noqa: BLE001 - a backend without a profile: measure GEMM
            log.info("no %s profile (%s); measuring a GEMM", backend, e)
            _PROFILE_CACHE[backend] = WorkerProfile.measure(backend)
    return _PROFILE_CACHE[backend]


def _describe(t: float, kind: str, data: dict[str, Any]) -> str:
    who = data.get("node", "")
    rest = {k: v for k, v in data.items() if k not in ("node", "address")}
    body = " ".join(f"{k}={_short(v)}" for k, v in rest.items())
    return f"[{t:6.1f}s] {who:<17} {kind:<28} {body}"


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and v >= 10**12:
        return f"{from_base_units(v):.4g}tok"
    if isinstance(v, str) and len(v) > 24:
        return v[:10] + "…" + v[-6:]
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in v.items()) + "}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# the demo


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


def run_demo(job: Path = EXAMPLE_JOB, root: Path | None = None, *, timeout: float = 170.0,
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
        for p in cast:
            node = market.add(p)
            if p.name == "requester" and on_requester is not None:
                on_requester(node)
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
        f"  clearing price  {r.clearing_price:.4g} tokens (second-lowest ask)",
        "  accuracy        " + ", ".join(f"{k}: {v:.4f}" for k, v in r.metrics.items()),
        "  payments        " + ", ".join(f"{k} {v:+.4g}" for k, v in r.payments.items()),
        "  time per phase  " + ", ".join(f"{k}: {v:.1f}s" for k, v in r.phases.items()),
        f"  loss curve      {' '.join(f'{v:.3f}' for v in r.loss_curve[:: max(1, len(r.loss_curve) // 8)])}",
        f"  trained model   {r.model_path or '-'}",
    ]
    return "\n".join(lines)
