"""The node daemon: one loop over chain events driving the roles this node plays.

Every ``poll_interval`` the loop

1. reads the market's events from the block after the last one it processed up to the head, in
   ranges of at most ``log_range`` blocks, and hands each to every role (``on_event``: record
   facts such as magnets or wrapped keys; never act) and to the node's ``ChainIndex`` (the facts
   lookups need: drawn validators, outcomes, public keys), then records the range as processed.
   A node that starts far behind the head (an old deployment) catches up chunk by chunk and logs
   its progress;
2. lets every role ``tick`` when something may have changed (a new block, a background task
   ended, or ``tick_interval`` passed): for each of its active jobs, compare what the chain says
   (status, deadlines, winner, validators) with what the store says we have done, and take the
   next step. With ``action_threads`` > 1 the steps of different jobs run concurrently, so their
   transactions share blocks instead of queueing one per block.

Steps are level-triggered and idempotent: each checks the chain and the store before acting, so
running one twice (after a crash between a transaction and its record, or because an event was
seen again) does nothing the second time. That is why a restarted daemon simply resumes: it
re-reads events after its last processed block and ticks every job from where chain and store
say it is. A step the chain refuses (``MarketError``: a window not yet open, a race with another
node) is logged and retried on a later tick.

Long work (downloads, training, evaluation) runs in a ``TaskRunner`` so the loop keeps ticking.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morphware.runtime.node.chain import ChainJob, Market, MarketError
from morphware.runtime.node.index import ChainIndex
from morphware.runtime.node.keystore import NodeKey
from morphware.runtime.node.peers import NodeHttp, PeerBook, PeerInfo
from morphware.runtime.node.pricing import AMOUNT_FACTS, WorkerProfile, format_tokens
from morphware.runtime.node.role import Role
from morphware.runtime.node.store import Store
from morphware.runtime.node.tasks import Stopped, TaskRunner

log = logging.getLogger("morphware.node")

ROLES = ("requester", "worker", "validator")
HEARTBEAT_EVERY_S = 1.0


@dataclass
class NodeConfig:
    """How a node runs. Stakes are in base units; windows in seconds."""

    roles: tuple[str, ...]
    data_dir: Path
    peers_dir: Path
    profile: WorkerProfile | None = None
    train_backend: str = "auto"
    eval_backend: str = "auto"
    worker_stake: int = 0
    validator_stake: int = 0
    poll_interval: float = 0.2
    fetch_timeout: float = 120.0
    stall_timeout: float = 20.0
    name: str = ""
    log_range: int = 2000
    tick_interval: float = 1.0
    action_threads: int = 1
    train_slots: int = 1
    eval_slots: int = 1
    reaction_s: float = 0.0
    """The shortest window this node can be sure to act in (see it, then get a transaction
    mined). 0 means: 25 poll intervals, at least 5 s. Jobs that give this node less are refused,
    with the reason recorded."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reaction(self) -> float:
        return self.reaction_s or max(5.0, 25 * self.poll_interval)

    def __post_init__(self) -> None:
        bad = [r for r in self.roles if r not in ROLES]
        if bad or not self.roles:
            raise ValueError(f"roles must be a non-empty subset of {', '.join(ROLES)}; "
                             f"got {', '.join(self.roles) or 'none'}")
        if "worker" in self.roles and self.profile is None:
            raise ValueError("a worker needs a pricing profile (WorkerProfile)")
        for name in ("log_range", "action_threads", "train_slots", "eval_slots"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


EventSink = Callable[[str, dict[str, Any]], None]


class Node:
    """One account's daemon: store, delivery session, HTTP endpoint, roles, chain loop."""

    def __init__(self, key: NodeKey, market: Market, config: NodeConfig,
                 role_classes: Mapping[str, Callable[[Node], Role]], delivery: Any = None,
                 on_event: EventSink | None = None) -> None:
        """``role_classes`` maps role names to their implementations (``roles.ROLE_CLASSES``);
        the node builds the ones ``config.roles`` names."""
        from morphware.runtime.delivery.api import Delivery

        self.key = key
        self.market = market
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.name = config.name or key.address[:10]
        self.store = Store(self.data_dir / "node.db")
        self.index = ChainIndex(self.store)
        market.attach_index(self.index)
        if hasattr(market, "log_range"):
            market.log_range = config.log_range
        self._record_identity()
        self.delivery = delivery or Delivery(self.data_dir, private_key=key.private_key)
        self.http = NodeHttp(self.store, key.address)
        self.peers = PeerBook(config.peers_dir)
        host, port = self.delivery.address
        self.peers.announce(PeerInfo(address=key.address, torrent_host=host, torrent_port=port,
                                     http_url=self.http.url))
        self.tasks = TaskRunner(workers=4, name=self.name)  # prefetches must not starve training
        self.stop_event = threading.Event()
        self._sink = on_event
        self._thread: threading.Thread | None = None
        self._job_cache: dict[int, tuple[int, ChainJob]] = {}
        self._last_beat = float("-inf")
        self._last_tick: tuple[int, int, float] = (-1, -1, 0.0)  # head, tasks finished, time
        self._stats_at = 0.0
        self.actions = ThreadPoolExecutor(max_workers=config.action_threads,
                                          thread_name_prefix=f"{self.name}-act")
        missing = [r for r in config.roles if r not in role_classes]
        if missing:
            raise ValueError(f"no implementation given for role(s) {', '.join(missing)}")
        self.roles: dict[str, Role] = {r: role_classes[r](self) for r in config.roles}

    def _record_identity(self) -> None:
        """Who this node is and how to read its store's integers, for the API and dashboard
        (``runtime/api/views.py``): address, name, token decimals, metric fixed-point scale."""
        self.store.set_meta("address", self.key.address)
        self.store.set_meta("name", self.name)
        self.store.set_meta("token_decimals", str(int(self.market.decimals)))
        self.store.set_meta("metric_scale", str(int(self.market.metric_scale)))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Node:
        """Register where needed, then run the loop in a thread."""
        self.setup_roles()
        self._thread = threading.Thread(target=self.run, name=f"node-{self.name}", daemon=True)
        self._thread.start()
        return self

    def setup_roles(self) -> None:
        """Each role's one-time setup (e.g. registering on chain)."""
        from morphware.contracts.rpc import rpc_labels

        for name, role in self.roles.items():
            with rpc_labels(node=self.name, role=name, job="", phase="setup"):
                role.setup()

    def run(self) -> None:
        """The loop; returns when ``stop()`` is called."""
        last_error = ""
        while not self.stop_event.is_set():
            try:
                self.poll_once()
                self._beat()
                last_error = ""
            except Exception as e:  # the loop must survive any one bad step
                if repr(e) != last_error:  # log a persistent failure once, not every poll
                    log.exception("[%s] poll failed", self.name)
                last_error = repr(e)
            self.stop_event.wait(self.config.poll_interval)

    def _beat(self) -> None:
        """The store's heartbeat, at most once a second (``morphware submit`` checks it)."""
        now = time.monotonic()
        if now - self._last_beat >= HEARTBEAT_EVERY_S:
            self.store.beat(os.getpid(), self.config.roles, self.config.poll_interval)
            self._last_beat = now

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and background work, close the store and delivery (a clean 'kill')."""
        self.stop_event.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.tasks.shutdown(wait=False)
        self.actions.shutdown(wait=False, cancel_futures=True)
        self.http.close()
        try:
            self.save_rpc_stats()
            self.delivery.close()  # ends the downloads that background work may wait on
        finally:
            # Background work stops at its next step (it checks stop_event); the store it
            # writes to is closed only after that, or after ``timeout`` with a warning.
            if not self.tasks.wait_idle(timeout):
                log.warning("[%s] background work still running %.0f s after stop; closing "
                            "the store under it (a restart redoes that work)", self.name,
                            timeout)
            self.store.stop_beating()
            self.store.close()

    # -- one iteration ------------------------------------------------------------------------

    def poll_once(self) -> None:
        from morphware.contracts.rpc import rpc_labels

        with rpc_labels(node=self.name):
            self._poll()

    def _poll(self) -> None:
        from morphware.contracts.rpc import rpc_labels

        self._job_cache.clear()
        with rpc_labels(role="poll", job="", phase=""):
            head = self.market.head()
            self.read_events(head)
        now = time.monotonic()
        last_head, last_finished, last_at = self._last_tick
        if (head != last_head or self.tasks.finished != last_finished
                or now - last_at >= self.config.tick_interval):
            self._last_tick = (head, self.tasks.finished, now)
            for role in self.roles.values():
                role.tick()
        if now - self._stats_at >= 5.0:
            self.save_rpc_stats()
        log.debug("[%s] polled up to block %d", self.name, head)

    def read_events(self, head: int) -> None:
        """Hand the events of the blocks after the last processed one up to ``head`` to the roles
        and the index, ``log_range`` blocks per query; log progress when far behind."""
        start = self.store.last_block() + 1
        if start == 0:
            start = int(self.store.get_meta("start_block", "0") or 0)
        first, step = start, self.config.log_range
        if start > head:
            return  # no new block: no log query
        while start <= head and not self.stop_event.is_set():
            end = min(head, start + step - 1)
            events = self.market.events(start, end)
            for ev in events:
                for role in self.roles.values():
                    role.on_event(ev)
            self.index.record(events)
            self.store.set_last_block(end)
            if head - first >= 2 * step:  # catching up on a long history
                done = (end - first + 1) / (head - first + 1)
                log.info("[%s] catching up: block %d of %d (%.0f%%)", self.name, end, head,
                         100 * done)
            start = end + 1

    def save_rpc_stats(self) -> None:
        """This node's RPC call counts (by role, job, phase, method) into its store, for
        ``morphware status``, the dashboard and the benchmarks."""
        counter = getattr(self.market, "rpc", None)
        self._stats_at = time.monotonic()
        if counter is None:
            return
        snap = counter.snapshot()
        rows = [r for r in snap["calls"] if r["node"] == self.name]
        self.store.set_meta("rpc_stats", json.dumps({
            "calls": rows, "max_logs_range": snap["max_logs_range"],
            "open_logs_queries": snap["open_logs_queries"]}))

    # -- helpers for roles --------------------------------------------------------------------

    def chain_job(self, job_id: int) -> ChainJob:
        """The job as the chain has it, cached for the current poll."""
        if job_id not in self._job_cache:
            self._job_cache[job_id] = (0, self.market.job(job_id))
        return self._job_cache[job_id][1]

    def forget_job(self, job_id: int) -> None:
        self._job_cache.pop(job_id, None)

    def emit(self, kind: str, **data: Any) -> None:
        """A human-readable milestone: logged, and passed to the demo's sink."""
        log.info("[%s] %s %s", self.name, kind, self._readable(data))
        if self._sink is not None:
            self._sink(kind, {"node": self.name, "address": self.key.address, **data})

    def _readable(self, data: dict[str, Any]) -> str:
        """Facts for a log line: token amounts with the symbol, not base units."""
        sym = self.store.get_meta("token_symbol") or "MWT"
        return ", ".join(
            f"{k}={format_tokens(v, self.market.decimals, sym)}"
            if k in AMOUNT_FACTS and isinstance(v, int) and not isinstance(v, bool) else f"{k}={v}"
            for k, v in data.items())

    def act(self, what: str, job_id: int, fn: Callable[[], Any]) -> bool:
        """Send one transaction; a refusal is logged and reported as False (retry later)."""
        try:
            fn()
        except MarketError as e:
            log.debug("[%s] %s on job %d refused: %s", self.name, what, job_id, e)
            return False
        finally:
            self.forget_job(job_id)
        return True

    def publish(self, path: Path) -> Any:
        """Encrypt and seed one artifact (``Delivery.publish``)."""
        return self.delivery.publish(path)

    def fetch(self, magnet: str, content_hash: bytes, key: bytes | None = None, *,
              dest: Path | None = None) -> Path:
        """Fetch and verify one artifact from the peers in the peer book, and decrypt it when
        ``key`` is given (without: the ciphertext only, e.g. a prefetch during the auction).
        A stalled fetch raises the delivery's TorrentError; callers retry on a later tick."""
        cfg = self.config
        if key is None:
            return self.delivery.fetch_ciphertext(
                magnet, content_hash, peers=self.torrent_peers(),
                timeout=cfg.fetch_timeout, stall_timeout=cfg.stall_timeout)
        return self.delivery.fetch(magnet, content_hash, key, peers=self.torrent_peers(),
                                   timeout=cfg.fetch_timeout, stall_timeout=cfg.stall_timeout,
                                   dest=dest)

    def check_stopped(self) -> None:
        if self.stop_event.is_set():
            raise Stopped(f"node {self.name} is stopping")

    def peer_info(self, address: str) -> PeerInfo | None:
        return self.peers.get(address)

    def torrent_peers(self) -> list[tuple[str, int]]:
        return self.peers.torrent_peers(exclude=self.key.address)


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.1,
               stop: threading.Event | None = None) -> bool:
    """Poll ``pred`` until true or ``timeout``; every wait in the node is bounded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        if stop is not None and stop.is_set():
            return False
        time.sleep(interval)
    return pred()
