"""The node's view of the market contract: the few calls and facts its roles need.

Roles never talk to web3 directly; they use ``Market`` (this module's port), which the
``morphware.contracts`` client implements through ``ContractsMarket`` (market_adapter.py). Keeping
the port small and typed means the role logic reads as the protocol (post, bid, reveal, finalize,
release, result, metric, settle, withdraw) and that amounts, deadlines and statuses arrive already
normalised: amounts in token base units, times as chain timestamps (seconds), addresses
checksummed.

Several in-process nodes may share one embedded chain (the demo); ``Locked`` serialises their
reads with one lock, because eth-tester is not thread-safe. Transactions take that lock only to
send (``contracts.tx.send``), not while they wait for their block: the embedded chain batches
what is sent in one block period into one block.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """A job's state as the chain has it, with the reveal sub-window of bidding made explicit."""

    BIDDING = "bidding"          # commitments accepted until ``deadline``
    REVEALING = "revealing"      # reveals accepted until ``reveal_end``
    FINALIZABLE = "finalizable"  # reveal window over (or all revealed), nobody finalized yet
    AWAITING_KEY = "awaiting_key"  # winner chosen; the requester must release the key
    WORKING = "working"          # key released; the result is due by ``deadline``
    DRAWING = "drawing"          # result in; validators drawn once block ``deadline`` is mined
    COMMIT = "commit"            # result in; drawn validators commit their metric
    REVEAL = "reveal"            # validators reveal; the last reveal settles
    CLOSED = "closed"            # finished; see ``outcome``


OUTCOMES = ("", "no_bids", "key_timeout", "work_timeout", "accepted", "rejected", "no_verdict",
            "data_fault", "key_rejected")

MODEL_UNUSABLE = 2**64 - 1
"""Verdict: the trained model could not be fetched or decrypted (the worker's fault)."""
DATA_UNUSABLE = 2**64 - 2
"""Verdict: the test data could not be fetched or decrypted (the requester's fault)."""
DECLINED = 2**64 - 3
"""Not a verdict: this validator cannot evaluate in time and says so (no fee, not slashed, left
out of the median)."""
MAX_METRIC = 2**64 - 4
"""The largest metric a verdict carries; larger values are reported as this."""


@dataclass(frozen=True)
class ChainEvent:
    """One log of the market contract, decoded."""

    name: str
    block: int
    job_id: int
    args: dict[str, Any]


@dataclass(frozen=True)
class ChainJob:
    """Everything the roles read about one job; amounts in base units, times in chain seconds.
    ``deadline`` is the current phase's (while DRAWING: the block number whose hash seeds the
    draw); ``outcome`` is set once the job is CLOSED. ``windows`` = (bid, reveal, key, work,
    verdict commit, verdict reveal) seconds."""

    job_id: int
    requester: str
    status: Status
    deadline: int
    reveal_end: int
    max_price: int
    validator_fee: int
    bid_stake: int
    n_validators: int
    threshold: int
    n_bids: int = 0
    n_bid_reveals: int = 0
    winner: str | None = None
    price: int = 0
    validators: tuple[str, ...] = ()
    n_metric_commits: int = 0
    n_metric_reveals: int = 0
    outcome: str = ""
    median: int = 0
    metrics: tuple[int, ...] = ()
    """The revealed verdicts that count (each paid the fee); DECLINED reveals are left out and
    counted in ``extra["declined"]``."""
    windows: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "accepted"


class MarketError(RuntimeError):
    """A market call that the chain refused; the message carries the contract's reason."""


class Market(ABC):
    """The market as one node (one account) sees and drives it."""

    address: str
    decimals: int = 18
    metric_scale: int = 10**6
    rpc: Any = None
    """The adapter's JSON-RPC call counter (``contracts.rpc.RpcCounter``), if it counts."""

    def attach_index(self, index: Any) -> None:
        """Answer event lookups from the node's ``ChainIndex`` (adapters that need one)."""
        return None

    def to_fixed(self, value: float) -> int:
        """A metric value as the market stores it (``metric_scale`` fixed point, >= 0). A value
        too large to store (an exploding loss, infinity) is reported as ``MAX_METRIC``, never as
        one of the sentinel verdicts above it."""
        if not value >= 0:  # negative or NaN
            raise ValueError(f"metrics must be non-negative numbers, got {value}")
        fixed = value * self.metric_scale
        return MAX_METRIC if fixed >= MAX_METRIC else min(round(fixed), MAX_METRIC)

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def head(self) -> int:
        """The latest block number."""

    @abstractmethod
    def now(self) -> int:
        """The latest block's timestamp: the clock every deadline is measured on."""

    @abstractmethod
    def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        """Market events in [from_block, to_block], in chain order."""

    @abstractmethod
    def job(self, job_id: int) -> ChainJob: ...

    @abstractmethod
    def pubkey_of(self, address: str) -> bytes:
        """The 64-byte encryption key ``address`` registered."""

    @abstractmethod
    def is_registered(self, address: str, role: str) -> bool: ...

    @abstractmethod
    def min_window(self) -> int:
        """The shortest window (seconds) the market lets any job phase have."""

    @abstractmethod
    def balance(self, address: str | None = None) -> int:
        """Token balance (wallet) of ``address`` (default: this node)."""

    @abstractmethod
    def owed(self, address: str | None = None) -> int:
        """What the market holds for ``address`` to withdraw."""

    # -- acting -------------------------------------------------------------------------------
    def fund(self, amount: int) -> None:
        """Dev chains only: mint tokens to this account and approve the market."""
        raise MarketError("this market has no faucet")

    @abstractmethod
    def register(self, role: str, stake: int, pubkey: bytes) -> None: ...

    @abstractmethod
    def post_job(self, *, manifest_hash: bytes, metric: str, threshold: int,
                 lower_is_better: bool, n_validators: int, max_price: int, validator_fee: int,
                 bid_stake: int, windows: tuple[int, int, int, int, int, int],
                 artifacts: str) -> int:
        """Escrow and post; ``windows`` = (bid, reveal, key, work, metric commit, metric
        reveal) seconds; returns the job id."""

    @abstractmethod
    def commit_bid(self, job_id: int, price: int, salt: bytes) -> None: ...

    @abstractmethod
    def reveal_bid(self, job_id: int, price: int, salt: bytes) -> None: ...

    @abstractmethod
    def finalize(self, job_id: int) -> None: ...

    @abstractmethod
    def release_key(self, job_id: int, wrapped: bytes) -> None: ...

    @abstractmethod
    def release_test_keys(self, job_id: int, wrapped: dict[str, bytes]) -> None:
        """One wrapped test-set key per drawn validator ({address: blob}), in one call."""

    @abstractmethod
    def submit_result(self, job_id: int, magnet: str, content_hash: bytes) -> None: ...

    @abstractmethod
    def reject_key(self, job_id: int) -> None:
        """Winner: the data key does not open the data (the job ends neutrally)."""

    @abstractmethod
    def draw(self, job_id: int) -> None:
        """Anyone: draw a DRAWING job's validators once its seed block is mined."""

    @abstractmethod
    def commit_metric(self, job_id: int, metric: int, salt: bytes) -> None: ...

    @abstractmethod
    def reveal_metric(self, job_id: int, metric: int, salt: bytes) -> None: ...

    @abstractmethod
    def advance(self, job_id: int) -> None:
        """Apply an expired deadline (time-out the worker, close validation...)."""

    @abstractmethod
    def settle(self, job_id: int) -> None: ...

    @abstractmethod
    def slash_validator(self, job_id: int, validator: str) -> None: ...

    @abstractmethod
    def withdraw(self) -> int:
        """Withdraw everything owed; returns the amount (0: nothing owed, no transaction)."""


