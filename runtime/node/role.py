"""The base of the three roles (requester, worker, validator) and what they share.

A role records facts from chain events (``on_event``) and advances each of its jobs by a few
idempotent steps per tick (``step``). It reaches the chain only through ``node.market`` (the
``chain.Market`` port) and the rest of the runtime only through ``engine``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from morphware.contracts.rpc import current_labels, with_labels
from morphware.runtime.node.chain import ChainEvent, MarketError
from morphware.runtime.node.store import JobRow, Store

if TYPE_CHECKING:
    from morphware.runtime.node.daemon import Node

log = logging.getLogger("morphware.node")


class Role(ABC):
    """A role's handlers. ``on_event`` records facts; ``tick`` acts on every active job."""

    name: str = ""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.store = node.store
        self.market = node.market

    def setup(self) -> None:
        """Once at start (e.g. register on chain); nothing by default."""
        return None

    @abstractmethod
    def on_event(self, ev: ChainEvent) -> None: ...

    def tick(self) -> None:
        """Step every active job. With more than one action thread the jobs' steps run
        concurrently (each job's own steps stay sequential), so a transaction of one job never
        waits for another job's receipt."""
        jobs = self.store.jobs(self.name, active_only=True)
        if self.node.config.action_threads <= 1 or len(jobs) <= 1:
            for job in jobs:
                if self.node.stop_event.is_set():
                    return
                self._step_one(job)
            return
        futures = [self.node.actions.submit(with_labels(current_labels(), lambda j=job:
                                                        self._step_one(j))) for job in jobs]
        for fut in futures:
            fut.result()

    def _step_one(self, job: JobRow) -> None:
        from morphware.contracts.rpc import rpc_labels

        if self.node.stop_event.is_set():
            return
        with rpc_labels(role=self.name, job=job.job_id, phase=job.phase):
            try:
                self.step(job)
            except MarketError as e:
                log.debug("[%s] %s job %d: %s", self.node.name, self.name, job.job_id, e)
            except Exception:  # one job's bad step must not stop the others'
                log.exception("[%s] %s job %d: step failed", self.node.name, self.name,
                              job.job_id)

    @abstractmethod
    def step(self, job: JobRow) -> None:
        """Advance one job by at most a few idempotent actions."""

    def set_phase(self, job_id: int, phase: str, **facts: Any) -> JobRow:
        before = self.store.job(job_id, self.name)
        row = self.store.upsert_job(job_id, self.name, phase, **facts)
        if before is None or before.phase != phase:
            self.node.emit(f"{self.name}.{phase}", job=job_id, **_public(facts))
        return row

    def collect(self, job_id: int) -> int:
        """Withdraw everything the contract owes this account (withdrawals are per account,
        not per job: one may carry the credits of several jobs that settled together), and
        book it in the node's withdrawal ledger. A job's own share is recorded as a fact of
        that job ("earned", "spent") from its settlement, never from a withdrawal."""
        amount = self.market.withdraw()
        if amount > 0:
            self.store.add_withdrawal(amount, self.name, job_id)
        return amount

    def task_result(self, job_id: int, name: str) -> tuple[bool, Any, BaseException | None]:
        """(done, result, error) of a background task (not started: (False, None, None))."""
        fut = self.node.tasks.get(job_id, name)
        if fut is None or not fut.done():
            return False, None, None
        err = fut.exception()
        return True, (None if err else fut.result()), err


def _public(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts worth printing: never keys or salts, nor long blobs (metadata, magnets)."""
    return {k: v for k, v in facts.items() if "key" not in k and "salt" not in k
            and not (isinstance(v, str) and len(v) > 96)}


def record_result(store: Store, ev: ChainEvent) -> None:
    """Keep a result's magnet and hash (the magnet is event data only)."""
    store.set_meta(f"result_magnet:{ev.job_id}", str(ev.args.get("magnet", "")))
    store.set_meta(f"result_hash:{ev.job_id}", bytes(ev.args.get("result_hash", b"")).hex())
