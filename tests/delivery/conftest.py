"""Fixtures for delivery tests: key pairs and random artifacts (in tmp_path, never the repo)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from morphware.runtime.delivery.crypto import public_key_of


@pytest.fixture
def keypair() -> tuple[bytes, bytes]:
    """(private key, 64-byte public key) of a fresh Ethereum account."""
    priv = bytes(Account.create().key)
    return priv, public_key_of(priv)


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[int, str], Path]:
    """Write ``size`` random bytes to tmp_path/name."""

    def make(size: int, name: str = "artifact.bin") -> Path:
        # one random 8 MiB block, each copy stamped with its index: distinct blocks (no two
        # pieces alike) without paying for 200 MB of os.urandom
        block = bytearray(os.urandom(min(size, 8 << 20)))
        path = tmp_path / name
        with open(path, "wb") as f:
            left, i = size, 0
            while left:
                block[:8] = i.to_bytes(8, "big")
                n = min(left, len(block))
                f.write(block[:n])
                left, i = left - n, i + 1
        return path

    return make
