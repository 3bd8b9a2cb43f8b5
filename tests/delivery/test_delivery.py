"""Delivery between sessions on loopback: publish/fetch, wrong keys, wrong hashes, dead and
restarted peers, concurrent fetches. Every wait is bounded by the fetch's own timeouts."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from morphware.runtime.delivery import Delivery
from morphware.runtime.delivery.crypto import (
    DecryptionError,
    KeyWrapError,
    ciphertext_size,
    new_key,
)
from morphware.runtime.delivery.torrent import (
    ContentHashMismatch,
    FetchTimeout,
    TorrentError,
    infohash_of,
    sha256_file,
)

MB = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Callable[..., Delivery]]:
    """A factory of Delivery nodes under tmp_path, all closed at the end."""
    made: list[Delivery] = []

    def make(name: str, **kw) -> Delivery:
        d = Delivery(tmp_path / name, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_publish_and_fetch(nodes, make_file, keypair) -> None:
    priv, pub = keypair
    src = make_file(3 * MB + 5, "train.npz")
    a, b = nodes("a"), nodes("b", private_key=priv)
    pubd = a.publish(src, [pub])
    assert pubd.content_hash == sha256_file(pubd.path) and len(pubd.content_hash) == 32
    assert f"x.pe=127.0.0.1:{a.listen_port}" in pubd.magnet
    assert set(pubd.wrapped_keys) == {pub}
    seen: list[tuple[int, int]] = []
    out = b.fetch(pubd.magnet, pubd.content_hash_hex, wrapped_key=pubd.wrapped_keys[pub],
                  timeout=30, progress=lambda d, t: seen.append((d, t)))
    assert out.name == "train.npz" and out.read_bytes() == src.read_bytes()
    assert seen and seen[-1][0] == seen[-1][1] == pubd.size
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # fetching again is idempotent and needs no peer
    assert b.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, timeout=5).read_bytes() \
        == src.read_bytes()


def test_third_node_gets_ciphertext_but_cannot_decrypt(nodes, make_file, keypair) -> None:
    _, pub = keypair
    src = make_file(1 * MB, "test.npz")
    a, c = nodes("a"), nodes("c")
    pubd = a.publish(src, [pub])
    ct = c.fetch_ciphertext(pubd.magnet, pubd.content_hash, timeout=30)
    assert sha256_file(ct) == pubd.content_hash
    assert src.read_bytes()[:4096] not in ct.read_bytes()
    with pytest.raises(KeyWrapError, match="another recipient"):
        c.decrypt(ct, wrapped_key=pubd.wrapped_keys[pub], private_key=new_key())
    with pytest.raises(DecryptionError, match="wrong key"):
        c.decrypt(ct, new_key())
    with pytest.raises(ValueError, match="needs key= or wrapped_key="):
        c.fetch(pubd.magnet, pubd.content_hash)
    assert _files_under(c.root / "plain") == []


def test_wrong_key_leaves_no_plaintext(nodes, make_file) -> None:
    src = make_file(2 * MB)
    a, b = nodes("a"), nodes("b")
    pubd = a.publish(src)
    with pytest.raises(DecryptionError):
        b.fetch(pubd.magnet, pubd.content_hash, key=new_key(), timeout=30)
    assert _files_under(b.root / "plain") == []


def test_content_hash_differs_from_chain(nodes, make_file) -> None:
    src = make_file(2 * MB)
    a, b = nodes("a"), nodes("b")
    pubd = a.publish(src)
    chain_hash = hashlib.sha256(b"what the chain says").digest()
    with pytest.raises(ContentHashMismatch, match="does not match the hash on chain"):
        b.fetch(pubd.magnet, chain_hash, key=pubd.key, timeout=30)
    assert _files_under(b.root / "store") == [] and _files_under(b.root / "plain") == []
    assert _files_under(b.torrents.state_dir / "partial") == []


def test_dead_seeder_gives_clear_timeout(nodes, make_file) -> None:
    src = make_file(1 * MB)
    a, b = nodes("a"), nodes("b")
    pubd = a.publish(src)
    a.close()
    t0 = time.monotonic()
    with pytest.raises(FetchTimeout, match=r"no metadata received for 2 s from 127\.0\.0\.1"):
        b.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, stall_timeout=2, timeout=10)
    assert time.monotonic() - t0 < 6
    with pytest.raises(ValueError, match="32 bytes"):
        b.fetch(pubd.magnet, b"short", key=pubd.key)


def test_corrupted_seed_is_never_taken(nodes, make_file) -> None:
    src = make_file(2 * MB)
    a, b = nodes("a"), nodes("b")
    pubd = a.publish(src)
    data = bytearray(pubd.path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the seeder's disk rots after publishing
    pubd.path.write_bytes(bytes(data))
    with pytest.raises((FetchTimeout, ContentHashMismatch)):
        b.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, stall_timeout=2, timeout=15)
    assert _files_under(b.root / "store") == [] and _files_under(b.root / "plain") == []


def test_seeder_disappears_and_comes_back(nodes, make_file, tmp_path) -> None:
    src = make_file(6 * MB)
    port = _free_port()
    a = nodes("a", listen=f"127.0.0.1:{port}", upload_rate_limit=3 * MB)
    b = nodes("b")
    pubd = a.publish(src)
    a.torrents.save_state()
    seen: list[int] = []
    result: dict[str, object] = {}

    def fetch() -> None:
        try:
            result["path"] = b.fetch(pubd.magnet, pubd.content_hash, key=pubd.key,
                                     stall_timeout=20, timeout=40,
                                     progress=lambda d, t: seen.append(d))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            result["error"] = e

    t = threading.Thread(target=fetch)
    t.start()
    deadline = time.monotonic() + 20
    while (not seen or seen[-1] < pubd.size // 4) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen and seen[-1] < pubd.size, "the transfer should be under way"
    a.close()  # the seeder vanishes mid-transfer
    stalled_at = seen[-1]
    time.sleep(1.0)
    assert "path" not in result and not (b.root / "plain").exists()
    a2 = nodes("a", listen=f"127.0.0.1:{port}")  # same folder: restored from resume data
    t.join(timeout=40)
    assert "error" not in result, result.get("error")
    assert Path(result["path"]).read_bytes() == src.read_bytes()
    assert stalled_at > 0 and seen[-1] == pubd.size
    assert a2.torrents.stats(a2.torrents.seed(pubd.path).infohash).is_seeding


class _Crash(Exception):
    """Raised from a progress callback: the fetching node dies mid-transfer."""


def test_fetcher_restarts_and_resumes(nodes, make_file, tmp_path) -> None:
    src = make_file(6 * MB)
    a = nodes("a", upload_rate_limit=3 * MB)
    b = nodes("b")
    pubd = a.publish(src)

    def crash_at_a_quarter(done: int, total: int) -> None:
        if done > total // 4:
            raise _Crash

    with pytest.raises(_Crash):
        b.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, timeout=30,
                progress=crash_at_a_quarter)
    assert _files_under(b.root / "store") == [] and _files_under(b.root / "plain") == []
    b.close()
    a.torrents.set_upload_rate_limit(0)
    b2 = nodes("b")  # a new process on the same folder, from fast-resume data
    first: list[int] = []
    out = b2.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, timeout=30,
                   progress=lambda d, t: first.append(d))
    assert out.read_bytes() == src.read_bytes()
    assert first[0] > pubd.size // 8, "the restarted fetch should start from the pieces on disk"


def test_total_timeout(nodes, make_file) -> None:
    a, b = nodes("a", upload_rate_limit=1 * MB), nodes("b")
    pubd = a.publish(make_file(4 * MB))
    with pytest.raises(FetchTimeout, match="not complete after 1 s"):
        b.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, timeout=1.0)
    assert _files_under(b.root / "store") == []


def test_concurrent_fetches(nodes, make_file) -> None:
    a, b = nodes("a"), nodes("b")
    srcs = [make_file(1 * MB, f"f{i}.bin") for i in range(3)]
    pubs = [a.publish(s) for s in srcs]
    jobs = [pubs[0], pubs[0], pubs[1], pubs[2]]  # the same artifact twice, at once
    out: list[Path | Exception] = [Exception("not run")] * len(jobs)

    def run(i: int) -> None:
        try:
            out[i] = b.fetch(jobs[i].magnet, jobs[i].content_hash, key=jobs[i].key, timeout=30)
        except Exception as e:  # noqa: BLE001 - asserted below
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert all(isinstance(p, Path) for p in out), out
    assert out[0] == out[1]
    for p, src in zip(out, [srcs[0], srcs[0], srcs[1], srcs[2]], strict=True):
        assert p.read_bytes() == src.read_bytes()


def test_oversized_torrent_refused_before_download(nodes, make_file) -> None:
    a, b = nodes("a"), nodes("b")
    pubd = a.publish(make_file(2 * MB))
    with pytest.raises(TorrentError, match="more than the 1048576 expected"):
        b.fetch_ciphertext(pubd.magnet, pubd.content_hash, max_bytes=MB, timeout=30)
    assert _files_under(b.root / "store") == []
    assert _files_under(b.torrents.state_dir / "partial") == []
    exact = ciphertext_size(2 * MB)
    assert exact == pubd.size
    assert b.fetch_ciphertext(pubd.magnet, pubd.content_hash, max_bytes=exact, timeout=30)


def test_bad_magnet(nodes) -> None:
    with pytest.raises(TorrentError, match="not a valid magnet link"):
        nodes("b").fetch_ciphertext("magnet:?dn=nothing", b"\0" * 32, timeout=1)


def test_magnet_name_cannot_escape(nodes) -> None:
    from morphware.runtime.delivery.api import _magnet_name

    assert _magnet_name("magnet:?xt=urn:btih:00&dn=..%2F..%2Fetc%2Fpasswd") == "passwd"
    assert _magnet_name("magnet:?xt=urn:btih:00&dn=..") == "artifact.enc"
    assert _magnet_name("magnet:?xt=urn:btih:00") == "artifact.enc"


def test_public_swarm_settings() -> None:
    from morphware.runtime.delivery.torrent import TorrentSession

    pub = TorrentSession._settings("0.0.0.0:6881", "0.0.0.0", True, 0)
    assert pub["enable_dht"] and "outgoing_interfaces" not in pub
    lo = TorrentSession._settings("127.0.0.1:0", "127.0.0.1", False, 0)
    assert not lo["enable_dht"] and not lo["enable_lsd"] and lo["outgoing_interfaces"] == \
        "127.0.0.1"
    assert not lo["enable_outgoing_utp"] and not lo["enable_incoming_utp"]


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(TorrentError, match=f"cannot listen on 127.0.0.1:{port}"):
            Delivery(tmp_path / "x", listen=f"127.0.0.1:{port}")


def test_fetched_artifact_is_reseeded_after_restart(nodes, make_file) -> None:
    """A recipient seeds what it fetched, from its final place, across restarts: a third node
    gets it after the original seeder is gone."""
    src = make_file(2 * MB)
    a, b = nodes("a"), nodes("b")
    pubd = a.publish(src)
    ct = b.fetch_ciphertext(pubd.magnet, pubd.content_hash, timeout=30)
    a.close()
    b.close()
    b2 = nodes("b")
    st = b2.torrents.stats(infohash_of(pubd.magnet))  # restored from resume data
    assert st.is_seeding and Path(st.save_path) == ct.parent
    c = nodes("c")
    out = c.fetch(pubd.magnet, pubd.content_hash, key=pubd.key, peers=[b2.address], timeout=30)
    assert out.read_bytes() == src.read_bytes()
