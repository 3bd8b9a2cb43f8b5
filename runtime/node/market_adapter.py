"""``Market`` (the node's port) implemented with the contracts' typed ``MarketClient``.

It normalises what the roles read: the contract's phase plus the block clock become one
``Status`` (bidding / revealing / finalizable are one contract phase split by deadlines), the
closing outcome and median come from the ``JobClosed`` event, the drawn validators from
``ValidatorsDrawn``, and every contract refusal becomes a ``MarketError`` with the contract's own
reason.

Event facts come from the node's ``ChainIndex`` (fed by the daemon's poller), never from a scan
of the history: when a fact is not indexed yet (it was mined after the poller's last pass), the
adapter looks only at the blocks after the last indexed one, at most ``log_range`` of them. Every
JSON-RPC call is counted (``rpc``: per node, role, job and phase).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from morphware.runtime.node.chain import (
    DECLINED,
    OUTCOMES,
    ChainEvent,
    ChainJob,
    Market,
    MarketError,
    Status,
)
from morphware.runtime.node.index import ChainIndex

T = TypeVar("T")

CLOCK_MAX_AGE_S = 1.0
"""How long the latest block's timestamp read by ``head()`` serves ``now()``."""

REVEALED = (2).to_bytes(32, "big")
SLASHED = (3).to_bytes(32, "big")


