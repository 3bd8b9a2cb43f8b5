"""How nodes find each other off chain, and the worker's live loss curve.

On a private or loopback network there is no DHT, so each node announces where its torrent
session listens and where its small HTTP endpoint is in a *peer book*: a directory with one JSON
file per node address (written atomically). Nodes of one demo, or of one devnet on one machine,
share the directory; on the public swarm the DHT replaces it.

Wrapped keys that are not for the chain (the test-set key for the drawn validators, the trained
model's key for the requester and the validators) sit in the sender's *mailbox*, served at
``GET /mailbox/<job_id>/<address>``. Each blob is ECIES-encrypted to the recipient's registered
public key, so serving it to anyone is safe; a swapped blob fails authenticated decryption.

Live progress is peer to peer: while training, a worker appends loss events to its own store and
serves them from its HTTP endpoint (``GET /progress/<job_id>?after=<step>``); the requester polls
the winner's endpoint. Nothing is pushed through the chain, and the final curve also travels in
the result artifact, so a requester that was offline during training still gets it.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from morphware.runtime.node.store import Store


@dataclass(frozen=True)
class PeerInfo:
    """Where a node can be reached: its torrent endpoint and its HTTP endpoint."""

    address: str
    torrent_host: str
    torrent_port: int
    http_url: str

    @property
    def torrent_peer(self) -> tuple[str, int]:
        return (self.torrent_host, self.torrent_port)


class PeerBook:
    """A directory of ``<address>.json`` announcements shared by the nodes of a network."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def announce(self, info: PeerInfo) -> None:
        tmp = self.root / f".{info.address}.tmp"
        tmp.write_text(json.dumps(asdict(info)))
        os.replace(tmp, self.root / f"{info.address.lower()}.json")

    def withdraw(self, address: str) -> None:
        (self.root / f"{address.lower()}.json").unlink(missing_ok=True)

    def get(self, address: str) -> PeerInfo | None:
        p = self.root / f"{address.lower()}.json"
        try:
            return PeerInfo(**json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError, TypeError):
            return None

    def all(self, exclude: str | None = None) -> list[PeerInfo]:
        out = []
        for p in sorted(self.root.glob("*.json")):
            if exclude and p.stem == exclude.lower():
                continue
            info = self.get(p.stem)
            if info is not None:
                out.append(info)
        return out

    def torrent_peers(self, exclude: str | None = None) -> list[tuple[str, int]]:
        return [i.torrent_peer for i in self.all(exclude)]


class _Handler(BaseHTTPRequestHandler):
    store: Store
    address: str

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urllib.parse.urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts == ["health"]:
            self._json(200, {"address": self.address})
            return
        if len(parts) == 2 and parts[0] == "progress" and parts[1].isdigit():
            q = urllib.parse.parse_qs(url.query)
            try:
                after = int(q.get("after", ["-1"])[0])
            except ValueError:
                self._json(400, {"error": "after must be an integer"})
                return
            self._json(200, {"job_id": int(parts[1]),
                             "events": self.store.progress(int(parts[1]), after)})
            return
        if len(parts) == 3 and parts[0] == "mailbox" and parts[1].isdigit():
            mail = self.store.mail(int(parts[1]), parts[2])
            self._json(200, {k: v.hex() for k, v in mail.items()})
            return
        self._json(404, {"error": f"no route {url.path}"})

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


class NodeHttp:
    """The node's small HTTP endpoint on loopback (or ``host``): health and training progress."""

    def __init__(self, store: Store, address: str, host: str = "127.0.0.1", port: int = 0):
        handler = type("Handler", (_Handler,), {"store": store, "address": address})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"http-{address[:8]}")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def fetch_progress(url: str, job_id: int, after: int = -1,
                   timeout: float = 2.0) -> list[dict[str, Any]]:
    """Loss events a worker has published since ``after``; [] when it is unreachable."""
    try:
        with urllib.request.urlopen(f"{url}/progress/{job_id}?after={after}",
                                    timeout=timeout) as r:
            return list(json.loads(r.read())["events"])
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return []


def fetch_mail(url: str, job_id: int, address: str, timeout: float = 2.0) -> dict[str, bytes]:
    """The wrapped keys a peer holds for ``address`` on a job; {} when unreachable or none."""
    try:
        with urllib.request.urlopen(f"{url}/mailbox/{job_id}/{address.lower()}",
                                    timeout=timeout) as r:
            return {k: bytes.fromhex(v) for k, v in json.loads(r.read()).items()}
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return {}