class Locked(Market):
    """A Market whose reads hold ``lock``: in-process nodes sharing one eth-tester. Writes
    lock inside (``contracts.tx.send``) only to send: holding the lock while a transaction
    waits for its block would keep the block producer, and so every other node, out."""

    def __init__(self, inner: Market, lock: threading.RLock) -> None:
        self._inner = inner
        self._lock = lock
        self.address = inner.address
        self.decimals = inner.decimals
        self.metric_scale = inner.metric_scale
        self.rpc = inner.rpc

    def attach_index(self, index: Any) -> None:
        self._inner.attach_index(index)

    def _call(self, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        with self._lock:
            return fn(*a, **kw)

    @staticmethod
    def _send(fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        return fn(*a, **kw)

    def head(self) -> int:
        return self._call(self._inner.head)

    def now(self) -> int:
        return self._call(self._inner.now)

    def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        return self._call(self._inner.events, from_block, to_block)

    def job(self, job_id: int) -> ChainJob:
        return self._call(self._inner.job, job_id)

    def pubkey_of(self, address: str) -> bytes:
        return self._call(self._inner.pubkey_of, address)

    def is_registered(self, address: str, role: str) -> bool:
        return self._call(self._inner.is_registered, address, role)

    def min_window(self) -> int:
        return self._call(self._inner.min_window)

    def balance(self, address: str | None = None) -> int:
        return self._call(self._inner.balance, address)

    def owed(self, address: str | None = None) -> int:
        return self._call(self._inner.owed, address)

    def fund(self, amount: int) -> None:
        self._send(self._inner.fund, amount)

    def register(self, role: str, stake: int, pubkey: bytes) -> None:
        self._send(self._inner.register, role, stake, pubkey)

    def post_job(self, **kw: Any) -> int:
        return self._send(self._inner.post_job, **kw)

    def commit_bid(self, job_id: int, price: int, salt: bytes) -> None:
        self._send(self._inner.commit_bid, job_id, price, salt)

    def reveal_bid(self, job_id: int, price: int, salt: bytes) -> None:
        self._send(self._inner.reveal_bid, job_id, price, salt)

    def finalize(self, job_id: int) -> None:
        self._send(self._inner.finalize, job_id)

    def release_key(self, job_id: int, wrapped: bytes) -> None:
        self._send(self._inner.release_key, job_id, wrapped)

    def release_test_keys(self, job_id: int, wrapped: dict[str, bytes]) -> None:
        self._send(self._inner.release_test_keys, job_id, wrapped)

    def slash_validator(self, job_id: int, validator: str) -> None:
        self._send(self._inner.slash_validator, job_id, validator)

    def submit_result(self, job_id: int, magnet: str, content_hash: bytes) -> None:
        self._send(self._inner.submit_result, job_id, magnet, content_hash)

    def reject_key(self, job_id: int) -> None:
        self._send(self._inner.reject_key, job_id)

    def draw(self, job_id: int) -> None:
        self._send(self._inner.draw, job_id)

    def commit_metric(self, job_id: int, metric: int, salt: bytes) -> None:
        self._send(self._inner.commit_metric, job_id, metric, salt)

    def reveal_metric(self, job_id: int, metric: int, salt: bytes) -> None:
        self._send(self._inner.reveal_metric, job_id, metric, salt)

    def advance(self, job_id: int) -> None:
        self._send(self._inner.advance, job_id)

    def settle(self, job_id: int) -> None:
        self._send(self._inner.settle, job_id)

    def withdraw(self) -> int:
        return self._send(self._inner.withdraw)