def _refusals(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn the contract's ContractError (and lookups that fail) into MarketError."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> T:
        from morphware.contracts import ContractError

        try:
            return fn(*a, **kw)
        except ContractError as e:
            raise MarketError(str(e)) from e
        except LookupError as e:
            raise MarketError(str(e)) from e

    return wrapper


class ContractsMarket(Market):
    """One account's market over a ``morphware.contracts.MarketClient``."""

    def __init__(self, client: Any, index: ChainIndex | None = None) -> None:
        from morphware.contracts import METRIC_SCALE
        from morphware.contracts.rpc import count_rpc

        self.client = client
        self.w3 = client.w3
        self.address = client.address
        self.metric_scale = METRIC_SCALE
        self.rpc = count_rpc(client.w3)
        self.index = index
        self._pubkeys: dict[str, bytes] = {}
        self._clock: tuple[int, float, int] | None = None  # (timestamp, read at, block number)
        self._withdraw_lock = threading.Lock()

    def attach_index(self, index: ChainIndex) -> None:
        self.index = index

    @property
    def log_range(self) -> int:
        return int(self.client.log_range)

    @log_range.setter
    def log_range(self, blocks: int) -> None:
        if blocks < 1:
            raise ValueError(f"log_range must be at least 1 block, got {blocks}")
        self.client.log_range = int(blocks)

    # -- reading ------------------------------------------------------------------------------

    def head(self) -> int:
        """The latest block's number; its timestamp is kept for ``now()``, read only when the
        head moved (an idle poll costs one cheap call)."""
        number = int(self.w3.eth.block_number)
        if self._clock is None or self._clock[2] != number:
            block = self.w3.eth.get_block(number)
            self._clock = (int(block["timestamp"]), time.monotonic(), number)
        else:
            self._clock = (self._clock[0], time.monotonic(), number)
        return number

    def now(self) -> int:
        """The timestamp the next block (our next transaction) will roughly carry: at least one
        second after the latest block, and the wall clock unless the chain travelled ahead."""
        clock = self._clock
        if clock is None or time.monotonic() - clock[1] > CLOCK_MAX_AGE_S:
            self.head()
            clock = self._clock
        assert clock is not None
        return max(clock[0] + 1, int(time.time()))

    def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        out = []
        for e in self.client.events(from_block, to_block):
            args = dict(e.args)
            if e.name == "JobPosted":
                args["artifacts"] = "\n".join(args.get("artifacts", []))
            elif e.name == "TestKeysReleased":
                args["wrapped_keys"] = self._unpack(args.get("wrapped_keys", b""))
            out.append(ChainEvent(name=e.name, block=e.block_number, job_id=int(e.job or 0),
                                  args=args))
        return out

    @staticmethod
    def _unpack(blob: bytes) -> list[bytes]:
        """One wrapped test key per drawn validator; a malformed release gives nobody a key
        (the validators then report the test data unusable)."""
        from morphware.contracts.client import unpack_keys

        try:
            return unpack_keys(bytes(blob))
        except ValueError:
            return []

    @_refusals
    def job(self, job_id: int) -> ChainJob:
        from morphware.contracts import Phase

        s = self.client.job(job_id)
        if s.requester == "0x0000000000000000000000000000000000000000":
            raise MarketError(f"no job {job_id} on chain")
        now = self.now()
        reveal_end = s.deadline + s.reveal_window if s.phase == Phase.BIDDING else 0
        status = self._status(s, now, reveal_end)
        validators: tuple[str, ...] = ()
        outcome, median, metrics = "", 0, ()
        extra: dict[str, Any] = {"work_window": s.work_window, "key_window": s.key_window}
        if s.phase == Phase.BIDDING and s.n_bid_reveals:  # the lowest bid revealed so far
            extra["leader"], extra["leading_price"] = s.winner, s.price
        windows = (0, s.reveal_window, s.key_window, s.work_window, s.commit_window,
                   s.metric_reveal_window)
        if s.phase in (Phase.COMMIT, Phase.REVEAL, Phase.CLOSED):
            validators = self._validators(job_id)
        if s.phase == Phase.CLOSED:
            outcome, median = self._outcome(job_id)
            revealed = self.client.metrics(job_id)
            metrics = tuple(v for v in revealed if v != DECLINED)
            extra["declined"] = len(revealed) - len(metrics)
            extra["unrevealed"] = [v for v in validators
                                   if self.client.validator_slot(job_id, v)
                                   not in (REVEALED, SLASHED)]
        return ChainJob(
            job_id=job_id, requester=s.requester, status=status, deadline=s.deadline,
            reveal_end=reveal_end, max_price=s.max_price, validator_fee=s.validator_fee,
            bid_stake=s.bid_stake, n_validators=s.n_validators, threshold=s.threshold,
            n_bids=s.n_bids, n_bid_reveals=s.n_bid_reveals,
            winner=s.winner if s.phase != Phase.BIDDING else None, price=s.price,
            validators=validators, n_metric_commits=s.n_metric_commits,
            n_metric_reveals=s.n_metric_reveals, outcome=outcome, median=median,
            metrics=metrics, windows=windows, extra=extra)

    @staticmethod
    def _status(s: Any, now: int, reveal_end: int) -> Status:
        from morphware.contracts import Phase

        if s.phase == Phase.BIDDING:
            if now <= s.deadline:
                return Status.BIDDING
            if now > reveal_end or s.n_bids == s.n_bid_reveals:
                return Status.FINALIZABLE
            return Status.REVEALING
        if s.phase == Phase.COMMIT and now > s.deadline:
            return Status.REVEAL  # the next call syncs the contract into its reveal phase
        return {Phase.AWAITING_KEY: Status.AWAITING_KEY, Phase.WORKING: Status.WORKING,
                Phase.DRAWING: Status.DRAWING,
                Phase.COMMIT: Status.COMMIT, Phase.REVEAL: Status.REVEAL,
                Phase.CLOSED: Status.CLOSED}[s.phase]

    def _recent(self, name: str, job_id: int | None = None) -> list[Any]:
        """``name`` events mined after the last indexed block (at most ``log_range`` blocks back
        from the head): facts the poller has not reached yet."""
        head = self.client.block_number()  # under the chain lock: writes call this unlocked
        lo = self.index.last_block() + 1 if self.index is not None else 0
        lo = max(lo, head - self.log_range + 1)
        if lo > head:
            return []
        return self.client.events(lo, head, name=name, job=job_id)

    def _validators(self, job_id: int) -> tuple[str, ...]:
        found = self.index.validators(job_id) if self.index is not None else None
        if found is not None:
            return found
        recent = self._recent("ValidatorsDrawn", job_id)
        return tuple(recent[0].args["validators"]) if recent else ()

    def _outcome(self, job_id: int) -> tuple[str, int]:
        found = self.index.outcome(job_id) if self.index is not None else None
        if found is not None:
            return found
        recent = self._recent("JobClosed", job_id)
        if not recent:
            raise MarketError(f"job {job_id} is closed but its JobClosed event is not read yet")
        o = int(recent[0].args["outcome"])
        return OUTCOMES[o] if 0 <= o < len(OUTCOMES) else str(o), int(recent[0].args["median"])

    @_refusals
    def pubkey_of(self, address: str) -> bytes:
        key = address.lower()
        if key not in self._pubkeys:
            found = self.index.pubkey(key) if self.index is not None else None
            if found is None:
                recent = [e for e in self._recent("Registered")
                          if str(e.args["account"]).lower() == key]
                if not recent:
                    raise MarketError(f"{address} has no registered public key in the blocks "
                                      f"read so far")
                found = bytes(recent[-1].args["pubkey"])
            self._pubkeys[key] = found
        return self._pubkeys[key]

    def is_registered(self, address: str, role: str) -> bool:
        from morphware.contracts import Role

        flag = {"worker": Role.WORKER, "validator": Role.VALIDATOR}[role]
        return bool(self.client.account_info(address).roles & flag)

    def min_window(self) -> int:
        if not hasattr(self, "_min_window"):
            self._min_window = int(self.client.min_window())
        return self._min_window

    def balance(self, address: str | None = None) -> int:
        return int(self.client.token_balance(address))

    def owed(self, address: str | None = None) -> int:
        return int(self.client.balance(address))

    # -- acting -------------------------------------------------------------------------------

    @_refusals
    def fund(self, amount: int) -> None:
        """Dev chains: mint ``amount`` (in faucet-sized steps) and approve the market."""
        step = 10_000 * 10**self.decimals
        left = amount
        while left > 0:
            self.client.faucet(min(step, left))
            left -= step
        self.client.approve()

    @_refusals
    def register(self, role: str, stake: int, pubkey: bytes) -> None:
        from morphware.contracts import Role

        flag = {"worker": Role.WORKER, "validator": Role.VALIDATOR}[role]
        self.client.register(flag, stake, pubkey)

    @_refusals
    def post_job(self, *, manifest_hash: bytes, metric: str, threshold: int,
                 lower_is_better: bool, n_validators: int, max_price: int, validator_fee: int,
                 bid_stake: int, windows: tuple[int, int, int, int, int, int],
                 artifacts: str) -> int:
        from morphware.contracts import JobTerms

        terms = JobTerms(
            manifest_hash=manifest_hash, metric=metric, threshold=threshold,
            max_price=max_price, validator_fee=validator_fee, bid_stake=bid_stake,
            n_validators=n_validators, lower_is_better=lower_is_better,
            bid_window=windows[0], reveal_window=windows[1], key_window=windows[2],
            work_window=windows[3], commit_window=windows[4], metric_reveal_window=windows[5],
            artifacts=(artifacts,))
        return int(self.client.post_job(terms))

    @_refusals
    def commit_bid(self, job_id: int, price: int, salt: bytes) -> None:
        self.client.commit_bid(job_id, price, salt)

    @_refusals
    def reveal_bid(self, job_id: int, price: int, salt: bytes) -> None:
        self.client.reveal_bid(job_id, price, salt)

    @_refusals
    def finalize(self, job_id: int) -> None:
        self.client.finalize(job_id)

    @_refusals
    def release_key(self, job_id: int, wrapped: bytes) -> None:
        self.client.release_key(job_id, wrapped)

    @_refusals
    def release_test_keys(self, job_id: int, wrapped: dict[str, bytes]) -> None:
        drawn = list(self._validators(job_id))
        if not drawn:
            raise MarketError(f"job {job_id}: no validators drawn (in the blocks read so far)")
        try:
            self.client.release_test_keys(job_id, wrapped, drawn=drawn)
        except ValueError as e:  # not exactly the drawn validators
            raise MarketError(str(e)) from e

    @_refusals
    def submit_result(self, job_id: int, magnet: str, content_hash: bytes) -> None:
        self.client.submit_result(job_id, content_hash, magnet)

    @_refusals
    def reject_key(self, job_id: int) -> None:
        self.client.reject_key(job_id)

    @_refusals
    def draw(self, job_id: int) -> None:
        self.client.draw(job_id)

    @_refusals
    def commit_metric(self, job_id: int, metric: int, salt: bytes) -> None:
        self.client.commit_metric(job_id, metric, salt)

    @_refusals
    def reveal_metric(self, job_id: int, metric: int, salt: bytes) -> None:
        self.client.reveal_metric(job_id, metric, salt)

    @_refusals
    def advance(self, job_id: int) -> None:
        self.client.advance(job_id)

    @_refusals
    def settle(self, job_id: int) -> None:
        self.client.settle(job_id)

    @_refusals
    def slash_validator(self, job_id: int, validator: str) -> None:
        self.client.slash_validator(job_id, validator)

    @_refusals
    def withdraw(self) -> int:
        with self._withdraw_lock:  # two jobs' steps settling at once must not both withdraw
            amount = self.owed()
            if amount > 0:
                self.client.withdraw(amount)
            return amount
