"""Unit tests of the node's own pieces: SQLite store, keystore, pricing, peer book, HTTP."""

from __future__ import annotations

import json
import os
import stat

import pytest
from morphware.runtime.node.keystore import (
    KeystoreError,
    create_keystore,
    keystore_address,
    load_keystore,
)
from morphware.runtime.node.peers import NodeHttp, PeerBook, PeerInfo, fetch_progress
from morphware.runtime.node.pricing import (
    WAIT_WEIGHT,
    PricingError,
    WorkerProfile,
    WorkLoad,
    from_base_units,
    quote,
    to_base_units,
    updated_speed,
)
from morphware.runtime.node.store import Store


def test_store_survives_reopen_and_records_phases(tmp_path):
    s = Store(tmp_path / "node.db")
    s.upsert_job(7, "worker", "seen", max_price=5)
    s.upsert_job(7, "worker", "bid_committed", ask=3)
    s.save_bid(7, 300, b"\x01" * 32)
    s.save_bid(7, 999, b"\x02" * 32)  # a retry must not change the stored commitment
    s.mark_bid(7, committed=True)
    s.put_artifact(7, "train", magnet="magnet:?xt=1", key="ab")
    s.set_last_block(42)
    s.close()

    s = Store(tmp_path / "node.db")
    job = s.job(7, "worker")
    assert job is not None and job.phase == "bid_committed"
    assert job.facts == {"max_price": 5, "ask": 3}
    bid = s.bid(7)
    assert bid is not None and bid.price == 300 and bid.salt == b"\x01" * 32
    assert bid.committed and not bid.revealed
    assert s.artifact(7, "train").magnet == "magnet:?xt=1"
    assert s.last_block() == 42
    assert [p for _, p, _ in s.timeline(7)] == ["seen", "bid_committed"]
    assert s.jobs("worker", active_only=True)[0].job_id == 7
    s.upsert_job(7, "worker", "done")
    assert s.jobs("worker", active_only=True) == []


def test_store_rejects_unknown_artifact_field(tmp_path):
    s = Store(tmp_path / "n.db")
    with pytest.raises(Exception, match="unknown artifact field"):
        s.put_artifact(1, "x", colour="red")


