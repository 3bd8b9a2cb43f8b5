"""Serving the API from inside another program (the daemon, the demo, tests): uvicorn in a
background thread, started and stopped with bounded waits.

``morphware dashboard`` runs uvicorn in the foreground instead; this is for a process whose main
thread is busy with something else, e.g.::

    with DashboardServer(node.store, port=8765) as srv:
        print("dashboard on", srv.url)
        node.run()
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

from morphware.runtime.node.store import Store

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class ServeError(RuntimeError):
    """The server could not start (port in use, bad address) in the time allowed."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (for tests and ``--port 0``-like choices)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class DashboardServer:
    """The node API and dashboard for ``source`` (a data dir or an open ``Store``) on
    ``host:port`` (port 0: a free one), served by uvicorn in a daemon thread."""

    def __init__(self, source: str | Path | Store, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        import uvicorn
        from morphware.runtime.api.app import create_app

        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(create_app(source), host=host, port=self.port,
                                log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="morphware-dashboard",
                                        daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn's answer to a failed bind: start() says
            self._server.run()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> DashboardServer:
        """Start serving; returns once it accepts connections, or raises ``ServeError``."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServeError(f"could not serve on {self.host}:{self.port} (port in use?)")
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"dashboard did not start on {self.url} in {timeout:.0f} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
