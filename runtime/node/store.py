"""A node's persistent state: one SQLite file per node.

The chain is the source of truth for *what happened*; this database holds what the chain does not
(or only in event data): salts of sealed bids, symmetric keys of our artifacts, unwrapped keys we
received, local file paths, the phase each of our jobs is in, and the last block whose events we
processed. Every write is one short transaction, so a crash leaves either the old or the new
state, never half of one. Role handlers are written so that re-running any step after a crash is
harmless (they check the chain and this store before acting); see docs/node.md.

The connection is shared by the daemon's threads (the chain loop and background work such as
training), guarded by one lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id   INTEGER NOT NULL,
    role     TEXT NOT NULL,
    phase    TEXT NOT NULL,
    facts    TEXT NOT NULL DEFAULT '{}',
    created  REAL NOT NULL,
    updated  REAL NOT NULL,
    PRIMARY KEY (job_id, role)
);
CREATE TABLE IF NOT EXISTS timeline (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id   INTEGER NOT NULL,
    role     TEXT NOT NULL,
    phase    TEXT NOT NULL,
    at       REAL NOT NULL,
    note     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS bids (
    job_id    INTEGER PRIMARY KEY,
    price     TEXT NOT NULL,
    salt      TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0,
    revealed  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS artifacts (
    job_id       INTEGER NOT NULL,
    name         TEXT NOT NULL,
    magnet       TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL DEFAULT '',
    key          TEXT NOT NULL DEFAULT '',
    path         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, name)
);
CREATE TABLE IF NOT EXISTS submissions (
    local_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_path  TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'queued',
    job_id     INTEGER,
    facts      TEXT NOT NULL DEFAULT '{}',
    created    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox (
    job_id    INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    name      TEXT NOT NULL,
    blob      TEXT NOT NULL,
    PRIMARY KEY (job_id, recipient, name)
);
CREATE TABLE IF NOT EXISTS withdrawals (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    amount  TEXT NOT NULL,
    role    TEXT NOT NULL,
    job_id  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_index (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    block INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS progress (
    job_id  INTEGER NOT NULL,
    step    INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (job_id, step)
);
"""


class StoreError(RuntimeError):
    """The database is from an incompatible version or was asked for something absent."""


@dataclass(frozen=True)
class JobRow:
    """One job as one role of this node sees it."""

    job_id: int
    role: str
    phase: str
    facts: dict[str, Any]
    created: float
    updated: float


@dataclass(frozen=True)
class Bid:
    """Our sealed bid: the salt is stored *before* the commitment is sent, so a crash between
    the two can still reveal (or re-commit the same commitment)."""

    job_id: int
    price: int
    salt: bytes
    committed: bool
    revealed: bool


@dataclass(frozen=True)
class Artifact:
    """A file of a job: where it is on the swarm, its hash, its key (hex) and its local path."""

    job_id: int
    name: str
    magnet: str
    content_hash: str
    key: str
    path: str


