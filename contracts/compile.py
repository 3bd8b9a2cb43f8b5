"""Compile the Vyper sources in ``contracts/vyper`` with the ``vyper`` package, cached by source hash.

Compiling the market takes about a second; tests and nodes deploy often, so ABI + bytecode are kept
in a JSON cache keyed by the hash of every source file and the compiler version.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VYPER_DIR = Path(__file__).resolve().parent / "vyper"
CONTRACTS = ("token", "market")

_lock = threading.Lock()
_memo: dict[str, Artifact] = {}


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI and creation bytecode (0x-prefixed hex)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def cache_dir() -> Path:
    """$MORPHWARE_CACHE/contracts, else ~/.cache/morphware/contracts."""
    root = os.environ.get("MORPHWARE_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "morphware"
    return base / "contracts"


def source_hash() -> str:
    """Hash of every .vy source plus the compiler version: the cache key."""
    import vyper

    h = hashlib.sha256(vyper.__version__.encode())
    for path in sorted(VYPER_DIR.glob("*.vy")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def _compile(name: str) -> Artifact:
    import vyper
    from vyper.cli.vyper_compile import get_search_paths
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import Settings

    path = VYPER_DIR / f"{name}.vy"
    if not path.is_file():
        raise FileNotFoundError(f"no Vyper source for contract {name!r} at {path}")
    bundle = FilesystemInputBundle([VYPER_DIR, *get_search_paths()])
    out = vyper.compile_code(
        path.read_text(),
        contract_path=path,
        input_bundle=bundle,
        output_formats=["abi", "bytecode"],
        settings=Settings(evm_version="cancun"),
    )
    return Artifact(name=name, abi=out["abi"], bytecode=out["bytecode"])


def load_artifact(name: str) -> Artifact:
    """The compiled contract ``name`` ("token" or "market"), from memory, disk cache or vyper."""
    if name not in CONTRACTS:
        raise ValueError(f"unknown contract {name!r}; expected one of {CONTRACTS}")
    key = f"{name}-{source_hash()}"
    with _lock:
        if key in _memo:
            return _memo[key]
        file = cache_dir() / f"{key}.json"
        art: Artifact | None = None
        if file.is_file():
            try:
                data = json.loads(file.read_text())
                art = Artifact(name=name, abi=data["abi"], bytecode=data["bytecode"])
            except (ValueError, KeyError):
                art = None  # a corrupt cache entry is rebuilt below
        if art is None:
            art = _compile(name)
            file.parent.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"abi": art.abi, "bytecode": art.bytecode}))
            tmp.replace(file)
        _memo[key] = art
        return art
