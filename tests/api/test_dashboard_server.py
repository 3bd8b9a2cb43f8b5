"""``DashboardServer``: the API served from a thread of another program (daemon, demo)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from api_store import REQ_JOB, add_loss, full_store
from morphware.runtime.api.server import DashboardServer, ServeError


def test_serves_an_open_store_and_leaves_it_open(tmp_path: Path) -> None:
    store = full_store(tmp_path)
    with DashboardServer(store) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        r = httpx.get(f"{srv.url}/api/jobs/{REQ_JOB}/loss", params={"after": 39}, timeout=5)
        assert r.json()["events"] == []
        add_loss(store, REQ_JOB, 40, 2)  # the daemon keeps writing through the same Store
        r = httpx.get(f"{srv.url}/api/jobs/{REQ_JOB}/loss", params={"after": 39}, timeout=5)
        assert [e["step"] for e in r.json()["events"]] == [40, 41]
    assert len(store.progress(REQ_JOB)) == 42  # still open: the caller owns it
    store.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{srv.url}/api/node", timeout=1)


def test_port_in_use_raises(tmp_path: Path) -> None:
    full_store(tmp_path).close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError, match=f"could not serve on 127.0.0.1:{port}"):
            DashboardServer(tmp_path, port=port).start()
