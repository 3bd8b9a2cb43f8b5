"""Many torrents between the same sessions at once (a node seeds every artifact it published
or fetched, and fetches several at a time): every one must stay reachable. libtorrent's
default queue kept 5 seeds / 3 downloads active and paused the rest, so fetches stalled on
"no metadata" from a live seeder until the auto-manager rotated them (every 30 s)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from morphware.runtime.delivery.torrent import TorrentError, TorrentSession, sha256_file

ROUNDS = 3
PER_ROUND = 8  # seeds pile up: 24 on the seeder, 24 on each fetcher by the last round


@pytest.fixture
def sessions(tmp_path: Path):
    made = [TorrentSession(tmp_path / name) for name in ("seeder", "f1", "f2")]
    yield made
    for s in made:
        s.close(save=False)


def test_many_concurrent_torrents_stay_reachable(sessions, tmp_path: Path) -> None:
    seeder, *fetchers = sessions
    me = [("127.0.0.1", seeder.listen_port)]
    for rnd in range(ROUNDS):
        arts = []
        for i in range(PER_ROUND):
            p = tmp_path / f"src{rnd}-{i}.bin"
            p.write_bytes(os.urandom(64 * 1024 + i))
            arts.append((seeder.seed(p, peers=me), sha256_file(p)))

        def fetch(job: tuple[int, int], arts=arts, rnd=rnd) -> tuple[float, str]:
            fi, i = job
            seeded, digest = arts[i]
            t = time.monotonic()
            try:
                out = fetchers[fi].fetch(seeded.magnet, tmp_path / f"out{fi}" / f"{rnd}-{i}",
                                         digest, stall_timeout=4.0, timeout=6.0)
                assert sha256_file(out) == digest
                return time.monotonic() - t, ""
            except Exception as e:  # noqa: BLE001 - reported below
                return time.monotonic() - t, f"{type(e).__name__}: {e}"

        jobs = [(fi, i) for i in range(PER_ROUND) for fi in range(len(fetchers))]
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(fetch, jobs))
        failed = [(job, err) for job, (_, err) in zip(jobs, results, strict=True) if err]
        assert not failed, f"round {rnd}: {failed}"
        # metadata arrives in ~0.1-0.25 s on loopback; a queued torrent waited seconds
        assert max(t for t, _ in results) < 3.0, f"round {rnd}: {sorted(results)[-3:]}"


def test_torrent_removed_during_fetch_is_a_clear_error(sessions, tmp_path: Path) -> None:
    _, fetcher, _ = sessions
    dead = TorrentSession(tmp_path / "dead")
    p = tmp_path / "gone.bin"
    p.write_bytes(os.urandom(4096))
    seeded = dead.seed(p)
    port = dead.listen_port
    dead.close(save=False)  # nobody seeds it: the fetch waits for metadata
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fetcher.fetch(seeded.magnet, tmp_path / "out.bin", sha256_file(p),
                          peers=[("127.0.0.1", port)], stall_timeout=5.0, timeout=5.0)
        except BaseException as e:  # noqa: BLE001 - asserted below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    fetcher.remove(seeded.infohash)
    t.join(timeout=10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TorrentError), errors
    assert "removed" in str(errors[0])
