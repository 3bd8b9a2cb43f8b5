"""Delivery: encrypted artifacts moved between nodes over BitTorrent.

``Delivery`` (api.py) is what a node calls; crypto.py and torrent.py are its two halves. The
names below are loaded lazily so importing ``crypto`` alone does not start libtorrent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Delivery", "Published", "wrap_key"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from morphware.runtime.delivery import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
