"""Bundles of artifact keys wrapped for one recipient.

A job has several artifacts (model, training set, recipe; the test set; the trained model), each
with its own AES key. A recipient gets the keys it may use as one blob: a JSON object mapping the
artifact name to its key wrapped (ECIES) for the recipient's public key. Tampering with any entry
fails its ECIES authentication; an unexpected shape is refused before any decryption.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from morphware.runtime.delivery import crypto

MAX_BUNDLE = 16 * 1024


class KeyBundleError(ValueError):
    """A key bundle that is malformed or not for this node."""


def wrap_bundle(keys: Mapping[str, bytes], pubkey: bytes | str) -> bytes:
    """``keys`` (artifact name -> 32-byte key) wrapped for ``pubkey``, as compact JSON bytes."""
    body = {name: crypto.wrap_key(key, pubkey).hex() for name, key in sorted(keys.items())}
    return json.dumps(body, separators=(",", ":")).encode()


def unwrap_bundle(blob: bytes, private_key: bytes) -> dict[str, bytes]:
    """The artifact keys of a bundle; raises KeyBundleError if any entry is not ours."""
    if len(blob) > MAX_BUNDLE:
        raise KeyBundleError(f"key bundle of {len(blob)} bytes exceeds {MAX_BUNDLE}")
    try:
        body = json.loads(blob.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeyBundleError(f"key bundle is not JSON: {e}") from e
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise KeyBundleError("key bundle must map artifact names to hex strings")
    try:
        return {name: crypto.unwrap_key(bytes.fromhex(w), private_key)
                for name, w in body.items()}
    except (ValueError, crypto.KeyWrapError) as e:
        raise KeyBundleError(f"cannot unwrap key bundle: {e}") from e