def test_keystore_roundtrip_is_private_and_checks_password(tmp_path):
    path = tmp_path / "key.json"
    key = create_keystore(path, "pw", private_key=b"\x11" * 32, scrypt_n=2**10)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "11" * 32 not in path.read_text()
    assert "private_key" not in repr(key) and ("11" * 32) not in repr(key)
    assert keystore_address(path) == key.address
    again = load_keystore(path, "pw")
    assert again.private_key == b"\x11" * 32 and len(again.public_key) == 64
    with pytest.raises(KeystoreError, match="wrong password"):
        load_keystore(path, "nope")
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(path, "pw")
    (tmp_path / "bad.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(KeystoreError, match="not an Ethereum keystore"):
        load_keystore(tmp_path / "bad.json", "pw")


def test_quote_scales_with_work_and_refuses_what_does_not_fit():
    fast = WorkerProfile(backend="cpu", macs_per_s=1e9, price_per_s=0.1, margin=0.0,
                         overhead_s=0.0)
    small = WorkLoad(macs_per_sample=1000, train_samples=1000, epochs=10)
    q = quote(small, fast)
    assert q.seconds == pytest.approx(3e7 / 1e9)
    big = WorkLoad(macs_per_sample=1000, train_samples=1000, epochs=20)
    assert quote(big, fast).ask > q.ask or q.ask == fast.min_ask
    slow = WorkerProfile(backend="cpu", macs_per_s=1e3, price_per_s=1.0)
    ok, why = quote(small, slow).fits(max_price=1e12, work_window_s=60)
    assert not ok and "work window" in why
    ok, why = quote(small, slow).fits(max_price=1.0, work_window_s=1e12)
    assert not ok and "max price" in why
    with pytest.raises(PricingError):
        WorkLoad(macs_per_sample=0, train_samples=1, epochs=1)
    assert from_base_units(to_base_units(1.5)) == 1.5
    assert WorkerProfile.measure(seconds=0.05) > 1e6


def test_array_worker_prices_from_cycles_at_its_clock():
    board = WorkerProfile(backend="golden", macs_per_s=6.4e9, price_per_s=0.5, margin=0.0,
                          overhead_s=1.0, clock_hz=100e6)
    work = WorkLoad(macs_per_sample=1000, train_samples=1000, epochs=10, array_cycles=5 * 10**8)
    q = quote(work, board)
    assert q.seconds == pytest.approx(5 + 1) and q.ask == pytest.approx(3.0)
    with pytest.raises(PricingError, match="GEMM shapes"):
        quote(WorkLoad(macs_per_sample=1000, train_samples=1000, epochs=10), board)


def test_queued_work_raises_the_ask_and_can_rule_a_job_out():
    prof = WorkerProfile(backend="cpu", macs_per_s=1e6, price_per_s=1.0, margin=0.0,
                         overhead_s=0.0)
    work = WorkLoad(macs_per_sample=1000, train_samples=1000, epochs=10)  # 30 s here
    idle, busy = quote(work, prof), quote(work, prof, queue_s=40.0)
    assert busy.seconds == idle.seconds == pytest.approx(30.0)
    assert busy.ask == pytest.approx(idle.ask + WAIT_WEIGHT * 40.0)
    assert idle.fits(max_price=1e9, work_window_s=60)[0]  # 2 x 30 s fits 60 s
    ok, why = busy.fits(max_price=1e9, work_window_s=60)
    assert not ok and "after 40.0s of queued work" in why
    assert busy.fits(max_price=1e9, work_window_s=60, start_in_s=40)[0]  # the queue runs first
    assert updated_speed(1.0, estimated_s=30.0, actual_s=15.0) == pytest.approx(0.75)
    assert updated_speed(1.0, estimated_s=30.0, actual_s=1e6) == pytest.approx(10.5)  # bounded
    with pytest.raises(PricingError):
        quote(work, prof, queue_s=-1)


def test_measured_speed_moves_the_deadline_not_the_price():
    """Slowness measured on a shared machine is mostly contention, which only a worker that
    trained recently has seen: it must not make that worker the dearest bidder."""
    prof = WorkerProfile(backend="cpu", macs_per_s=1e6, price_per_s=1.0, margin=0.0,
                         overhead_s=0.0)
    work = WorkLoad(macs_per_sample=1000, train_samples=1000, epochs=10)  # 30 s here
    fast, slow = quote(work, prof), quote(work, prof, speed=4.0)
    assert slow.seconds == pytest.approx(120.0) and slow.ask == pytest.approx(fast.ask)
    assert fast.fits(max_price=1e9, work_window_s=100)[0]
    assert not slow.fits(max_price=1e9, work_window_s=100)[0]  # 2 x 120 s does not fit
    # the queue is wall-clock (speed-corrected); its price is in profile seconds
    q = quote(work, prof, queue_s=80.0, speed=4.0)
    assert q.wait_s == pytest.approx(20.0) and q.ask == pytest.approx(30.0 + WAIT_WEIGHT * 20)


def test_peer_book_and_progress_endpoint(tmp_path):
    book = PeerBook(tmp_path / "peers")
    info = PeerInfo(address="0xAbC", torrent_host="127.0.0.1", torrent_port=6881,
                    http_url="http://127.0.0.1:1")
    book.announce(info)
    assert book.get("0xabc") == info
    assert book.torrent_peers(exclude="0xABC") == []
    store = Store(tmp_path / "n.db")
    store.add_progress(3, 0, {"step": 0, "loss": 2.3})
    store.add_progress(3, 1, {"step": 1, "loss": 1.1})
    http = NodeHttp(store, "0xabc")
    try:
        assert [e["loss"] for e in fetch_progress(http.url, 3)] == [2.3, 1.1]
        assert [e["step"] for e in fetch_progress(http.url, 3, after=0)] == [1]
    finally:
        http.close()
    assert fetch_progress(http.url, 3) == []  # gone: empty, no exception


def test_key_bundle_roundtrip_fits_the_chain_and_refuses_tampering():
    from morphware.runtime.node.keys import KeyBundleError, unwrap_bundle, wrap_bundle
    from morphware.runtime.node.keystore import NodeKey as alice
    k1 = alice(address="0x0", private_key=b"\x21" * 32)
    k2 = alice(address="0x0", private_key=b"\x22" * 32)
    keys = {"model": b"\x01" * 32, "train": b"\x02" * 32, "recipe": b"\x03" * 32}
    blob = wrap_bundle(keys, k1.public_key)
    assert len(blob) <= 1024 and len(wrap_bundle({"test": b"\x04" * 32}, k1.public_key)) <= 256
    assert unwrap_bundle(blob, k1.private_key) == keys
    with pytest.raises(KeyBundleError, match="cannot unwrap"):
        unwrap_bundle(blob, k2.private_key)
    bad = bytearray(blob)
    bad[-1] ^= 1
    with pytest.raises(KeyBundleError):
        unwrap_bundle(bytes(bad), k1.private_key)
    with pytest.raises(KeyBundleError, match="malformed"):
        unwrap_bundle(blob[:-10], k1.private_key)


def test_memory_check_refuses_what_cannot_fit():
    from morphware.runtime.node.pricing import fits_memory, training_memory

    small = {"params": 9000, "train_bytes": 400_000}
    assert fits_memory(small, available=2**30) == (True, "ok")
    ok, why = fits_memory({"params": 10**9, "train_bytes": 10**10}, available=2**30)
    assert not ok and "MiB free" in why
    assert training_memory(1000, 0) < training_memory(2000, 0)
