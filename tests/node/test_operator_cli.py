"""Operator mistakes end in one paragraph naming the problem and the fix, exit status 1, no
traceback (``morphware --debug`` adds it); the chain-facing ones run against anvil. Also: the
devnet's teardown, `devnet fund`, `submit`'s daemon check and `cancel`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from morphware.contracts import anvil_accounts, anvil_bin, deploy, start_anvil
from morphware.contracts.chain import port_in_use
from morphware.runtime.cli import app
from morphware.runtime.demo import EXAMPLE_JOB
from morphware.runtime.node.keystore import create_keystore
from morphware.runtime.node.store import Store
from typer.testing import CliRunner

runner = CliRunner()
PASSWORD = "operator-test"
needs_anvil = pytest.mark.skipif(anvil_bin() is None, reason="anvil not installed (make setup)")


def _refused(args: list[str], *needles: str) -> str:
    """Run the CLI; it must fail with status 1, one 'error:' paragraph holding every needle,
    and no traceback."""
    r = runner.invoke(app, args)
    out = r.output
    assert r.exit_code == 1, out
    assert "Traceback" not in out and not isinstance(r.exception, (AssertionError, KeyError))
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, out
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def key(tmp_path, monkeypatch):
    monkeypatch.setenv("MORPHWARE_PASSWORD", PASSWORD)
    path = tmp_path / "node.json"
    create_keystore(path, PASSWORD, scrypt_n=2**10)
    return path


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """anvil with the market deployed (minimum stake 10 tokens); (url, deployment file)."""
    if anvil_bin() is None:
        pytest.skip("anvil not installed (make setup)")
    from web3 import Web3

    proc, url = start_anvil()
    try:
        dep = deploy(Web3(Web3.HTTPProvider(url)), anvil_accounts(1)[0], dev=True,
                     min_stake=10 * 10**18, min_window=10, draw_delay=1)
        yield url, dep.save(tmp_path_factory.mktemp("chain") / "deployment.json")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _node(key: Path, url: str, dep: Path, data: Path, *extra: str) -> list[str]:
    return ["node", "--role", "worker", "--rpc", url, "--deployment", str(dep),
            "--keystore", str(key), "--data-dir", str(data), *extra]


def test_wrong_password_is_one_paragraph_and_debug_shows_the_traceback(key, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("MORPHWARE_PASSWORD", "not it")
    args = _node(key, "http://127.0.0.1:9", tmp_path / "d.json", tmp_path / "w")
    _refused(args, "wrong password", "MORPHWARE_PASSWORD")
    r = runner.invoke(app, ["--debug", *args])
    assert r.exit_code == 1 and "Traceback" in r.output and "wrong password" in r.output


def test_rpc_with_nothing_listening(key, tmp_path):
    from morphware.contracts import Deployment

    Deployment(chain_id=31337, token="0x" + "11" * 20, market="0x" + "22" * 20, token_abi=[],
               market_abi=[], deployer="0x" + "33" * 20, block=0).save(tmp_path / "d.json")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _refused(_node(key, f"http://127.0.0.1:{port}", tmp_path / "d.json", tmp_path / "w"),
             f"cannot reach the chain at http://127.0.0.1:{port}", "morphware devnet")
    _refused(_node(key, f"http://127.0.0.1:{port}", tmp_path / "none.json", tmp_path / "w"),
             "no deployment file", "--deployment")
    assert not (tmp_path / "w").exists()


@needs_anvil
def test_no_gas_then_funded_then_stake_below_minimum(key, chain, tmp_path):
    url, dep = chain
    addr = runner.invoke(app, ["keys", "show", "--keystore", str(key)]).output.split()[1]
    msg = _refused(_node(key, url, dep, tmp_path / "w"), f"account {addr} has 0 ETH",
                   "morphware devnet fund --keystore")
    assert "chain 31337" in msg
    r = runner.invoke(app, ["devnet", "fund", "--keystore", str(key), "--rpc", url,
                            "--deployment", str(dep), "--tokens", "5"])
    assert r.exit_code == 0 and f"funded {addr}: 10 ETH for gas, 5 MWT" in r.output, r.output
    _refused(_node(key, url, dep, tmp_path / "w", "--stake", "3"),
             "--stake 3 MWT is below this deployment's minimum stake of 10 MWT", "--stake 10")
    _refused(_node(key, url, dep, tmp_path / "w"),  # the default stake: the minimum
             f"account {addr} holds 5 MWT; registering as worker stakes 10 MWT",
             "devnet fund")


@needs_anvil
def test_fund_refuses_a_chain_without_dev_accounts_money(chain, tmp_path):
    url, dep = chain
    _refused(["devnet", "fund", "--address", "0x1234", "--rpc", url, "--deployment", str(dep)],
             "not an Ethereum address")
    _refused(["devnet", "fund", "--rpc", url, "--deployment", str(dep)], "--keystore",
             "--address")


def test_model_code_that_raises_names_file_and_line(tmp_path):
    import shutil

    shutil.copytree(EXAMPLE_JOB.parent, tmp_path / "job",
                    ignore=shutil.ignore_patterns("package", "out"))
    (tmp_path / "job" / "model.py").write_text(
        "def build_model(hidden=64):\n    return helper()\n\n\ndef helper():\n"
        "    raise RuntimeError('my layer is wrong')\n")
    job = tmp_path / "job" / "job.toml"
    for cmd in (["package", str(job), "-o", str(tmp_path / "pkg")],
                ["train", str(job), "-o", str(tmp_path / "out")]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert re.search(r"RuntimeError: my layer is wrong \(at model.py line 6, in helper\)",
                         r.output.replace("\n", "")), r.output
    # what the requester daemon records for `submit` to print: the same words
    from morphware.runtime.job.packaging import PackagingError
    from morphware.runtime.job.spec import load_job
    from morphware.runtime.node.engine import package

    with pytest.raises(PackagingError, match=r"RuntimeError: my layer is wrong \(at model.py"):
        package(load_job(job), tmp_path / "pkg2")


def test_submit_needs_a_running_requester_daemon_and_cancel_withdraws(tmp_path):
    node = tmp_path / "node"
    args = ["submit", str(EXAMPLE_JOB), "--data-dir", str(node)]
    _refused(args, "no node state at", "morphware node --role requester")
    assert not node.exists()  # never creates a store by accident
    s = Store(node / "node.db")
    _refused(args, "is not running")
    s.set_meta("heartbeat", '{"pid": 1, "at": 0, "roles": ["requester"], "poll": 0.2}')
    _refused(args, "last polled the chain", "is not running")
    s.beat(1, ("worker",), 0.2)
    _refused(args, "plays worker, not requester", "--role requester")
    s.beat(1, ("requester", "worker"), 0.2)
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "morphware cancel 1" in r.output, r.output
    r = runner.invoke(app, ["cancel", "1", "--data-dir", str(node)])
    assert r.exit_code == 0 and "cancelled" in r.output
    assert s.submissions(pending_only=True) == []
    _refused(["cancel", "1", "--data-dir", str(node)], "submission 1 is cancelled")
    _refused(["cancel", "7", "--data-dir", str(node)], "no submission 7")
    local = s.add_submission("/x/job.toml")
    s.update_submission(local, state="posted", job_id=3)
    _refused(["cancel", str(local), "--data-dir", str(node)], "already on chain as job 3",
             "morphware status 3")
    r = runner.invoke(app, ["status", "--data-dir", str(node)])
    assert r.exit_code == 0 and "submission 1: cancelled" in r.output
    assert f"submission {local}: posted -> job 3" in r.output


def test_submit_wait_gives_up_and_cancels_what_was_never_posted(tmp_path):
    node = tmp_path / "node"
    Store(node / "node.db").beat(1, ("requester",), 0.2)
    r = runner.invoke(app, ["submit", str(EXAMPLE_JOB), "--data-dir", str(node), "--wait",
                            "--timeout", "1"])
    assert r.exit_code == 1 and "was not posted yet, so it is cancelled" in r.output, r.output
    assert Store(node / "node.db").submission(1).state == "cancelled"


@needs_anvil
def test_devnet_refuses_a_busy_port_and_stops_anvil_on_sigterm_and_parent_death(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        _refused(["devnet", "--port", str(busy), "-o", str(tmp_path / "d.json")],
                 f"port {busy} on 127.0.0.1 is already in use", "--port")
    cmd = [sys.executable, "-m", "morphware.runtime.cli", "devnet", "--port", "0", "-o",
           str(tmp_path / "d.json"), "--accounts", "2", "--fund", "0"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        port, end = None, time.monotonic() + 120
        while time.monotonic() < end:
            line = proc.stdout.readline()
            if m := re.search(r"anvil JSON-RPC: http://127.0.0.1:(\d+) \(a block every 1 s\)",
                              line):
                port = int(m.group(1))
            if "running; Ctrl-C to stop" in line or not line:
                break
        assert port is not None and port_in_use(port)
        os.kill(proc.pid, sig)
        proc.wait(timeout=20)
        rest = proc.stdout.read()
        proc.stdout.close()
        if sig == signal.SIGTERM:
            assert proc.returncode == 0 and "stopping anvil" in rest, rest
        end = time.monotonic() + 10
        while port_in_use(port) and time.monotonic() < end:
            time.sleep(0.1)
        assert not port_in_use(port), f"anvil outlived a devnet sent {sig!r}"
