"""A node's identity: one encrypted Ethereum keystore file (the standard scrypt/AES JSON).

The same secp256k1 key signs the node's transactions and decrypts the artifact keys other nodes
wrap for it (ECIES), so its 64-byte public key is what the node registers on chain. The password
comes from an environment variable (``MORPHWARE_PASSWORD`` by default) or an interactive prompt;
neither the password nor the private key is ever printed or logged.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD_ENV = "MORPHWARE_PASSWORD"


class KeystoreError(RuntimeError):
    """The keystore is missing, malformed, or the password is wrong."""


@dataclass(frozen=True)
class NodeKey:
    """A decrypted node key. ``repr`` hides the secret so it cannot leak into logs."""

    address: str
    private_key: bytes = field(repr=False)

    @property
    def public_key(self) -> bytes:
        """The 64-byte uncompressed secp256k1 public key (no 0x04 prefix)."""
        from eth_keys import keys

        return keys.PrivateKey(self.private_key).public_key.to_bytes()

    @property
    def private_key_hex(self) -> str:
        return "0x" + self.private_key.hex()


def create_keystore(path: str | Path, password: str, private_key: bytes | None = None,
                    *, overwrite: bool = False, scrypt_n: int | None = None) -> NodeKey:
    """Write a new keystore (a fresh random key unless ``private_key`` is given); mode 0600.
    ``scrypt_n`` lowers the KDF cost (a power of two; tests and throwaway devnet keys only)."""
    from eth_account import Account

    path = Path(path)
    if path.exists() and not overwrite:
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key")
    if not password:
        raise KeystoreError("an empty password would leave the key unprotected")
    acct = Account.from_key(private_key) if private_key is not None else Account.create()
    blob = Account.encrypt(acct.key, password, iterations=scrypt_n)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(blob, f)
    os.replace(tmp, path)
    return NodeKey(address=acct.address, private_key=bytes(acct.key))


def keystore_address(path: str | Path) -> str:
    """The address a keystore holds, read without the password."""
    from eth_utils import to_checksum_address

    blob = _read(Path(path))
    if "address" not in blob:
        raise KeystoreError(f"{path}: keystore has no address field")
    return to_checksum_address("0x" + str(blob["address"]).removeprefix("0x"))


def load_keystore(path: str | Path, password: str) -> NodeKey:
    """Decrypt a keystore; a wrong password is a KeystoreError (never the raw crypto error)."""
    from eth_account import Account

    path = Path(path)
    blob = _read(path)
    try:
        key = Account.decrypt(blob, password)
    except ValueError as e:
        raise KeystoreError(f"{path}: wrong password or corrupted keystore") from e
    return NodeKey(address=Account.from_key(key).address, private_key=bytes(key))


def resolve_password(env_var: str = PASSWORD_ENV, *, confirm: bool = False) -> str:
    """The password from ``env_var``, else a prompt on the terminal (twice if ``confirm``)."""
    pw = os.environ.get(env_var)
    if pw:
        return pw
    if not sys.stdin.isatty():
        raise KeystoreError(f"no password: set ${env_var} or run on a terminal to be prompted")
    pw = getpass.getpass("keystore password: ")
    if confirm and getpass.getpass("repeat password: ") != pw:
        raise KeystoreError("passwords differ")
    return pw


def _read(path: Path) -> dict:
    if not path.is_file():
        raise KeystoreError(f"{path}: no keystore file (create one with `morphware keys new`)")
    try:
        blob = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise KeystoreError(f"{path}: not a keystore JSON file ({e})") from e
    if not isinstance(blob, dict) or "crypto" not in blob and "Crypto" not in blob:
        raise KeystoreError(f"{path}: not an Ethereum keystore (no crypto section)")
    return blob
