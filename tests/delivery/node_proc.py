"""A delivery node in its own process, for the multi-process tests (not a test module).

    python node_proc.py publish NODE_DIR FILE PUBKEY_HEX   -> one JSON line, then seeds until
                                                             stdin closes
    python node_proc.py fetch NODE_DIR MAGNET HASH WRAPPED_HEX PRIVKEY_HEX
                                                          -> JSON {path, sha256}
    python node_proc.py thief NODE_DIR MAGNET HASH WRAPPED_HEX
                                                          -> JSON {ciphertext_ok, refused}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from eth_account import Account
from morphware.runtime.delivery import Delivery
from morphware.runtime.delivery.crypto import DecryptionError, KeyWrapError, new_key
from morphware.runtime.delivery.torrent import sha256_file


def _say(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def publish(node_dir: str, file: str, pubkey_hex: str) -> None:
    with Delivery(node_dir) as d:
        t0 = time.monotonic()
        p = d.publish(Path(file), [bytes.fromhex(pubkey_hex)])
        _say({"magnet": p.magnet, "hash": p.content_hash_hex, "port": d.listen_port,
              "wrapped": p.wrapped_keys[bytes.fromhex(pubkey_hex)].hex(),
              "publish_s": time.monotonic() - t0})
        sys.stdin.read()  # seed until the test closes our stdin


def fetch(node_dir: str, magnet: str, content_hash: str, wrapped_hex: str, priv_hex: str) -> None:
    with Delivery(node_dir, private_key=bytes.fromhex(priv_hex)) as d:
        t0 = time.monotonic()
        path = d.fetch(magnet, content_hash, wrapped_key=bytes.fromhex(wrapped_hex), timeout=60)
        _say({"path": str(path), "sha256": sha256_file(path).hex(),
              "fetch_s": time.monotonic() - t0})


def thief(node_dir: str, magnet: str, content_hash: str, wrapped_hex: str) -> None:
    """A node that was not given the key: it can download the ciphertext, nothing more."""
    own_key = bytes(Account.create().key)
    with Delivery(node_dir, private_key=own_key) as d:
        ct = d.fetch_ciphertext(magnet, content_hash, timeout=60)
        refused = []
        try:
            d.decrypt(ct, wrapped_key=bytes.fromhex(wrapped_hex))
        except KeyWrapError as e:
            refused.append(f"KeyWrapError: {e}")
        try:
            d.decrypt(ct, new_key())
        except DecryptionError as e:
            refused.append(f"DecryptionError: {e}")
        plain = [str(p) for p in (d.root / "plain").rglob("*") if p.is_file()]
        _say({"ciphertext_ok": sha256_file(ct).hex() == content_hash, "refused": refused,
              "plaintext_files": plain})


if __name__ == "__main__":
    {"publish": publish, "fetch": fetch, "thief": thief}[sys.argv[1]](*sys.argv[2:])
