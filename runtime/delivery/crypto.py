"""Artifact encryption: streamed AES-256-GCM per file, ECIES (secp256k1) key wrapping.

Every artifact gets a fresh 256-bit key, so a leaked key exposes one artifact only. Files are
encrypted in chunks (default 1 MiB) so a 200 MB artifact never sits in memory. Each chunk is
authenticated with associated data binding the file header, the chunk's index and a "final"
flag: reordered, dropped, duplicated or appended chunks and a truncated file all fail to decrypt.

Ciphertext layout (all integers big-endian)::

    header  = MAGIC (6 bytes, b"MWENC1") | chunk_size (u32) | nonce_prefix (7 bytes, random)
    chunk_i = AES-GCM(key, nonce = nonce_prefix | i (u32) | final (u8),
                      aad = header | i (u32) | final (u8), plaintext_i) -> len(plaintext_i) + 16

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last (flag 1) holds
0..chunk_size bytes, so an empty file is one empty final chunk.

Keys are wrapped for a recipient with ECIES over secp256k1 using the 64-byte uncompressed public
key of the recipient's Ethereum account (eciespy), so a node needs no second key pair.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import ecies
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"MWENC1"
HEADER_LEN = len(MAGIC) + 4 + 7
TAG_LEN = 16
KEY_LEN = 32
DEFAULT_CHUNK = 1 << 20
MAX_CHUNK = 64 << 20


class DecryptionError(ValueError):
    """Ciphertext that does not authenticate: wrong key, tampered, truncated or reordered."""


class KeyWrapError(ValueError):
    """A wrapped key that cannot be unwrapped with the given private key (or a bad key)."""


def new_key() -> bytes:
    """A fresh random 256-bit AES key."""
    return AESGCM.generate_key(bit_length=256)


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Exact size of the encrypted form of ``plaintext_size`` bytes (header + one tag per
    chunk): what a fetcher may expect before downloading."""
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_LEN + plaintext_size + TAG_LEN * chunks


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_LEN:
        n = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise ValueError(f"an artifact key must be {KEY_LEN} bytes, got {n}")


def _chunk_params(header: bytes, index: int, final: bool) -> tuple[bytes, bytes]:
    """(nonce, aad) for one chunk; distinct per index and flag, so nonces never repeat."""
    tail = struct.pack(">IB", index, 1 if final else 0)
    return header[len(MAGIC) + 4:] + tail, header + tail


def _read_full(f: BinaryIO, n: int) -> bytes:
    """Read exactly n bytes unless EOF comes first (a plain read may return fewer on pipes)."""
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _chunks(f: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """Yield (block, is_last) with one block of lookahead; an empty stream yields one empty block."""
    cur = _read_full(f, size)
    while True:
        nxt = _read_full(f, size) if len(cur) == size else b""
        yield cur, not nxt
        if not nxt:
            return
        cur = nxt


def encrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes, chunk_size: int = DEFAULT_CHUNK
                   ) -> int:
    """Encrypt ``src`` into ``dst``; returns the number of ciphertext bytes written."""
    _check_key(key)
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise ValueError(f"chunk_size must be in 1..{MAX_CHUNK}, got {chunk_size}")
    aead = AESGCM(key)
    header = MAGIC + struct.pack(">I", chunk_size) + os.urandom(7)
    dst.write(header)
    written = len(header)
    for i, (block, last) in enumerate(_chunks(src, chunk_size)):
        nonce, aad = _chunk_params(header, i, last)
        ct = aead.encrypt(nonce, block, aad)
        dst.write(ct)
        written += len(ct)
    return written


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes) -> int:
    """Decrypt ``src`` into ``dst``; returns plaintext bytes written.

    Raises DecryptionError on any authentication failure. ``dst`` may then hold a prefix of
    authenticated chunks, so callers write to a temporary file (see ``decrypt_file``).
    """
    _check_key(key)
    header = _read_full(src, HEADER_LEN)
    if len(header) < HEADER_LEN or not header.startswith(MAGIC):
        raise DecryptionError("not a Morphware encrypted artifact (bad or missing header)")
    (chunk_size,) = struct.unpack(">I", header[len(MAGIC):len(MAGIC) + 4])
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise DecryptionError(f"corrupt header: chunk size {chunk_size}")
    aead = AESGCM(key)
    written = 0
    for i, (block, last) in enumerate(_chunks(src, chunk_size + TAG_LEN)):
        if len(block) < TAG_LEN:
            raise DecryptionError(f"ciphertext truncated in chunk {i}")
        nonce, aad = _chunk_params(header, i, last)
        try:
            pt = aead.decrypt(nonce, block, aad)
        except InvalidTag:
            what = "the file was truncated or tampered with" if last else "tampered with"
            raise DecryptionError(
                f"chunk {i} does not authenticate: wrong key, or {what}") from None
        dst.write(pt)
        written += len(pt)
    return written


