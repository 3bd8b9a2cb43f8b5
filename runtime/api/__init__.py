"""The node's HTTP API (FastAPI) that the dashboard uses: a read-only view of one node's store.

``create_app(data_dir_or_store)`` builds the app; ``morphware dashboard --data-dir DIR`` serves it.
See docs/dashboard.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(source: Any) -> FastAPI:
    """Build the API for a node's data dir (or an open ``Store``); imports FastAPI lazily."""
    from morphware.runtime.api.app import create_app as _create

    return _create(source)
