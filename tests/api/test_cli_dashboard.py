"""``morphware dashboard``: refuses bad data dirs, and serves the API over real HTTP."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from api_store import REQ_JOB, full_store, make_store
from morphware.runtime.cli import app
from morphware.runtime.node.store import SCHEMA_VERSION
from typer.testing import CliRunner

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_data_dir_exits_1_naming_it(tmp_path: Path) -> None:
    r = runner.invoke(app, ["dashboard", "--data-dir", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "nope does not exist" in r.output
    r = runner.invoke(app, ["dashboard", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1 and "no node state at" in r.output


def test_newer_schema_exits_1_naming_versions(tmp_path: Path) -> None:
    make_store(tmp_path).close()
    with sqlite3.connect(tmp_path / "node.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    r = runner.invoke(app, ["dashboard", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert f"schema version 99, this dashboard reads {SCHEMA_VERSION}" in r.output


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    full_store(tmp_path).close()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = runner.invoke(app, ["dashboard", "--data-dir", str(tmp_path), "--port", str(port)])
    assert r.exit_code == 1 and "could not serve" in r.output


def test_serves_api_and_dashboard_over_http(tmp_path: Path) -> None:
    full_store(tmp_path).close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "morphware.runtime.cli", "dashboard",
                             "--data-dir", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                jobs = httpx.get(f"{base}/api/jobs", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "dashboard did not start in 20 s"
                time.sleep(0.1)
        assert REQ_JOB in [j["job_id"] for j in jobs["jobs"]]
        assert 'id="loss-chart"' in httpx.get(f"{base}/dashboard/", timeout=2).text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"on http://127.0.0.1:{port}/" in out