def _atomic_write(dst: Path, fill) -> int:
    """Write via a temporary sibling and rename, so a failure leaves no partial ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    tmp = Path(name)  # unique per call: two threads may decrypt the same artifact at once
    try:
        with os.fdopen(fd, "wb") as out:
            n = fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
        return n
    finally:
        tmp.unlink(missing_ok=True)


def encrypt_file(src: Path, dst: Path, key: bytes, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Encrypt a file to ``dst`` (atomically); returns ciphertext size."""
    with open(src, "rb") as f:
        return _atomic_write(Path(dst), lambda out: encrypt_stream(f, out, key, chunk_size))


def decrypt_file(src: Path, dst: Path, key: bytes) -> int:
    """Decrypt a file to ``dst``; on any failure ``dst`` is not created. Returns plaintext size."""
    with open(src, "rb") as f:
        return _atomic_write(Path(dst), lambda out: decrypt_stream(f, out, key))


def encrypt_bytes(data: bytes, key: bytes, chunk_size: int = DEFAULT_CHUNK) -> bytes:
    """In-memory variant for small payloads."""
    import io

    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key, chunk_size)
    return out.getvalue()


def decrypt_bytes(data: bytes, key: bytes) -> bytes:
    """In-memory variant for small payloads."""
    import io

    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, key)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# key wrapping


def normalize_pubkey(pubkey: bytes | str) -> bytes:
    """A secp256k1 public key as 64 raw bytes (accepts 64/65-byte raw or hex, with or without
    0x/04 prefix): the form an Ethereum account's public key is usually given in."""
    if isinstance(pubkey, str):
        s = pubkey.removeprefix("0x")
        try:
            pubkey = bytes.fromhex(s)
        except ValueError:
            raise KeyWrapError(f"public key is not hex: {pubkey[:20]!r}...") from None
    if len(pubkey) == 65 and pubkey[0] == 4:
        pubkey = pubkey[1:]
    if len(pubkey) != 64:
        raise KeyWrapError(f"a recipient public key must be 64 bytes (uncompressed secp256k1, "
                           f"no prefix), got {len(pubkey)}")
    return bytes(pubkey)


def wrap_key(key: bytes, pubkey: bytes | str) -> bytes:
    """Encrypt an artifact key for the holder of ``pubkey``'s private key (ECIES, 129 bytes)."""
    _check_key(key)
    try:
        return ecies.encrypt(normalize_pubkey(pubkey), bytes(key))
    except KeyWrapError:
        raise
    except Exception as e:  # coincurve raises ValueError/TypeError for points off the curve
        raise KeyWrapError(f"cannot wrap for this public key: {e}") from None


def unwrap_key(wrapped: bytes, private_key: bytes | str) -> bytes:
    """Recover an artifact key; raises KeyWrapError for the wrong private key or tampering."""
    if isinstance(private_key, str):
        private_key = bytes.fromhex(private_key.removeprefix("0x"))
    if len(private_key) != 32:
        raise KeyWrapError(f"a private key must be 32 bytes, got {len(private_key)}")
    try:
        key = ecies.decrypt(bytes(private_key), bytes(wrapped))
    except Exception:  # eciespy raises ValueError("MAC check failed") and others on bad input
        raise KeyWrapError("cannot unwrap the artifact key: it was wrapped for another "
                           "recipient, or it was tampered with") from None
    if len(key) != KEY_LEN:
        raise KeyWrapError(f"unwrapped key has {len(key)} bytes, expected {KEY_LEN}")
    return key


def public_key_of(private_key: bytes | str) -> bytes:
    """The 64-byte public key of a secp256k1 private key (an Ethereum account key)."""
    from coincurve import PrivateKey

    if isinstance(private_key, str):
        private_key = bytes.fromhex(private_key.removeprefix("0x"))
    return PrivateKey(bytes(private_key)).public_key.format(compressed=False)[1:]
