"""The delivery API a node calls: publish an artifact encrypted, fetch and decrypt one.

Flow (docs/delivery.md):

1. The requester ``publish``es each artifact: a fresh AES-256-GCM key encrypts it, the
   ciphertext is seeded, and the key is wrapped (ECIES) for any recipients known already.
   ``Published.magnet`` and ``Published.content_hash`` (SHA-256 of the *ciphertext*, 32 bytes)
   go on chain; anyone may download the ciphertext, so workers prefetch during the auction.
2. After the auction the requester wraps the key for the winner (``wrap_key``; the test set's key
   only for validators) and releases the wrapped key.
3. The recipient ``fetch``es: the download is checked against the content hash from chain
   before it is used, then decrypted with the unwrapped key. Any mismatch is an error; nothing
   unverified or partially decrypted is left where a caller would take it for complete.

Layout under ``node_dir/delivery``: ``torrents/`` (libtorrent state: resume data, partial
downloads), ``store/<content-hash>/<name>.enc`` (ciphertexts, seeded), ``plain/<content-hash>/
<name>`` (decrypted artifacts).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from morphware.runtime.delivery import crypto
from morphware.runtime.delivery.torrent import (
    Peer,
    Progress,
    TorrentSession,
    normalize_hash,
    sha256_file,
)

log = logging.getLogger(__name__)

ENC_SUFFIX = ".enc"


@dataclass(frozen=True)
class Published:
    """What publishing one artifact produced. ``key`` is secret; the rest may be public."""

    magnet: str
    content_hash: bytes  # SHA-256 of the ciphertext: what the chain records
    key: bytes = field(repr=False)
    wrapped_keys: dict[bytes, bytes]  # recipient's 64-byte public key -> ECIES-wrapped key
    size: int  # ciphertext bytes
    path: Path  # the seeded ciphertext

    @property
    def content_hash_hex(self) -> str:
        return self.content_hash.hex()


def wrap_key(key: bytes, pubkey: bytes | str) -> bytes:
    """Wrap an artifact key for a recipient's 64-byte secp256k1 public key (ECIES)."""
    return crypto.wrap_key(key, pubkey)


def _magnet_name(magnet: str) -> str:
    """The file name a magnet announces (``dn``), made safe to use as a path component."""
    dn = parse_qs(urlparse(magnet).query).get("dn", ["artifact.enc"])[0]
    name = Path(dn).name.strip() or "artifact.enc"
    return name if name not in (".", "..") else "artifact.enc"


