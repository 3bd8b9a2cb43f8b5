"""One libtorrent session per node: seed files, fetch them by magnet, survive restarts.

Why it looks like this:

- One torrent per artifact (single-file torrents), so a magnet names exactly one artifact.
  Torrents are BitTorrent v1 by default: aria2 1.36 cannot fetch libtorrent's v1+v2 hybrids
  (``hybrid=True`` makes them). Integrity does not rest on v1's SHA-1 piece hashes: the whole
  file's SHA-256 is checked against the hash on chain.
- TCP only, no DHT/LSD/UPnP/NAT-PMP by default: on loopback and private networks peers are given
  explicitly (``connect_peer``, or ``x.pe`` in the magnet), and uTP is 10-40x slower on loopback.
  ``dht=True`` joins the public swarm.
- Fetches download into ``<state>/partial/<infohash>/``; only after the whole file's SHA-256
  equals the expected content hash is it renamed into the destination. Nothing partially written
  (or written by a lying peer) is ever at the destination path.
- Fast-resume data is written to ``<state>/resume/`` when a torrent is added, periodically, and
  on close; a new session over the same state folder re-adds every torrent, so a restarted seeder
  seeds again and a restarted fetcher continues from the pieces it has.
- No torrent queueing: libtorrent's defaults keep only 3 downloads and 5 seeds active and pause
  the rest (a paused seed refuses fetchers for up to 30 s); a node has many, so all stay active.
- Every wait is bounded; a fetch that makes no progress for ``stall_timeout`` seconds raises
  ``FetchTimeout`` naming the peers it tried.
- Thread-safe: libtorrent's API is thread-safe; this module's own tables are guarded by a lock
  and a single thread consumes alerts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

log = logging.getLogger(__name__)

Peer = tuple[str, int]
Progress = Callable[[int, int], None]  # (bytes done, bytes total)

RESUME_EVERY_S = 5.0
POLL_S = 0.02
RECONNECT_EVERY_S = 1.0
_CHECKING = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)


class TorrentError(RuntimeError):
    """A torrent operation failed (bad magnet, storage error, ...)."""


class FetchTimeout(TorrentError):
    """A fetch did not complete in time (no peer reachable, or a peer stopped sending)."""


class ContentHashMismatch(TorrentError):
    """The downloaded content's SHA-256 is not the expected one (e.g. the hash on chain)."""


