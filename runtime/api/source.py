"""Opening a node's store for the API without ever changing it.

A node's data dir holds ``node.db`` (see ``morphware.runtime.node.store``). The API must never
create one where there is none, nor touch a database of another schema version: both would hide a
mistake (a wrong ``--data-dir``, an old binary) behind an empty dashboard. So the file and its
schema version are checked over a read-only SQLite connection before the ``Store`` is opened.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from morphware.runtime.node.store import SCHEMA_VERSION, Store

DB_NAME = "node.db"


class SourceError(RuntimeError):
    """The data dir cannot be served: missing, not a node's, or of another schema version."""


def db_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / DB_NAME


def check_data_dir(data_dir: str | Path) -> Path:
    """The path of the node's database, after checking it exists and has our schema version."""
    d = Path(data_dir)
    if not d.is_dir():
        raise SourceError(f"data dir {d} does not exist")
    path = db_path(d)
    if not path.is_file():
        raise SourceError(f"no node state at {path} (is {d} a node's --data-dir?)")
    version = _schema_version(path)
    if version is None:
        raise SourceError(f"{path} is not a Morphware node database (no schema version)")
    if version != SCHEMA_VERSION:
        raise SourceError(f"{path}: schema version {version}, this dashboard reads "
                          f"{SCHEMA_VERSION}; upgrade morphware or use a matching data dir")
    return path


def open_store(data_dir: str | Path) -> Store:
    """Open a checked node database with the node's own ``Store`` (read only by the API)."""
    return Store(check_data_dir(data_dir))


def _schema_version(path: Path) -> int | None:
    uri = f"file:{path.resolve()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as e:
        raise SourceError(f"cannot open {path}: {e}") from None
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as e:
        raise SourceError(f"{path} is not a Morphware node database ({e})") from None
    finally:
        db.close()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError:
        raise SourceError(f"{path}: unreadable schema version {row[0]!r}") from None
