"""The node's commands: keys, submit and status (the daemon itself runs in the anvil test)."""

from __future__ import annotations

import json
import shutil

from morphware.runtime.cli import app
from morphware.runtime.demo import EXAMPLE_JOB
from morphware.runtime.node.keystore import create_keystore
from morphware.runtime.node.store import Store
from typer.testing import CliRunner

runner = CliRunner()


def test_keys_show_prints_address_and_pubkey_never_the_secret(tmp_path, monkeypatch):
    ks = tmp_path / "k.json"
    key = create_keystore(ks, "pw", b"\x42" * 32, scrypt_n=2**10)
    monkeypatch.setenv("MORPHWARE_PASSWORD", "pw")
    r = runner.invoke(app, ["keys", "show", "--keystore", str(ks)])
    assert r.exit_code == 0, r.output
    assert key.address in r.output and key.public_key.hex() in r.output
    assert "42" * 32 not in r.output
    monkeypatch.setenv("MORPHWARE_PASSWORD", "wrong")
    r = runner.invoke(app, ["keys", "show", "--keystore", str(ks)])
    assert r.exit_code == 1 and "wrong password" in r.output
    r = runner.invoke(app, ["keys", "new", "--keystore", str(ks)])
    assert r.exit_code == 1 and "already exists" in r.output


def test_submit_validates_then_queues_for_the_daemon(tmp_path):
    shutil.copytree(EXAMPLE_JOB.parent, tmp_path / "job")
    bad = tmp_path / "job" / "bad.toml"
    bad.write_text(EXAMPLE_JOB.read_text().replace("max_price = 100.0", "max_price = -1"))
    r = runner.invoke(app, ["submit", str(bad), "--data-dir", str(tmp_path / "node")])
    assert r.exit_code == 1 and "max_price" in r.output
    r = runner.invoke(app, ["submit", str(EXAMPLE_JOB), "--data-dir", str(tmp_path / "node")])
    assert r.exit_code == 1 and "no node state" in r.output  # never creates a store
    assert not (tmp_path / "node").exists()
    Store(tmp_path / "node" / "node.db").beat(1, ("requester",), 0.2)  # a daemon serves it
    r = runner.invoke(app, ["submit", str(EXAMPLE_JOB), "--data-dir", str(tmp_path / "node")])
    assert r.exit_code == 0, r.output
    subs = Store(tmp_path / "node" / "node.db").submissions(pending_only=True)
    assert [s.spec_path for s in subs] == [str(EXAMPLE_JOB)] and subs[0].state == "queued"


def test_status_shows_phase_prices_metrics_and_live_loss(tmp_path):
    s = Store(tmp_path / "node.db")
    s.upsert_job(4, "requester", "auction", name="digits")
    s.upsert_job(4, "requester", "done", outcome="accepted", price=3 * 10**18,
                 metrics=[950000, 960000], loss_curve=[1.0, 0.5], bids={"0xA": 3 * 10**18})
    s.add_progress(4, 0, {"step": 0, "loss": 2.0})
    r = runner.invoke(app, ["status", "4", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "phase: done" in r.output and "accepted" in r.output and "price: 3 MWT" in r.output
    assert "loss curve: 1.000 0.500" in r.output and "live loss: 1 steps" in r.output
    r = runner.invoke(app, ["status", "4", "--data-dir", str(tmp_path), "--json"])
    st = json.loads(r.output)
    assert st["roles"]["requester"]["bids"] == {"0xA": 3.0}
    assert [p for p, _ in st["roles"]["requester"]["timeline"]] == ["auction", "done"]
    r = runner.invoke(app, ["status", "5", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1 and "knows no job 5" in r.output