class Delivery:
    """One node's delivery service; safe to call from several threads."""

    def __init__(self, node_dir: Path | str, *, listen: str = "127.0.0.1:0", dht: bool = False,
                 advertise: Iterable[Peer] | None = None,
                 private_key: bytes | str | None = None,
                 upload_rate_limit: int = 0) -> None:
        """``advertise``: the addresses put in magnets as ``x.pe`` peer hints; by default this
        node's loopback address when it listens on loopback, none otherwise (use DHT)."""
        self.root = Path(node_dir) / "delivery"
        self._store = self.root / "store"
        self._plain = self.root / "plain"
        self._private_key = private_key
        self.torrents = TorrentSession(self.root / "torrents", listen=listen, dht=dht,
                                       upload_rate_limit=upload_rate_limit)
        host = listen.rsplit(":", 1)[0]
        if advertise is None:
            advertise = [(host, self.listen_port)] if host.startswith("127.") else []
        self._advertise = list(advertise)

    @property
    def listen_port(self) -> int:
        return self.torrents.listen_port

    @property
    def address(self) -> Peer:
        """(host, port) other nodes on this network connect to."""
        return self._advertise[0] if self._advertise else ("127.0.0.1", self.listen_port)

    # ---- requester side -----------------------------------------------------------------

    def publish(self, path: Path | str, recipients: Iterable[bytes | str] = ()) -> Published:
        """Encrypt ``path`` with a fresh key, seed the ciphertext, wrap the key for each
        recipient's public key."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"cannot publish {path}: no such file")
        key = crypto.new_key()
        staging = self._store / f".staging-{os.getpid()}-{id(key):x}"
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f"{path.name}{ENC_SUFFIX}"
        try:
            size = crypto.encrypt_file(path, tmp, key)
            content_hash = sha256_file(tmp)
            final_dir = self._store / content_hash.hex()
            final_dir.mkdir(parents=True, exist_ok=True)
            final = final_dir / tmp.name
            os.replace(tmp, final)
        finally:
            for p in staging.glob("*"):
                p.unlink(missing_ok=True)
            staging.rmdir()
        seeded = self.torrents.seed(final, peers=self._advertise)
        wrapped = {crypto.normalize_pubkey(pk): crypto.wrap_key(key, pk) for pk in recipients}
        log.info("published %s as %s (%d bytes)", path.name, content_hash.hex()[:16], size)
        return Published(magnet=seeded.magnet, content_hash=content_hash, key=key,
                         wrapped_keys=wrapped, size=size, path=final)

    @staticmethod
    def wrap_key(key: bytes, pubkey: bytes | str) -> bytes:
        """Wrap a published artifact's key for a recipient found later (the auction's winner)."""
        return wrap_key(key, pubkey)

    # ---- recipient side -----------------------------------------------------------------

    def fetch_ciphertext(self, magnet: str, content_hash: bytes | str, *,
                         peers: Iterable[Peer] = (), timeout: float = 600.0,
                         stall_timeout: float = 30.0, progress: Progress | None = None,
                         max_bytes: int | None = None) -> Path:
        """Download and verify the ciphertext (no key needed: workers prefetch during the
        auction). The returned file's SHA-256 equals ``content_hash``. ``max_bytes`` (e.g. the
        ``crypto.ciphertext_size`` of the manifest's size) refuses a bigger torrent up front."""
        digest = normalize_hash(content_hash)
        dest = self._store / digest.hex() / _magnet_name(magnet)
        return self.torrents.fetch(magnet, dest, digest, peers=peers, timeout=timeout,
                                   stall_timeout=stall_timeout, progress=progress,
                                   max_bytes=max_bytes)

    def decrypt(self, ciphertext: Path | str, key: bytes | None = None, *,
                wrapped_key: bytes | None = None, private_key: bytes | str | None = None,
                dest: Path | str | None = None) -> Path:
        """Decrypt a fetched ciphertext with ``key`` or with ``wrapped_key`` unwrapped by
        ``private_key`` (or this node's). Raises crypto.DecryptionError / KeyWrapError."""
        key = self._resolve_key(key, wrapped_key, private_key)
        ciphertext = Path(ciphertext)
        if dest is None:
            name = ciphertext.name.removesuffix(ENC_SUFFIX) or "artifact"
            dest = self._plain / ciphertext.parent.name / name
        crypto.decrypt_file(ciphertext, Path(dest), key)
        return Path(dest)

    def fetch(self, magnet: str, content_hash: bytes | str, key: bytes | None = None, *,
              wrapped_key: bytes | None = None, private_key: bytes | str | None = None,
              peers: Iterable[Peer] = (), timeout: float = 600.0, stall_timeout: float = 30.0,
              progress: Progress | None = None, dest: Path | str | None = None,
              max_bytes: int | None = None) -> Path:
        """Fetch by magnet, verify against ``content_hash`` (from chain), decrypt; returns the
        plaintext path. Give ``key``, or ``wrapped_key`` (+ ``private_key`` unless the node was
        built with one). The key is checked first, so a wrong key costs no download."""
        resolved = self._resolve_key(key, wrapped_key, private_key)
        ct = self.fetch_ciphertext(magnet, content_hash, peers=peers, timeout=timeout,
                                   stall_timeout=stall_timeout, progress=progress,
                                   max_bytes=max_bytes)
        return self.decrypt(ct, resolved, dest=dest)

    def _resolve_key(self, key: bytes | None, wrapped_key: bytes | None,
                     private_key: bytes | str | None) -> bytes:
        if key is not None:
            if wrapped_key is not None:
                raise ValueError("give either key or wrapped_key, not both")
            return key
        if wrapped_key is None:
            raise ValueError("decrypting needs key= or wrapped_key= (use fetch_ciphertext to "
                             "download without a key)")
        pk = private_key if private_key is not None else self._private_key
        if pk is None:
            raise ValueError("wrapped_key needs private_key= (or Delivery(private_key=...))")
        return crypto.unwrap_key(wrapped_key, pk)

    def wrapped_for(self, published: Published, pubkeys: Iterable[bytes | str]
                    ) -> Mapping[bytes, bytes]:
        """Wrap a published artifact's key for several recipients at once."""
        return {crypto.normalize_pubkey(pk): crypto.wrap_key(published.key, pk) for pk in pubkeys}

    # ---- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Save resume data and stop seeding."""
        self.torrents.close()

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
