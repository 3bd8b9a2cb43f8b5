"""What the node records for the dashboard (identity, units, which validator revealed which
metric) and the commands that serve it: checked through the API against a real in-process
market (eth-tester, loopback torrents), not a hand-filled store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from morphware.contracts import METRIC_SCALE, anvil_accounts, anvil_bin, deploy, start_anvil
from morphware.runtime.api import create_app
from morphware.runtime.api.server import DashboardServer, free_port
from morphware.runtime.cli import app
from morphware.runtime.demo import Participant
from morphware.runtime.node.chain import ChainEvent
from morphware.runtime.node.keystore import create_keystore
from node_helpers import CAST, post, wait_phase
from typer.testing import CliRunner

pytestmark = [pytest.mark.chain, pytest.mark.integration]


def test_node_records_its_identity_and_units(local_market):
    req = local_market.add(Participant("requester", ("requester",)))
    api = TestClient(create_app(req.store))
    info = api.get("/api/node").json()
    assert info["address"] == req.key.address and info["name"] == "requester"
    assert req.store.get_meta("token_decimals") == str(req.market.decimals) == "18"
    assert req.store.get_meta("metric_scale") == str(METRIC_SCALE)


def test_metric_revealed_events_are_recorded_per_validator(local_market):
    req = local_market.add(Participant("requester", ("requester",)))
    role = req.roles["requester"]
    v1, v2 = "0x" + "11" * 20, "0x" + "22" * 20
    req.store.upsert_job(7, "requester", "validating", validators=[v1, v2])
    role.on_event(ChainEvent("MetricRevealed", 50, 7, {"validator": v2, "metric": 812_500}))
    role.on_event(ChainEvent("MetricRevealed", 51, 8, {"validator": v1, "metric": 1}))  # not ours
    assert req.store.job(7, "requester").facts["revealed_metrics"] == {v2: 812_500}
    m = TestClient(create_app(req.store)).get("/api/jobs/7/metrics").json()
    assert m["validators"] == [{"validator": v1, "metric": None},
                               {"validator": v2, "metric": 0.8125}]


def test_finished_job_api_reports_node_and_each_validators_metric(local_market, tmp_path):
    local_market.add_all([c for c in CAST if c.name != "worker-b"])
    job = post(local_market, tmp_path / "pkg")
    assert local_market.warp_past_bidding(job, 1, timeout=20)
    req = local_market.nodes["requester"]
    assert wait_phase(req, job, "requester", "done", 90), req.store.timeline(job)
    cj = req.market.job(job)
    own = {local_market.nodes[v].key.address.lower():
           local_market.nodes[v].store.job(job, "validator").facts["metric"]
           for v in ("validator-1", "validator-2", "validator-3")}
    with DashboardServer(req.store) as srv:  # the daemon's own open store, over real HTTP
        node = httpx.get(f"{srv.url}/api/node", timeout=5).json()
        metrics = httpx.get(f"{srv.url}/api/jobs/{job}/metrics", timeout=5).json()
    assert node["address"] == req.key.address and node["name"] == "requester"
    assert metrics["outcome"] == "accepted" and len(metrics["validators"]) == 3
    per = {v["validator"].lower(): v["metric"] for v in metrics["validators"]}
    assert sorted(per.values()) == sorted(m / METRIC_SCALE for m in cj.metrics)
    for addr, value in per.items():  # each validator's own value, to the fixed point
        assert value == pytest.approx(own[addr], abs=1.0 / METRIC_SCALE)


def test_demo_dashboard_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(app, ["demo", "-q", "--dashboard", "--dashboard-port", str(port),
                                     "--data-dir", str(tmp_path / "demo")])
    assert r.exit_code == 1, r.output
    assert f"127.0.0.1:{port}" in r.output and "port in use" in r.output


@pytest.mark.skipif(anvil_bin() is None, reason="anvil not installed (make setup)")
def test_node_command_serves_its_dashboard_and_refuses_a_busy_port(tmp_path):
    proc, url = start_anvil()
    daemon = None
    env = {**os.environ, "MORPHWARE_PASSWORD": "pw"}
    try:
        accts = anvil_accounts(3)
        from web3 import Web3

        dep = deploy(Web3(Web3.HTTPProvider(url)), accts[0], dev=True, min_window=10,
                     draw_delay=1).save(tmp_path / "deployment.json")
        ks = tmp_path / "k.json"
        create_keystore(ks, "pw", bytes(accts[1].key), scrypt_n=2**10)

        def node_cmd(port: int, data_dir: str) -> list[str]:
            return [sys.executable, "-m", "morphware.runtime.cli", "node", "--role", "requester",
                    "--rpc", url, "--deployment", str(dep), "--keystore", str(ks),
                    "--data-dir", str(tmp_path / data_dir), "--dashboard-port", str(port)]

        port = free_port()
        log = tmp_path / "node.log"
        with open(log, "w") as out:
            daemon = subprocess.Popen(node_cmd(port, "alice"), env=env, stdout=out,
                                      stderr=subprocess.STDOUT)
        info = None
        end = time.monotonic() + 90  # a loaded machine starts slowly
        while info is None and time.monotonic() < end:
            assert daemon.poll() is None, log.read_text()
            try:
                info = httpx.get(f"http://127.0.0.1:{port}/api/node", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.2)
        assert info is not None, log.read_text()
        assert info["address"] == accts[1].address and info["name"] == "alice"
        assert f"http://127.0.0.1:{port}/dashboard/" in log.read_text()
        busy = subprocess.run(node_cmd(port, "bob"), env=env, capture_output=True, text=True,
                              timeout=60)  # the same port again: refused, naming it
        assert busy.returncode == 1, busy.stdout + busy.stderr
        assert f"127.0.0.1:{port}" in busy.stderr and "port in use" in busy.stderr
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0, log.read_text()
        with pytest.raises(httpx.TransportError):  # stopped with the daemon
            httpx.get(f"http://127.0.0.1:{port}/api/node", timeout=1)
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        proc.terminate()
        proc.wait(timeout=10)