class Store:
    """SQLite-backed state of one node. Thread-safe; every method is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._db.executescript(_SCHEMA)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version}, this node needs "
                             f"{SCHEMA_VERSION}; use a fresh --data-dir")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def beat(self, pid: int, roles: tuple[str, ...], poll_interval: float) -> None:
        """The daemon serving this store is alive (written after every poll): ``morphware
        submit`` refuses to queue work for a store nobody serves."""
        self.set_meta("heartbeat", json.dumps({"pid": pid, "at": time.time(),
                                               "roles": list(roles), "poll": poll_interval}))

    def stop_beating(self) -> None:
        """The daemon stopped cleanly: no one serves this store now."""
        self.set_meta("heartbeat", "")

    def heartbeat(self) -> dict[str, Any] | None:
        """The last heartbeat (pid, at, roles, poll), or None if no daemon has run or the last
        one stopped cleanly."""
        raw = self.get_meta("heartbeat")
        return json.loads(raw) if raw else None

    def delete_meta(self, *keys: str) -> None:
        with self._tx() as c:
            c.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in keys])

    def last_block(self) -> int:
        """The last block whose events were fully processed (-1: none yet)."""
        return int(self.get_meta("last_block", "-1") or -1)

    def set_last_block(self, block: int) -> None:
        self.set_meta("last_block", str(block))

    # -- jobs ---------------------------------------------------------------------------------

    def upsert_job(self, job_id: int, role: str, phase: str | None = None,
                   **facts: Any) -> JobRow:
        """Create the job for ``role`` (in ``phase`` or "new") or merge ``facts`` into it; a
        phase change is appended to the timeline."""
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT phase, facts FROM jobs WHERE job_id = ? AND role = ?",
                            (job_id, role)).fetchone()
            if row is None:
                new_phase = phase or "new"
                c.execute("INSERT INTO jobs(job_id, role, phase, facts, created, updated) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (job_id, role, new_phase, json.dumps(facts), now, now))
                c.execute("INSERT INTO timeline(job_id, role, phase, at) VALUES (?, ?, ?, ?)",
                          (job_id, role, new_phase, now))
            else:
                merged = {**json.loads(row[1]), **facts}
                new_phase = phase or row[0]
                c.execute("UPDATE jobs SET phase = ?, facts = ?, updated = ? "
                          "WHERE job_id = ? AND role = ?",
                          (new_phase, json.dumps(merged), now, job_id, role))
                if new_phase != row[0]:
                    c.execute("INSERT INTO timeline(job_id, role, phase, at) "
                              "VALUES (?, ?, ?, ?)", (job_id, role, new_phase, now))
        job = self.job(job_id, role)
        assert job is not None
        return job

    def job(self, job_id: int, role: str) -> JobRow | None:
        rows = self._query("SELECT job_id, role, phase, facts, created, updated FROM jobs "
                           "WHERE job_id = ? AND role = ?", (job_id, role))
        return _job_row(rows[0]) if rows else None

    def jobs(self, role: str | None = None, *, active_only: bool = False) -> list[JobRow]:
        sql = "SELECT job_id, role, phase, facts, created, updated FROM jobs"
        where, args = [], []
        if role is not None:
            where.append("role = ?")
            args.append(role)
        if active_only:
            where.append("phase NOT IN ('done', 'skipped', 'failed')")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_job_row(r) for r in self._query(sql + " ORDER BY job_id", tuple(args))]

    def tracks(self, job_id: int) -> bool:
        """Whether a role of this node holds ``job_id`` (and did not skip it)."""
        return bool(self._query("SELECT 1 FROM jobs WHERE job_id = ? AND phase != 'skipped' "
                                "LIMIT 1", (job_id,)))

    def timeline(self, job_id: int, role: str | None = None) -> list[tuple[str, str, float]]:
        """(role, phase, unix time) in the order phases were entered."""
        sql = "SELECT role, phase, at FROM timeline WHERE job_id = ?"
        args: tuple[Any, ...] = (job_id,)
        if role is not None:
            sql += " AND role = ?"
            args += (role,)
        return [(r, p, float(t)) for r, p, t in self._query(sql + " ORDER BY seq", args)]

    # -- bids ---------------------------------------------------------------------------------

    def save_bid(self, job_id: int, price: int, salt: bytes) -> Bid:
        """Persist price and salt before the commitment is sent; an existing bid is kept (so a
        retried commit sends the very same commitment)."""
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO bids(job_id, price, salt) VALUES (?, ?, ?)",
                      (job_id, str(price), salt.hex()))
        bid = self.bid(job_id)
        assert bid is not None
        return bid

    def mark_bid(self, job_id: int, *, committed: bool | None = None,
                 revealed: bool | None = None) -> None:
        with self._tx() as c:
            if committed is not None:
                c.execute("UPDATE bids SET committed = ? WHERE job_id = ?",
                          (int(committed), job_id))
            if revealed is not None:
                c.execute("UPDATE bids SET revealed = ? WHERE job_id = ?",
                          (int(revealed), job_id))

    def bid(self, job_id: int) -> Bid | None:
        rows = self._query("SELECT job_id, price, salt, committed, revealed FROM bids "
                           "WHERE job_id = ?", (job_id,))
        if not rows:
            return None
        j, p, s, c, r = rows[0]
        return Bid(job_id=j, price=int(p), salt=bytes.fromhex(s), committed=bool(c),
                   revealed=bool(r))

    # -- artifacts ----------------------------------------------------------------------------

    def put_artifact(self, job_id: int, name: str, **fields: str) -> Artifact:
        """Create or update one artifact's fields (magnet, content_hash, key, path)."""
        allowed = {"magnet", "content_hash", "key", "path"}
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"unknown artifact field(s) {sorted(bad)}")
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO artifacts(job_id, name) VALUES (?, ?)",
                      (job_id, name))
            for k, v in fields.items():
                c.execute(f"UPDATE artifacts SET {k} = ? WHERE job_id = ? AND name = ?",
                          (v, job_id, name))
        art = self.artifact(job_id, name)
        assert art is not None
        return art

    def artifact(self, job_id: int, name: str) -> Artifact | None:
        rows = self._query("SELECT job_id, name, magnet, content_hash, key, path FROM artifacts "
                           "WHERE job_id = ? AND name = ?", (job_id, name))
        return Artifact(*rows[0]) if rows else None

    def artifacts(self, job_id: int) -> list[Artifact]:
        rows = self._query("SELECT job_id, name, magnet, content_hash, key, path FROM artifacts "
                           "WHERE job_id = ? ORDER BY name", (job_id,))
        return [Artifact(*r) for r in rows]

    # -- submissions (requester): queued by `morphware submit`, posted by the daemon ----------

    def add_submission(self, spec_path: str | Path, state: str = "queued") -> int:
        with self._tx() as c:
            cur = c.execute("INSERT INTO submissions(spec_path, state, created) "
                            "VALUES (?, ?, ?)", (str(spec_path), state, time.time()))
            return int(cur.lastrowid or 0)

    def update_submission(self, local_id: int, *, state: str | None = None,
                          job_id: int | None = None, **facts: Any) -> Submission:
        """Merge facts, set state and job id. A cancelled submission keeps its state: the
        daemon reads the returned state before posting, so a cancel always wins the race."""
        with self._tx() as c:
            row = c.execute("SELECT facts, state FROM submissions WHERE local_id = ?",
                            (local_id,)).fetchone()
            if row is None:
                raise StoreError(f"no submission {local_id}")
            merged = {**json.loads(row[0]), **facts}
            c.execute("UPDATE submissions SET facts = ? WHERE local_id = ?",
                      (json.dumps(merged), local_id))
            if state is not None and row[1] != "cancelled":
                c.execute("UPDATE submissions SET state = ? WHERE local_id = ?",
                          (state, local_id))
            if job_id is not None:
                c.execute("UPDATE submissions SET job_id = ? WHERE local_id = ?",
                          (job_id, local_id))
        sub = self.submission(local_id)
        assert sub is not None
        return sub

    def cancel_submission(self, local_id: int) -> bool:
        """Withdraw a submission the daemon has not started posting (queued or prepared);
        False if it is unknown, already posting/posted, failed or cancelled."""
        with self._tx() as c:
            cur = c.execute("UPDATE submissions SET state = 'cancelled' WHERE local_id = ? "
                            "AND job_id IS NULL AND state IN ('queued', 'prepared')",
                            (local_id,))
            return cur.rowcount == 1

    def submission(self, local_id: int) -> Submission | None:
        rows = self._query("SELECT local_id, spec_path, state, job_id, facts, created "
                           "FROM submissions WHERE local_id = ?", (local_id,))
        return _submission(rows[0]) if rows else None

    def submissions(self, pending_only: bool = False) -> list[Submission]:
        sql = ("SELECT local_id, spec_path, state, job_id, facts, created FROM submissions")
        if pending_only:
            sql += " WHERE job_id IS NULL AND state NOT IN ('failed', 'cancelled')"
        return [_submission(r) for r in self._query(sql + " ORDER BY local_id")]

    # -- mailbox: wrapped keys this node serves to named recipients ---------------------------

    def put_mail(self, job_id: int, recipient: str, name: str, blob: bytes) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO mailbox(job_id, recipient, name, blob) "
                      "VALUES (?, ?, ?, ?)", (job_id, recipient.lower(), name, blob.hex()))

    def mail(self, job_id: int, recipient: str) -> dict[str, bytes]:
        rows = self._query("SELECT name, blob FROM mailbox WHERE job_id = ? AND recipient = ?",
                           (job_id, recipient.lower()))
        return {n: bytes.fromhex(b) for n, b in rows}

    # -- withdrawals: the account's payouts, in the order they happened -----------------------

    def add_withdrawal(self, amount: int, role: str, job_id: int) -> None:
        """One withdrawal of ``amount`` base units, made while ``role`` finished ``job_id``
        (it may carry credits of other jobs too)."""
        with self._tx() as c:
            c.execute("INSERT INTO withdrawals(at, amount, role, job_id) VALUES (?, ?, ?, ?)",
                      (time.time(), str(int(amount)), role, job_id))

    def withdrawals(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT at, amount, role, job_id FROM withdrawals ORDER BY seq")
        return [{"at": float(a), "amount": int(m), "role": r, "job_id": int(j)}
                for a, m, r, j in rows]
    # -- chain index: facts from market events that lookups need (runtime/node/index.py) ------

    def put_index(self, entries: list[tuple[str, str, str, int]]) -> None:
        """Record (kind, key, JSON value, block) facts in one transaction; a fact from a later
        block replaces an earlier one (e.g. a re-registration's new public key)."""
        with self._tx() as c:
            c.executemany("INSERT INTO chain_index(kind, key, value, block) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value, "
                          "block = excluded.block WHERE excluded.block >= chain_index.block",
                          entries)

    def get_index(self, kind: str, key: str) -> Any:
        """The JSON value of one indexed fact, or None."""
        rows = self._query("SELECT value FROM chain_index WHERE kind = ? AND key = ?",
                           (kind, key))
        return json.loads(rows[0][0]) if rows else None

    def count_index(self, kind: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM chain_index", ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)
        return int(self._query(sql, args)[0][0])

    # -- training progress (loss curve) -------------------------------------------------------

    def add_progress(self, job_id: int, step: int, payload: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO progress(job_id, step, payload) VALUES (?, ?, ?)",
                      (job_id, step, json.dumps(payload)))

    def add_progress_many(self, job_id: int, events: list[dict[str, Any]]) -> None:
        """Several progress events (each with a "step") in one transaction."""
        with self._tx() as c:
            c.executemany("INSERT OR REPLACE INTO progress(job_id, step, payload) "
                          "VALUES (?, ?, ?)",
                          [(job_id, int(e["step"]), json.dumps(e)) for e in events])

    def progress(self, job_id: int, after: int = -1) -> list[dict[str, Any]]:
        rows = self._query("SELECT payload FROM progress WHERE job_id = ? AND step > ? "
                           "ORDER BY step", (job_id, after))
        return [json.loads(r[0]) for r in rows]


@dataclass(frozen=True)
class Submission:
    """A job queued on this node by `morphware submit`, before and after it is on chain."""

    local_id: int
    spec_path: str
    state: str
    job_id: int | None
    facts: dict[str, Any]
    created: float


def _submission(r: tuple[Any, ...]) -> Submission:
    return Submission(local_id=int(r[0]), spec_path=r[1], state=r[2],
                      job_id=None if r[3] is None else int(r[3]), facts=json.loads(r[4]),
                      created=float(r[5]))


def _job_row(r: tuple[Any, ...]) -> JobRow:
    return JobRow(job_id=int(r[0]), role=r[1], phase=r[2], facts=json.loads(r[3]),
                  created=float(r[4]), updated=float(r[5]))