def sha256_file(path: Path) -> bytes:
    """SHA-256 of a file's bytes, streamed."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def normalize_hash(content_hash: bytes | str) -> bytes:
    """A content hash as 32 bytes (accepts bytes or hex, with or without 0x)."""
    if isinstance(content_hash, str):
        try:
            content_hash = bytes.fromhex(content_hash.removeprefix("0x"))
        except ValueError:
            raise ValueError(f"content hash is not hex: {content_hash!r}") from None
    if len(content_hash) != 32:
        raise ValueError(f"a content hash is 32 bytes (SHA-256), got {len(content_hash)}")
    return bytes(content_hash)


def magnet_with_peers(magnet: str, peers: Iterable[Peer]) -> str:
    """Append ``x.pe`` peer hints (BEP 9) so a fetcher without DHT knows where to connect."""
    return magnet + "".join(f"&x.pe={host}:{port}" for host, port in peers)


def infohash_of(magnet: str) -> str:
    """The torrent key (v1 infohash, hex) a magnet names: what ``stats``/``remove`` take."""
    try:
        return _key(lt.parse_magnet_uri(magnet).info_hashes)
    except Exception as e:  # noqa: BLE001 - libtorrent raises RuntimeError subtypes
        raise TorrentError(f"not a valid magnet link: {magnet[:80]!r}: {e}") from None


def _key(ih: lt.info_hash_t) -> str:
    """A stable text key for a torrent: its v1 infohash (hex), else its v2 one."""
    return str(ih.v1) if ih.has_v1() else str(ih.v2)


@dataclass(frozen=True)
class Seeded:
    """A torrent this session seeds."""

    magnet: str
    infohash: str
    path: Path
    size: int


class TorrentSession:
    """A node's libtorrent session, bound to a state folder that survives restarts."""

    def __init__(self, state_dir: Path | str, *, listen: str = "127.0.0.1:0",
                 dht: bool = False, upload_rate_limit: int = 0,
                 hybrid: bool = False) -> None:
        self.state_dir = Path(state_dir)
        self._resume_dir = self.state_dir / "resume"
        self._partial_dir = self.state_dir / "partial"
        for d in (self._resume_dir, self._partial_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._hybrid = hybrid
        self._lock = threading.RLock()
        self._handles: dict[str, lt.torrent_handle] = {}
        self._errors: dict[str, str] = {}
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._resume_answers: dict[str, int] = {}  # resume-data answers per torrent (save_state)
        self._closed = threading.Event()
        host = listen.rsplit(":", 1)[0]
        self._session = lt.session(self._settings(listen, host, dht, upload_rate_limit))
        if self._session.listen_port() == 0:
            raise TorrentError(f"cannot listen on {listen} (port in use, or no such address)")
        self._restore()
        self._alert_thread = threading.Thread(target=self._alert_loop, name="torrent-alerts",
                                              daemon=True)
        self._alert_thread.start()

    # ---- setup ------------------------------------------------------------------------------

    @staticmethod
    def _settings(listen: str, host: str, dht: bool, upload_rate_limit: int) -> dict:
        s = {
            "listen_interfaces": listen,
            "enable_dht": dht,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "alert_mask": (lt.alert.category_t.error_notification
                           | lt.alert.category_t.storage_notification
                           | lt.alert.category_t.status_notification),
            # loopback peers share one address; libtorrent would otherwise refuse a second one
            "allow_multiple_connections_per_ip": True,
            # bytes/s, 0 = unlimited; loopback peers are "local", so both limits apply
            "upload_rate_limit": upload_rate_limit,
            "local_upload_rate_limit": upload_rate_limit,
            "user_agent": "morphware/0.1",
            # an explicit port is this node's address (in its magnets): fail rather than drift
            "max_retry_port_bind": 0,
            "listen_system_port_fallback": False,
            # peers are few and explicit: retry a refused one after 1 s, not libtorrent's 60 s
            "min_reconnect_time": 1,
            # every torrent is auto-managed; libtorrent's queue (by default 3 active downloads,
            # 5 active seeds) would pause the rest: a paused seed turns fetchers away and a
            # paused fetch waits, until the auto-manager rotates them every 30 s. A node seeds
            # every artifact it published or fetched and fetches several at once: no queue.
            "active_downloads": -1,
            "active_seeds": -1,
            "active_limit": -1,
        }
        if host not in ("0.0.0.0", "[::]", ""):
            s["outgoing_interfaces"] = host
        return s

    def _restore(self) -> None:
        """Re-add every torrent whose fast-resume data was saved by an earlier session."""
        for f in sorted(self._resume_dir.glob("*.resume")):
            try:
                atp = lt.read_resume_data(f.read_bytes())
                self._add(atp)
            except Exception as e:  # noqa: BLE001 - one bad resume file must not stop a node
                log.warning("ignoring unreadable resume file %s: %s", f, e)
                f.unlink(missing_ok=True)

    def _add(self, atp: lt.add_torrent_params) -> lt.torrent_handle:
        h = self._session.add_torrent(atp)
        key = _key(h.info_hashes())
        with self._lock:
            self._handles[key] = h
            self._errors.pop(key, None)
        return h

    @property
    def listen_port(self) -> int:
        return self._session.listen_port()

    def set_upload_rate_limit(self, bytes_per_s: int) -> None:
        """Cap this node's upload rate (0 = unlimited), loopback peers included."""
        self._session.apply_settings({"upload_rate_limit": bytes_per_s,
                                      "local_upload_rate_limit": bytes_per_s})

    # ---- alerts and resume data -------------------------------------------------------------

    def _alert_loop(self) -> None:
        last_save = time.monotonic()
        while not self._closed.is_set():
            self._session.wait_for_alert(100)
            self._handle_alerts(self._session.pop_alerts())
            if time.monotonic() - last_save > RESUME_EVERY_S:
                self._request_resume_data()
                last_save = time.monotonic()

    def _handle_alerts(self, alerts: Sequence[lt.alert]) -> None:
        for a in alerts:
            if isinstance(a, lt.save_resume_data_alert):
                self._write_resume(a.params)
                self._count_answer(_key(a.params.info_hashes))
            elif isinstance(a, lt.save_resume_data_failed_alert):
                self._count_answer(_key(a.handle.info_hashes()))
            elif isinstance(a, lt.torrent_error_alert | lt.file_error_alert):
                key = _key(a.handle.info_hashes())
                with self._lock:
                    self._errors[key] = a.message()
                log.warning("torrent %s: %s", key, a.message())

    def _count_answer(self, key: str) -> None:
        with self._lock:
            self._resume_answers[key] = self._resume_answers.get(key, 0) + 1

    def _write_resume(self, params: lt.add_torrent_params) -> None:
        key = _key(params.info_hashes)
        with self._lock:
            h = self._handles.get(key)
        if h is None or not h.is_valid():
            return  # removed meanwhile
        if os.path.abspath(h.save_path()) != os.path.abspath(params.save_path):
            return  # a late answer from before a verified download moved to its final place
        path = self._resume_dir / f"{key}.resume"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(lt.write_resume_data_buf(params))
        os.replace(tmp, path)

    def _request_resume_data(self, flush: bool = False) -> dict[str, int]:
        """Ask every torrent for resume data; returns each one's answer count before asking.
        Periodic requests skip unchanged torrents; ``flush`` ones (save_state) ask them all."""
        with self._lock:
            handles = dict(self._handles)
            before = dict(self._resume_answers)
        flags = lt.torrent_handle.save_info_dict
        flags |= lt.torrent_handle.flush_disk_cache if flush else lt.torrent_handle.only_if_modified
        asked = {}
        for key, h in handles.items():
            if h.is_valid():
                h.save_resume_data(flags)
                asked[key] = before.get(key, 0)
        return asked

    def save_state(self, timeout: float = 10.0) -> None:
        """Write fast-resume data for every torrent now; waits (bounded) until each one has
        written resume data since this call (at worst a periodic save a moment older)."""
        asked = self._request_resume_data(flush=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alert_thread.is_alive():  # closing: consume the alerts here
                self._session.wait_for_alert(100)
                self._handle_alerts(self._session.pop_alerts())
            with self._lock:
                if all(self._resume_answers.get(k, 0) > n or k not in self._handles
                       for k, n in asked.items()):
                    return
            time.sleep(POLL_S / 5)
        log.warning("fast-resume data not saved for every torrent within %.0f s", timeout)

    # ---- seeding ----------------------------------------------------------------------------

    def seed(self, path: Path | str, peers: Iterable[Peer] = ()) -> Seeded:
        """Seed one file from where it lies; returns its magnet (with ``x.pe`` hints for
        ``peers``, typically this node's own reachable address)."""
        path = Path(path).resolve()
        if not path.is_file():
            raise TorrentError(f"cannot seed {path}: not a file")
        flags = 0 if self._hybrid else lt.create_torrent.v1_only
        ct = lt.create_torrent(lt.list_files(str(path)), 0, flags)
        ct.set_creator("morphware")
        lt.set_piece_hashes(ct, str(path.parent))
        ti = lt.torrent_info(lt.bencode(ct.generate()))
        key = _key(ti.info_hashes())
        with self._lock:
            existing = self._handles.get(key)
        if existing is None or not existing.is_valid():
            atp = lt.add_torrent_params()
            atp.ti = ti
            atp.save_path = str(path.parent)
            atp.flags = lt.torrent_flags.seed_mode | lt.torrent_flags.auto_managed
            h = self._add(atp)
            h.save_resume_data(lt.torrent_handle.save_info_dict)
            self._wait_ready(h)
        magnet = magnet_with_peers(lt.make_magnet_uri(ti), peers)
        return Seeded(magnet=magnet, infohash=key, path=path, size=ti.total_size())

    @staticmethod
    def _wait_ready(h: lt.torrent_handle, timeout: float = 10.0) -> None:
        """Until a new seed accepts peers: before that, libtorrent turns connections away
        ("torrent is not ready to accept peers"), and a fetcher would back off."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = h.status()
            if st.state == lt.torrent_status.seeding:
                return
            if st.errc.value():
                raise TorrentError(f"cannot seed {st.name}: {st.errc.message()}")
            time.sleep(POLL_S / 4)
        raise TorrentError(f"seeding {h.status().name} did not start within {timeout:.0f} s")

    def torrent_file(self, infohash: str) -> bytes:
        """The bencoded .torrent of a torrent this session has metadata for (for clients that
        prefer a file to a magnet)."""
        h = self._handle(infohash)
        ti = h.torrent_file()
        if ti is None:
            raise TorrentError(f"no metadata yet for {infohash}")
        return lt.bencode(lt.create_torrent(ti).generate())

    def _handle(self, infohash: str) -> lt.torrent_handle:
        with self._lock:
            h = self._handles.get(infohash)
        if h is None or not h.is_valid():
            raise TorrentError(f"no torrent {infohash} in this session")
        return h

    def connect(self, infohash: str, peers: Iterable[Peer]) -> None:
        """Ask the torrent to connect to these peers (e.g. a fetcher that is listening)."""
        h = self._handle(infohash)
        for p in peers:
            h.connect_peer(p)

    def remove(self, infohash: str, delete_files: bool = False) -> None:
        """Stop seeding/fetching a torrent and forget its resume data."""
        with self._lock:
            h = self._handles.pop(infohash, None)
        if h is not None and h.is_valid():
            self._session.remove_torrent(h, lt.session.delete_files if delete_files else 0)
        (self._resume_dir / f"{infohash}.resume").unlink(missing_ok=True)

    def stats(self, infohash: str) -> lt.torrent_status:
        return self._handle(infohash).status()

    # ---- fetching ---------------------------------------------------------------------------

    def fetch(self, magnet: str, dest: Path | str, content_hash: bytes | str, *,
              peers: Iterable[Peer] = (), timeout: float = 600.0,
              stall_timeout: float = 30.0, progress: Progress | None = None,
              max_bytes: int | None = None, keep_seeding: bool = True) -> Path:
        """Download the magnet's file and put it at ``dest`` once its SHA-256 matches.

        ``dest`` is a file path. ``max_bytes`` refuses a torrent announcing a bigger file (the
        size is known from the job's manifest) before any payload is downloaded. Raises
        FetchTimeout (nothing received for ``stall_timeout`` s, or not done in ``timeout`` s;
        partial data stays under ``<state>/partial`` for a later retry), ContentHashMismatch
        (the partial data is deleted) or TorrentError.
        """
        expected = normalize_hash(content_hash)
        dest = Path(dest)
        if dest.is_file() and sha256_file(dest) == expected:
            return dest
        try:
            atp = lt.parse_magnet_uri(magnet)
        except Exception as e:  # noqa: BLE001 - libtorrent raises RuntimeError subtypes
            raise TorrentError(f"not a valid magnet link: {magnet[:80]!r}: {e}") from None
        peers = list(peers) + [tuple(p) for p in atp.peers]
        key = _key(atp.info_hashes)
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:  # two threads fetching one artifact: the second finds it in place
            if dest.is_file() and sha256_file(dest) == expected:
                return dest
            h = self._fetch_handle(key, atp)
            ti = self._wait(h, key, peers, timeout, stall_timeout, progress, max_bytes)
            return self._finish(h, key, ti, dest, expected, keep_seeding)

    def _fetch_handle(self, key: str, atp: lt.add_torrent_params) -> lt.torrent_handle:
        with self._lock:
            h = self._handles.get(key)
        if h is not None and h.is_valid():
            h.resume()
            return h
        atp.save_path = str(self._partial_dir / key)
        atp.flags &= ~lt.torrent_flags.paused
        atp.flags |= lt.torrent_flags.auto_managed
        return self._add(atp)

    def _wait(self, h: lt.torrent_handle, key: str, peers: list[Peer], timeout: float,
              stall_timeout: float, progress: Progress | None,
              max_bytes: int | None) -> lt.torrent_info:
        start = last_progress = time.monotonic()
        last_mark: tuple[bool, int] = (False, -1)
        last_connect = 0.0
        while True:
            now = time.monotonic()
            st = self._status(h, key)
            with self._lock:
                err = self._errors.get(key)
            if err or st.errc.value():
                raise TorrentError(f"torrent {key} failed: {err or st.errc.message()}")
            done = st.total_wanted_done
            if st.state in _CHECKING:  # resume data being applied: done is not known yet
                last_progress = now
            elif (st.has_metadata, done) != last_mark:  # metadata arriving counts as progress
                last_mark, last_progress = (st.has_metadata, done), now
                if st.has_metadata:
                    self._check_size(h, key, st, max_bytes)
                    if progress is not None:
                        progress(done, st.total_wanted)
            if st.is_seeding or (st.has_metadata and st.state == lt.torrent_status.seeding):
                return h.torrent_file()
            if now - last_connect > RECONNECT_EVERY_S and st.num_peers == 0:
                for p in peers:
                    with contextlib.suppress(RuntimeError):  # removed meanwhile: next status()
                        h.connect_peer(p)
                last_connect = now
            if now - last_progress > stall_timeout:
                raise FetchTimeout(self._stall_message(key, st, peers, stall_timeout))
            if now - start > timeout:
                raise FetchTimeout(f"fetch of {key} not complete after {timeout:.0f} s "
                                   f"({done}/{st.total_wanted} bytes)")
            time.sleep(POLL_S)

    @staticmethod
    def _status(h: lt.torrent_handle, key: str) -> lt.torrent_status:
        """The fetch's status; a TorrentError (not libtorrent's "invalid torrent handle"
        RuntimeError) if the torrent was removed meanwhile (``remove``, or ``close``)."""
        try:
            if h.is_valid():
                return h.status()
        except RuntimeError:
            pass
        raise TorrentError(f"torrent {key} was removed from this session while fetching it")

    def _check_size(self, h: lt.torrent_handle, key: str, st: lt.torrent_status,
                    max_bytes: int | None) -> None:
        if max_bytes is not None and st.total_wanted > max_bytes:
            self.remove(key)
            self._wait_gone(h)  # removal is asynchronous: no late write after the rmtree
            shutil.rmtree(self._partial_dir / key, ignore_errors=True)
            raise TorrentError(f"torrent {key} announces {st.total_wanted} bytes, more than the "
                               f"{max_bytes} expected; refused before downloading")

    @staticmethod
    def _stall_message(key: str, st: lt.torrent_status, peers: list[Peer], s: float) -> str:
        where = ", ".join(f"{h}:{p}" for h, p in peers) or "no peers given (and DHT is off?)"
        what = ("metadata" if not st.has_metadata
                else f"data ({st.total_wanted_done}/{st.total_wanted} bytes so far)")
        return (f"fetch of {key}: no {what} received for {s:.0f} s from {where}; "
                f"the seeder may be down (partial data is kept for a retry)")

    def _finish(self, h: lt.torrent_handle, key: str, ti: lt.torrent_info, dest: Path,
                expected: bytes, keep_seeding: bool) -> Path:
        """Verify the completed download's hash, then move it into place (and seed it)."""
        part = self._partial_dir / key / ti.layout().file_path(0)
        self.remove(key)
        self._wait_gone(h)
        got = sha256_file(part)
        if got != expected:
            shutil.rmtree(self._partial_dir / key, ignore_errors=True)
            raise ContentHashMismatch(
                f"content of {key} has SHA-256 {got.hex()}, expected {expected.hex()} "
                f"(the magnet does not match the hash on chain); the download was discarded")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, dest)
        shutil.rmtree(self._partial_dir / key, ignore_errors=True)
        if keep_seeding:
            self._seed_verified(ti, dest)
        return dest

    def _seed_verified(self, ti: lt.torrent_info, path: Path) -> None:
        """Seed a verified download under its original infohash, from its final name."""
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = str(path.parent)
        if ti.layout().file_path(0) != path.name:
            atp.renamed_files = {0: path.name}
        atp.flags = lt.torrent_flags.seed_mode | lt.torrent_flags.auto_managed
        self._add(atp).save_resume_data(lt.torrent_handle.save_info_dict)

    @staticmethod
    def _wait_gone(h: lt.torrent_handle, timeout: float = 5.0) -> None:
        """libtorrent removes torrents asynchronously; wait so its file handles are closed."""
        deadline = time.monotonic() + timeout
        while h.is_valid() and time.monotonic() < deadline:
            time.sleep(POLL_S / 5)

    # ---- lifecycle --------------------------------------------------------------------------

    def close(self, save: bool = True) -> None:
        """Persist resume data (bounded wait) and stop the session."""
        if self._closed.is_set():
            return
        if save:
            with contextlib.suppress(Exception):
                self.save_state()
        self._closed.set()
        self._alert_thread.join(timeout=2.0)
        with self._lock:
            self._handles.clear()
        del self._session

    def __enter__(self) -> TorrentSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
