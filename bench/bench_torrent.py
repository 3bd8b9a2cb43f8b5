"""Delivery over loopback: BitTorrent throughput and end-to-end encrypted delivery, against a
plain file copy of the same file in the same run; and time to first byte from a magnet.

Each size is measured with fresh sessions (two libtorrent sessions in this process, TCP over
127.0.0.1). Files live in a temporary folder and are deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.report import Report, Table

MB = 1 << 20


def _write(path: Path, size: int) -> None:
    block = bytearray(os.urandom(min(size, 8 * MB)))
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            block[:8] = i.to_bytes(8, "big")  # distinct blocks, cheaply
            n = min(left, len(block))
            f.write(block[:n])
            left, i = left - n, i + 1


def _copy_s(src: Path, dst: Path) -> float:
    t = time.perf_counter()
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())
    return time.perf_counter() - t


def _raw_transfer(work: Path, src: Path) -> dict[str, float]:
    """Plain file over BitTorrent (no encryption): seed, fetch by magnet, verify SHA-256."""
    from morphware.runtime.delivery.torrent import TorrentSession, sha256_file

    digest = sha256_file(src)
    with TorrentSession(work / "raw-a") as a, TorrentSession(work / "raw-b") as b:
        t = time.perf_counter()
        seeded = a.seed(src, peers=[("127.0.0.1", a.listen_port)])
        seed_s = time.perf_counter() - t
        first: list[float] = []
        t = time.perf_counter()
        b.fetch(seeded.magnet, work / "raw.out", digest, timeout=300,
                progress=lambda d, _t: first.append(time.perf_counter()) if d and not first
                else None)
        total = time.perf_counter() - t
    return {"seed_s": seed_s, "fetch_s": total, "ttfb_s": first[0] - t if first else total}


def _delivery(work: Path, src: Path) -> dict[str, float]:
    """The full path: encrypt + seed, fetch by magnet + verify, decrypt."""
    from morphware.runtime.delivery import Delivery

    with Delivery(work / "enc-a") as a, Delivery(work / "enc-b") as b:
        t = time.perf_counter()
        pub = a.publish(src)
        publish_s = time.perf_counter() - t
        t = time.perf_counter()
        ct = b.fetch_ciphertext(pub.magnet, pub.content_hash, timeout=300)
        fetch_s = time.perf_counter() - t
        t = time.perf_counter()
        b.decrypt(ct, pub.key)
        decrypt_s = time.perf_counter() - t
    return {"publish_s": publish_s, "fetch_s": fetch_s, "decrypt_s": decrypt_s}


def _measure(size_mb: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-torrent-") as tmp:
        work = Path(tmp)
        src = work / "artifact.bin"
        _write(src, size_mb * MB)
        copy_s = _copy_s(src, work / "copy.bin")
        raw = _raw_transfer(work, src)
        enc = _delivery(work, src)
    e2e = enc["publish_s"] + enc["fetch_s"] + enc["decrypt_s"]
    return {
        "MB": size_mb,
        "copy s": copy_s,
        "copy MB/s": size_mb / copy_s,
        "torrent fetch s": raw["fetch_s"],
        "torrent MB/s": size_mb / raw["fetch_s"],
        "torrent / copy": raw["fetch_s"] / copy_s,
        "first byte s": raw["ttfb_s"],
        "encrypt+seed s": enc["publish_s"],
        "enc fetch+verify s": enc["fetch_s"],
        "decrypt s": enc["decrypt_s"],
        "end-to-end s": e2e,
        "end-to-end / copy": e2e / copy_s,
    }


def _ttfb(repeats: int) -> list[dict[str, float | int]]:
    """Time from a magnet to metadata and to the first payload byte, small artifact."""
    from morphware.runtime.delivery.torrent import TorrentSession, sha256_file

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ttfb-") as tmp:
        work = Path(tmp)
        for i in range(repeats):
            src = work / f"small{i}.bin"
            _write(src, 1 * MB)
            with TorrentSession(work / f"a{i}") as a, TorrentSession(work / f"b{i}") as b:
                seeded = a.seed(src, peers=[("127.0.0.1", a.listen_port)])
                marks: dict[str, float] = {}

                def note(done: int, total: int, marks: dict[str, float] = marks) -> None:
                    marks.setdefault("metadata", time.perf_counter())
                    if done:
                        marks.setdefault("first byte", time.perf_counter())

                t = time.perf_counter()
                b.fetch(seeded.magnet, work / f"out{i}", sha256_file(src), timeout=60,
                        progress=note)
                done = time.perf_counter()
            rows.append({"run": i, "metadata s": marks["metadata"] - t,
                         "first byte s": marks.get("first byte", done) - t,
                         "complete (1 MB) s": done - t})
    return rows


def run(quick: bool = False) -> Report:
    sizes = [10, 50] if quick else [50, 200]
    rows = [_measure(s) for s in sizes]
    ttfb = _ttfb(2 if quick else 5)
    notes = [
        "copy: shutil.copyfile + fsync of the same file, same run (page cache warm for both)",
        "torrent: plaintext over libtorrent (TCP, 127.0.0.1), SHA-256 verified, moved in place",
        "end-to-end: AES-256-GCM encrypt + hash + seed, fetch + verify, decrypt",
        "first byte: first progress report with data, at the fetch loop's 20 ms polling",
    ]
    return Report(
        name="torrent",
        tables=[Table("loopback delivery vs plain copy", rows, notes),
                Table("time to first byte from a magnet (loopback, 1 MB)", ttfb)],
        meta={"sizes_mb": sizes, "cpus": os.cpu_count()},
    )
