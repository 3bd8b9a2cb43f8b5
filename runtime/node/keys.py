"""Bundles of artifact keys wrapped for one recipient.

A job has several artifacts (model, training set, recipe; the test set; the trained model), each
with its own AES key. A recipient gets the keys it may use as one blob, compact because it goes
into event data (the contract caps a winner's blob at 1024 bytes and a validator's at 256)::

    repeat: name length (u8) | name (ascii) | wrapped length (u16, big-endian) | wrapped key

where each wrapped key is the artifact key ECIES-encrypted for the recipient's public key (129
bytes). Tampering with an entry fails its ECIES authentication; a malformed blob is refused
before any decryption.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from morphware.runtime.delivery import crypto

MAX_BUNDLE = 4096


class KeyBundleError(ValueError):
    """A key bundle that is malformed or not for this node."""


def wrap_bundle(keys: Mapping[str, bytes], pubkey: bytes | str) -> bytes:
    """``keys`` (artifact name -> 32-byte key) wrapped for ``pubkey``."""
    out = bytearray()
    for name, key in sorted(keys.items()):
        raw = name.encode("ascii")
        if not 0 < len(raw) < 256:
            raise KeyBundleError(f"artifact name {name!r} must be 1..255 ASCII characters")
        wrapped = crypto.wrap_key(key, pubkey)
        out += struct.pack(">B", len(raw)) + raw + struct.pack(">H", len(wrapped)) + wrapped
    return bytes(out)


def _entries(blob: bytes) -> dict[str, bytes]:
    if len(blob) > MAX_BUNDLE:
        raise KeyBundleError(f"key bundle of {len(blob)} bytes exceeds {MAX_BUNDLE}")
    out, i = {}, 0
    while i < len(blob):
        try:
            (n,) = struct.unpack_from(">B", blob, i)
            name = blob[i + 1:i + 1 + n].decode("ascii")
            (m,) = struct.unpack_from(">H", blob, i + 1 + n)
        except (struct.error, UnicodeDecodeError) as e:
            raise KeyBundleError(f"malformed key bundle at byte {i}: {e}") from e
        start = i + 3 + n
        if len(name) != n or start + m > len(blob):
            raise KeyBundleError(f"malformed key bundle: entry at byte {i} runs past the end")
        out[name] = blob[start:start + m]
        i = start + m
    if not out:
        raise KeyBundleError("empty key bundle")
    return out


def unwrap_bundle(blob: bytes, private_key: bytes) -> dict[str, bytes]:
    """The artifact keys of a bundle; raises KeyBundleError if any entry is not ours."""
    try:
        return {name: crypto.unwrap_key(w, private_key) for name, w in _entries(blob).items()}
    except crypto.KeyWrapError as e:
        raise KeyBundleError(f"cannot unwrap key bundle: {e}") from e
