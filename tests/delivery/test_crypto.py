"""Chunked AES-GCM and ECIES key wrapping: round trips, and every kind of tampering detected."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from morphware.runtime.delivery import crypto
from morphware.runtime.delivery.crypto import (
    HEADER_LEN,
    TAG_LEN,
    DecryptionError,
    KeyWrapError,
    ciphertext_size,
    decrypt_bytes,
    decrypt_file,
    encrypt_bytes,
    encrypt_file,
    new_key,
    unwrap_key,
    wrap_key,
)

CHUNK = 64


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 7])
def test_round_trip(size: int) -> None:
    key, data = new_key(), os.urandom(size)
    ct = encrypt_bytes(data, key, chunk_size=CHUNK)
    n_chunks = max(1, -(-size // CHUNK))
    assert len(ct) == HEADER_LEN + size + TAG_LEN * n_chunks == ciphertext_size(size, CHUNK)
    assert decrypt_bytes(ct, key) == data


def test_fresh_nonce_prefix_each_time() -> None:
    key, data = new_key(), b"x" * 100
    assert encrypt_bytes(data, key) != encrypt_bytes(data, key)
    assert new_key() != new_key() and len(new_key()) == 32


def _chunks(ct: bytes, chunk: int = CHUNK) -> tuple[bytes, list[bytes]]:
    body = ct[HEADER_LEN:]
    step = chunk + TAG_LEN
    return ct[:HEADER_LEN], [body[i:i + step] for i in range(0, len(body), step)]


def test_wrong_key() -> None:
    ct = encrypt_bytes(b"secret model", new_key())
    with pytest.raises(DecryptionError, match="wrong key"):
        decrypt_bytes(ct, new_key())


def test_flipped_byte_anywhere_is_detected() -> None:
    key = new_key()
    ct = encrypt_bytes(os.urandom(3 * CHUNK + 5), key, chunk_size=CHUNK)
    for pos in (HEADER_LEN - 1, HEADER_LEN + 3, len(ct) // 2, len(ct) - 1):
        bad = bytearray(ct)
        bad[pos] ^= 0x01
        with pytest.raises(DecryptionError):
            decrypt_bytes(bytes(bad), key)


def test_truncation_at_chunk_boundary_is_detected() -> None:
    key = new_key()
    header, chunks = _chunks(encrypt_bytes(os.urandom(4 * CHUNK), key, chunk_size=CHUNK))
    assert len(chunks) == 4
    with pytest.raises(DecryptionError, match="truncated"):
        decrypt_bytes(header + b"".join(chunks[:2]), key)
    with pytest.raises(DecryptionError, match="truncated"):
        decrypt_bytes(header + chunks[0][:5], key)
    with pytest.raises(DecryptionError, match="header"):
        decrypt_bytes(header[:5], key)


def test_reordered_duplicated_or_appended_chunks_are_detected() -> None:
    key = new_key()
    header, chunks = _chunks(encrypt_bytes(os.urandom(3 * CHUNK), key, chunk_size=CHUNK))
    for body in ([chunks[1], chunks[0], chunks[2]], [chunks[0], chunks[0], chunks[1], chunks[2]],
                 chunks + [chunks[2]]):
        with pytest.raises(DecryptionError):
            decrypt_bytes(header + b"".join(body), key)


def test_chunks_from_another_file_are_refused() -> None:
    """The header (with its random nonce prefix) is bound into every chunk."""
    key = new_key()
    h1, c1 = _chunks(encrypt_bytes(os.urandom(2 * CHUNK), key, chunk_size=CHUNK))
    h2, c2 = _chunks(encrypt_bytes(os.urandom(2 * CHUNK), key, chunk_size=CHUNK))
    with pytest.raises(DecryptionError):
        decrypt_bytes(h1 + c2[0] + c1[1], key)


def test_bad_header() -> None:
    key = new_key()
    with pytest.raises(DecryptionError, match="not a Morphware encrypted artifact"):
        decrypt_bytes(b"PK\x03\x04" + b"\0" * 40, key)
    bogus = crypto.MAGIC + struct.pack(">I", 0) + b"\0" * 7
    with pytest.raises(DecryptionError, match="chunk size"):
        decrypt_bytes(bogus, key)


def test_bad_key_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encrypt_bytes(b"x", b"short")


def test_decrypt_file_leaves_nothing_on_failure(tmp_path: Path) -> None:
    src, enc, out = tmp_path / "a", tmp_path / "a.enc", tmp_path / "a.out"
    src.write_bytes(os.urandom(10_000))
    key = new_key()
    encrypt_file(src, enc, key, chunk_size=1024)
    data = bytearray(enc.read_bytes())
    data[-1] ^= 1  # last chunk tampered: earlier chunks decrypt fine before the failure
    enc.write_bytes(bytes(data))
    with pytest.raises(DecryptionError):
        decrypt_file(enc, out, key)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.enc"]  # no temporary left


def test_file_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "m.onnx"
    src.write_bytes(os.urandom(3 * (1 << 20) + 11))
    key = new_key()
    encrypt_file(src, tmp_path / "m.enc", key)
    assert decrypt_file(tmp_path / "m.enc", tmp_path / "m.out", key) == src.stat().st_size
    assert (tmp_path / "m.out").read_bytes() == src.read_bytes()


def test_wrap_unwrap(keypair: tuple[bytes, bytes]) -> None:
    priv, pub = keypair
    key = new_key()
    wrapped = wrap_key(key, pub)
    assert unwrap_key(wrapped, priv) == key
    assert unwrap_key(wrap_key(key, b"\x04" + pub), "0x" + priv.hex()) == key
    assert unwrap_key(wrap_key(key, "0x" + pub.hex()), priv) == key


def test_unwrap_with_wrong_private_key(keypair: tuple[bytes, bytes]) -> None:
    priv, pub = keypair
    wrapped = wrap_key(new_key(), pub)
    with pytest.raises(KeyWrapError, match="another recipient"):
        unwrap_key(wrapped, os.urandom(32))
    tampered = bytearray(wrapped)
    tampered[-3] ^= 0xFF
    with pytest.raises(KeyWrapError):
        unwrap_key(bytes(tampered), priv)


def test_bad_public_keys() -> None:
    with pytest.raises(KeyWrapError, match="64 bytes"):
        wrap_key(new_key(), b"\x02" + b"\x11" * 32)
    with pytest.raises(KeyWrapError, match="not hex"):
        wrap_key(new_key(), "0xzz")
    with pytest.raises(KeyWrapError, match="cannot wrap"):
        wrap_key(new_key(), b"\x00" * 64)  # not a point on secp256k1
