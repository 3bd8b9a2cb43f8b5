"""Compile cache and deployment files."""

from __future__ import annotations

import json

import pytest
from morphware.contracts import Deployment, load_artifact
from morphware.contracts import compile as compile_mod

pytestmark = pytest.mark.chain


def test_compile_cache_is_keyed_by_source_and_survives_corruption(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MORPHWARE_CACHE", str(tmp_path))
    monkeypatch.setattr(compile_mod, "_memo", {})
    art = load_artifact("token")
    assert art.bytecode.startswith("0x") and any(e.get("name") == "faucet" for e in art.abi)
    (cached,) = (tmp_path / "contracts").glob("token-*.json")
    assert compile_mod.source_hash() in cached.name
    cached.write_text("{not json")
    monkeypatch.setattr(compile_mod, "_memo", {})
    assert load_artifact("token") == art  # rebuilt from source
    assert json.loads(cached.read_text())["bytecode"] == art.bytecode
    with pytest.raises(ValueError, match="unknown contract"):
        load_artifact("nope")


def test_deployment_file_round_trip_and_errors(tmp_path) -> None:
    dep = Deployment(chain_id=1, token="0x" + "1" * 40, market="0x" + "2" * 40, token_abi=[],
                     market_abi=[{"type": "event", "name": "X", "inputs": []}],
                     deployer="0x" + "3" * 40, block=7, params={"dev": True})
    path = dep.save(tmp_path / "sub" / "dep.json")
    assert Deployment.load(path) == dep
    with pytest.raises(FileNotFoundError, match="no deployment file"):
        Deployment.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"chain_id": 1}))
    with pytest.raises(ValueError, match="not a Morphware deployment file"):
        Deployment.load(bad)
