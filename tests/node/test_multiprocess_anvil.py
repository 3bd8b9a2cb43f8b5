"""The digits job with every role in its own OS process, against anvil on loopback.

Each node is ``morphware node`` (its own keystore, SQLite store, libtorrent session and HTTP
endpoint); the job is queued with ``morphware submit --wait``. The chain runs in real time:
nothing moves its clock.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from morphware.contracts import MarketClient, anvil_accounts, anvil_bin, deploy, start_anvil
from morphware.runtime.demo import EXAMPLE_JOB
from morphware.runtime.node.keystore import create_keystore

pytestmark = [pytest.mark.chain, pytest.mark.integration,
              pytest.mark.skipif(anvil_bin() is None, reason="anvil not installed (make setup)")]

MORPHWARE = [sys.executable, "-m", "morphware.runtime.cli"]
PASSWORD = "multiprocess-test"

JOB_TOML = """
[job]
name = "digits-multiprocess"

[model]
source = "model.py"
input_shape = [64]
hparams = {{ hidden = 32 }}

[data]
train = "data/train.npz"
test = "data/test.npz"

[training]
learning_rate = 0.01
epochs = 3
batch_size = 64

[metric]
name = "accuracy"
threshold = 0.8

[market]
max_price = 50.0
validators = 2
validator_fee = 1.0
bid_window_s = {bid}
reveal_window_s = 20
work_window_s = 120
validation_window_s = 40
"""


def _job(tmp: Path, bid_window: int) -> Path:
    src = EXAMPLE_JOB.parent
    shutil.copy(src / "model.py", tmp / "model.py")
    shutil.copytree(src / "data", tmp / "data")
    (tmp / "job.toml").write_text(JOB_TOML.format(bid=bid_window))
    return tmp / "job.toml"


def _registered(client: MarketClient, addresses: list[str]) -> bool:
    return all(int(client.account_info(a).roles) != 0 for a in addresses)


def test_every_role_in_its_own_process_against_anvil(tmp_path):
    proc, url = start_anvil()
    nodes: list[subprocess.Popen] = []
    env = {**os.environ, "MORPHWARE_PASSWORD": PASSWORD}
    try:
        accts = anvil_accounts(6)
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(url))
        # Like a real chain, a block every second: deadlines are checked against block time,
        # and an idle automine-only anvil would keep its clock at the last transaction.
        w3.provider.make_request("evm_setIntervalMining", [1])
        dep = deploy(w3, accts[0])
        dep_file = dep.save(tmp_path / "deployment.json")
        cast = [("requester", "requester", []),
                ("worker-a", "worker", ["--price-per-s", "0.5"]),
                ("worker-b", "worker", ["--price-per-s", "1.5"]),
                ("validator-1", "validator", ["--eval-backend", "cpu"]),
                ("validator-2", "validator", ["--eval-backend", "golden"])]
        for i, (name, role, extra) in enumerate(cast, start=1):
            ks = tmp_path / f"{name}.json"
            create_keystore(ks, PASSWORD, bytes(accts[i].key), scrypt_n=2**10)
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            nodes.append(subprocess.Popen(
                [*MORPHWARE, "node", "--role", role, "--rpc", url, "--deployment", str(dep_file),
                 "--keystore", str(ks), "--data-dir", str(tmp_path / name),
                 "--peers-dir", str(tmp_path / "peers"), "--fund", "500", "--poll", "0.2",
                 *extra], env=env, stdout=log, stderr=subprocess.STDOUT))
        client = MarketClient(w3, dep, accts[0])
        end = time.monotonic() + 90
        while not _registered(client, [a.address for a in accts[2:6]]):
            assert time.monotonic() < end, "nodes did not register in time"
            assert all(n.poll() is None for n in nodes), "a node exited early"
            time.sleep(0.5)
        (tmp_path / "job").mkdir()
        job = _job(tmp_path / "job", bid_window=12)
        done = subprocess.run(
            [*MORPHWARE, "submit", str(job), "--data-dir", str(tmp_path / "requester"),
             "--wait", "--timeout", "150"], env=env, capture_output=True, text=True, timeout=180)
        logs = "\n".join((tmp_path / f"{n}.log").read_text()[-3000:] for n, _, _ in cast)
        assert done.returncode == 0, done.stdout + done.stderr + logs
        assert "outcome: accepted" in done.stdout, done.stdout
        s = client.job(1)
        assert s.winner == accts[2].address  # worker-a: the cheaper ask
        assert len(client.metrics(1)) == 2 and min(client.metrics(1)) >= 800_000
        assert (tmp_path / "requester" / "results" / "1" / "model.onnx").is_file()
    finally:
        for n in nodes:
            if n.poll() is None:
                n.send_signal(signal.SIGTERM)
        for n in nodes:
            try:
                n.wait(timeout=15)
            except subprocess.TimeoutExpired:
                n.kill()
        proc.terminate()
        proc.wait(timeout=10)
