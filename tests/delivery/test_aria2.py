"""Interoperability: aria2c, a BitTorrent client we did not write, downloads a published
artifact by its magnet from our seeder on loopback.

aria2 1.36 ignores ``x.pe`` peer hints and, with DHT/LPD off, has no way to find our seeder; so
aria2 listens and our seeder connects to it (``TorrentSession.connect``): once connected, aria2
fetches the metadata (BEP 9) and then the file over the same kind of connection.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from morphware.runtime.delivery import Delivery
from morphware.runtime.delivery.crypto import decrypt_file
from morphware.runtime.delivery.torrent import sha256_file

ARIA2C = shutil.which("aria2c")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
@pytest.mark.skipif(ARIA2C is None, reason="aria2c not installed (apt-get install aria2)")
def test_aria2c_fetches_by_magnet(tmp_path: Path, make_file) -> None:
    src = make_file(5 * (1 << 20), "model.onnx")
    port = _free_port()
    with Delivery(tmp_path / "seeder") as node:
        pubd = node.publish(src)
        infohash = node.torrents.seed(pubd.path).infohash
        out = tmp_path / "aria2"
        proc = subprocess.Popen(
            [ARIA2C, "--dir", str(out), "--enable-dht=false", "--enable-dht6=false",
             "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0",
             f"--listen-port={port}", "--bt-stop-timeout=20", "--summary-interval=0",
             "--console-log-level=warn", "--interface=127.0.0.1", pubd.magnet],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                # connect only while unconnected: duplicate connections make aria2 stall
                if node.torrents.stats(infohash).num_peers == 0:
                    node.torrents.connect(infohash, [("127.0.0.1", port)])
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
            log = proc.communicate(timeout=10)[0]
        assert proc.returncode == 0, log[-3000:]
    got = out / pubd.path.name
    assert sha256_file(got) == pubd.content_hash
    decrypt_file(got, tmp_path / "plain", pubd.key)
    assert (tmp_path / "plain").read_bytes() == src.read_bytes()
