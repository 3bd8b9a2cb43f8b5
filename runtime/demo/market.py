"""An embedded market in one process: a chain with the contracts deployed (eth-tester) and
in-process nodes on loopback. ``morphware demo`` runs on it, and so do the node tests.

The only thing it does that a real network would not is move the chain's clock on request
(``warp_past_bidding``, ``warp``), so nobody sits out a 60-second window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphware.runtime.node.daemon import Node, NodeConfig, wait_until
from morphware.runtime.node.keystore import NodeKey
from morphware.runtime.node.pricing import WorkerProfile, from_base_units
from morphware.runtime.node.roles import build_node

log = logging.getLogger("morphware.demo")

TOKEN = 10**18
MIN_WINDOW = 5
"""The demo market's floor for job windows (seconds): its nodes poll every 0.1 s."""
ACTION_THREADS = 8
"""Steps of different jobs run concurrently in each node (as ``morphware node`` does): on the
live embedded chain a transaction waits for its block, so one job's step must not queue behind
another's (16 jobs' bids one block each would outlast a 10-s bid window)."""


@dataclass(frozen=True)
class Participant:
    """One node of the demo: its roles, and for workers the price it asks per second."""

    name: str
    roles: tuple[str, ...]
    price_per_s: float = 1.0
    train_backend: str = "cpu"
    eval_backend: str = "cpu"


def default_cast() -> list[Participant]:
    """One requester, four workers at different prices, three validators (one on golden).
    ``worker-fpga`` is FPGA-class: its only training backend is the systolic array (the golden
    model standing in for the board), it prices from the cycle model at the overlay's clock and
    asks little per second, as a board drawing a few watts can."""
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
        Participant("worker-fpga", ("worker",), price_per_s=0.3, train_backend="golden"),
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
                 fund: int = 2_000 * TOKEN, block_time: int = 1,
                 echo: Callable[[str], None] | None = None) -> None:
        from morphware.contracts import ChainControl, deploy, embedded_chain

        self.root = Path(root)
        self.chain = embedded_chain(n_accounts)
        self.w3 = self.chain.w3
        self.deployment = deploy(self.w3, self.chain.accounts[0], dev=True, min_stake=TOKEN,
                                 min_window=MIN_WINDOW, draw_delay=1)
        self.lock = self.chain.lock
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
        # From here on the chain is live: a block every block_time with whatever was sent in it
        # (the chain clock follows the wall clock however busy the nodes are), an empty one when
        # idle (deadlines are checked against block time, the validator draw waits for a block
        # mined after the result). After a ``warp`` the chain keeps its lead and ticks on at
        # wall-clock pace.
        self.chain.produce_blocks(block_time)
        self._fund_all()

    def _fund_all(self) -> None:
        """Fund every participant account up front, all at once: each account's faucet steps
        and its approval are in flight together (one nonce each), so they share a block instead
        of taking two blocks per participant as each joins."""
        from morphware.contracts import MarketClient

        step = 10_000 * TOKEN  # the dev faucet's most per call
        calls: list[Callable[[], Any]] = []
        for acct in self.chain.accounts[1:]:
            client = MarketClient(self.w3, self.deployment, acct)
            calls += [lambda c=client, a=min(step, self.fund_amount - done): c.faucet(a)
                      for done in range(0, self.fund_amount, step)]
            calls.append(client.approve)
        with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="fund") as pool:
            for f in [pool.submit(call) for call in calls]:
                f.result()

    def _sink(self, kind: str, data: dict[str, Any]) -> None:
        with self._mlock:
            self.milestones.append(Milestone(time.time(), kind, data))
        if self._echo is not None:
            self._echo(_describe(time.time() - self._t0, kind, data))

    def market_for(self, name: str) -> Any:
        """A Market for a participant's account (a fresh, funded account the first time)."""
        from morphware.contracts import MarketClient
        from morphware.runtime.node.chain import Locked
        from morphware.runtime.node.market_adapter import ContractsMarket

        if name not in self._accounts:
            if self._next_account >= len(self.chain.accounts):
                raise ValueError(f"no account left for {name}; raise n_accounts")
            self._accounts[name] = self.chain.accounts[self._next_account]
            self._next_account += 1
        acct = self._accounts[name]
        return Locked(ContractsMarket(MarketClient(self.w3, self.deployment, acct)), self.lock)

    def add(self, p: Participant, *, profile: WorkerProfile | None = None,
            fetch_timeout: float = 60.0, stall_timeout: float = 6.0) -> Node:
        """Start (or restart, on the same data dir) the node of ``p``."""
        node = self._build(p, profile, fetch_timeout, stall_timeout)
        node.start()
        return node

    def add_all(self, cast: list[Participant], *,
                profiles: dict[str, WorkerProfile] | None = None) -> list[Node]:
        """Start the nodes of ``cast`` together: their registrations share a block, where
        ``add`` one after another takes a block per node. Accounts go in ``cast`` order."""
        nodes = [self._build(p, (profiles or {}).get(p.name), 60.0, 6.0) for p in cast]
        with ThreadPoolExecutor(max_workers=max(1, len(nodes)), thread_name_prefix="start") as pool:
            for f in [pool.submit(n.start) for n in nodes]:
                f.result()
        return nodes

    def _build(self, p: Participant, profile: WorkerProfile | None, fetch_timeout: float,
               stall_timeout: float) -> Node:
        market = self.market_for(p.name)
        acct = self._accounts[p.name]
        if "worker" in p.roles and profile is None:
            profile = worker_profile(p.train_backend, p.price_per_s)
        cfg = NodeConfig(roles=p.roles, data_dir=self.root / p.name, peers_dir=self.root / "peers",
                         profile=profile, train_backend=p.train_backend,
                         eval_backend=p.eval_backend, worker_stake=5 * TOKEN,
                         validator_stake=5 * TOKEN, poll_interval=self.poll_interval,
                         fetch_timeout=fetch_timeout, stall_timeout=stall_timeout, name=p.name,
                         action_threads=ACTION_THREADS)
        node = build_node(NodeKey(acct.address, bytes(acct.key)), market, cfg, on_event=self._sink)
        self.nodes[p.name] = node
        return node

    def stop(self, name: str) -> None:
        self.nodes.pop(name).stop()

    def close(self) -> None:
        """Stop every node (together: one may be waiting for its transaction's block) and then
        the block producer."""
        names = list(self.nodes)
        if names:
            with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="stop") as pool:
                list(pool.map(self.stop, names))
        self.chain.close()

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


def worker_profile(backend: str, price_per_s: float, margin: float = 0.2,
                   overhead_s: float = 2.0) -> WorkerProfile:
    """How a worker on ``backend`` prices: from the array's cycle model at its clock when the
    backend trains on the systolic array, else from this machine's measured MAC/s."""
    from morphware.runtime.node.engine import array_clock_hz, array_peak_macs

    clock = array_clock_hz(backend)
    if clock > 0:
        return WorkerProfile(backend=backend, macs_per_s=array_peak_macs(backend),
                             price_per_s=price_per_s, margin=margin, clock_hz=clock,
                             overhead_s=overhead_s)
    return WorkerProfile(backend=backend, macs_per_s=measured_macs(backend),
                         price_per_s=price_per_s, margin=margin, overhead_s=overhead_s)


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
