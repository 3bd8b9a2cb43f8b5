"""The public description of a job that travels on chain with ``post_job``.

The ``artifacts`` string of the post (event data only, at most 2048 characters) is compact JSON
holding the public manifest (model cost figures, data sizes, ops, metric, recipe summary), the
requester's encryption public key (the worker wraps the trained model's key for it) and, per
artifact, its magnet and the SHA-256 of its ciphertext. When the JSON is longer than the limit it
is sent zlib-compressed and base64-encoded with a ``z:`` prefix. The event also carries
``manifest_hash`` = SHA-256 of the canonical manifest JSON; a worker checks the two agree before
trusting a single figure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

METADATA_VERSION = 1
MAX_CHARS = 2048
ARTIFACTS_FOR_WINNER = ("model", "train", "recipe")
ARTIFACTS_FOR_VALIDATORS = ("test",)


class MetadataError(ValueError):
    """Job metadata that is malformed or does not match the manifest hash on chain."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def manifest_hash(manifest: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical(manifest)).digest()


@dataclass(frozen=True)
class ArtifactRef:
    magnet: str
    content_hash: bytes


@dataclass(frozen=True)
class JobMetadata:
    """What a worker or validator learns about a job before holding any key."""

    name: str
    manifest: dict[str, Any]
    artifacts: dict[str, ArtifactRef]
    requester_pubkey: bytes

    def encode(self) -> str:
        """The on-chain string; raises MetadataError if even compressed it is too long."""
        plain = canonical({
            "v": METADATA_VERSION,
            "name": self.name,
            "pk": self.requester_pubkey.hex(),
            "manifest": self.manifest,
            "artifacts": {k: {"magnet": a.magnet, "hash": a.content_hash.hex()}
                          for k, a in sorted(self.artifacts.items())},
        }).decode()
        if len(plain) <= MAX_CHARS:
            return plain
        packed = "z:" + base64.b64encode(zlib.compress(plain.encode(), 9)).decode()
        if len(packed) > MAX_CHARS:
            raise MetadataError(f"job metadata is {len(packed)} characters compressed; the "
                                f"chain takes {MAX_CHARS}: shorten the manifest")
        return packed

    @staticmethod
    def decode(text: str, expected_hash: bytes | None = None) -> JobMetadata:
        """Parse and, with ``expected_hash`` (from chain), authenticate the manifest."""
        try:
            if text.startswith("z:"):
                text = zlib.decompress(base64.b64decode(text[2:]), bufsize=1 << 16).decode()
            d = json.loads(text)
            if d.get("v") != METADATA_VERSION:
                raise MetadataError(f"metadata version {d.get('v')!r}, expected "
                                    f"{METADATA_VERSION}")
            manifest = d["manifest"]
            arts = {k: ArtifactRef(str(v["magnet"]), bytes.fromhex(v["hash"]))
                    for k, v in d["artifacts"].items()}
            meta = JobMetadata(name=str(d["name"]), manifest=dict(manifest), artifacts=arts,
                               requester_pubkey=bytes.fromhex(d["pk"]))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
                AttributeError, ValueError, zlib.error) as e:
            if isinstance(e, MetadataError):
                raise
            raise MetadataError(f"malformed job metadata: {e}") from e
        missing = [a for a in ARTIFACTS_FOR_WINNER + ARTIFACTS_FOR_VALIDATORS
                   if a not in meta.artifacts]
        if missing:
            raise MetadataError(f"job metadata lacks artifact(s) {missing}")
        if expected_hash is not None and manifest_hash(meta.manifest) != expected_hash:
            raise MetadataError("manifest does not match the manifest hash on chain")
        return meta
