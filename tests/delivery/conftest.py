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
        path = tmp_path / name
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 8 << 20)
                f.write(os.urandom(n))
                left -= n
        return path

    return make
