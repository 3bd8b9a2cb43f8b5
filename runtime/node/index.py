"""A node's index of the market events its lookups need, built once as its poller reads them.

Without it, every lookup (who was drawn for job 7? how did it close? which public key did this
validator register?) would query the chain's logs from the deployment block: a cost that grows
with the chain's age times the number of jobs, and a query public RPC providers refuse once the
range is long. Instead the daemon hands every batch of events it reads (the same pass the roles
see, in bounded block ranges) to ``record``, and lookups read SQLite.

What is kept:

- ``pubkey``: the encryption key of every account that ``Registered`` (small, and any account
  may become a winner or a validator we must wrap keys for); the latest registration wins;
- for jobs this node tracks (a role of it holds the job and did not skip it): ``drawn``
  (validators in draw order), ``closed`` (outcome and median), ``test_keys`` (the blobs the
  requester released, in draw order).

Events of jobs nobody here tracks are not kept: a worker that skipped a job, or a validator
not drawn for it, carries nothing of it forward.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from morphware.runtime.node.chain import OUTCOMES, ChainEvent
from morphware.runtime.node.store import Store

JOB_FACTS = {"ValidatorsDrawn": "drawn", "JobClosed": "closed", "TestKeysReleased": "test_keys"}


class ChainIndex:
    """Lookups over the events this node has read, persisted in its store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def last_block(self) -> int:
        """The last block whose events are indexed (-1: none yet)."""
        return self.store.last_block()

    def record(self, events: Iterable[ChainEvent]) -> int:
        """Index the facts lookups need from ``events`` (one transaction); returns how many."""
        entries: list[tuple[str, str, str, int]] = []
        for ev in events:
            fact = self._fact(ev)
            if fact is not None:
                entries.append((*fact, ev.block))
        if entries:
            self.store.put_index(entries)
        return len(entries)

    def _fact(self, ev: ChainEvent) -> tuple[str, str, str] | None:
        if ev.name == "Registered":
            account = str(ev.args.get("account", "")).lower()
            return "pubkey", account, json.dumps(bytes(ev.args.get("pubkey", b"")).hex())
        kind = JOB_FACTS.get(ev.name)
        if kind is None or not self.store.tracks(ev.job_id):
            return None
        if kind == "drawn":
            value: object = [str(v) for v in ev.args.get("validators", [])]
        elif kind == "closed":
            o = int(ev.args.get("outcome", 0))
            value = [OUTCOMES[o] if 0 <= o < len(OUTCOMES) else str(o),
                     int(ev.args.get("median", 0))]
        else:
            value = [bytes(b).hex() for b in ev.args.get("wrapped_keys", [])]
        return kind, str(ev.job_id), json.dumps(value)

    # -- lookups ------------------------------------------------------------------------------

    def validators(self, job_id: int) -> tuple[str, ...] | None:
        """The validators drawn for ``job_id`` in draw order (None: no draw indexed)."""
        v = self.store.get_index("drawn", str(job_id))
        return None if v is None else tuple(v)

    def outcome(self, job_id: int) -> tuple[str, int] | None:
        """(outcome, median) of a closed job (None: no close indexed)."""
        v = self.store.get_index("closed", str(job_id))
        return None if v is None else (str(v[0]), int(v[1]))

    def test_keys(self, job_id: int) -> list[bytes] | None:
        v = self.store.get_index("test_keys", str(job_id))
        return None if v is None else [bytes.fromhex(b) for b in v]

    def pubkey(self, address: str) -> bytes | None:
        v = self.store.get_index("pubkey", address.lower())
        return None if v is None else bytes.fromhex(v)
