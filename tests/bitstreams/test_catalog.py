"""The bitstream catalog: manifest validation, overlay selection, file verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from morphware.bitstreams.catalog import (
    BitstreamHashError,
    BitstreamMissingError,
    ManifestError,
    NoOverlayError,
    catalog,
    detect_board,
    load_manifest,
    select_overlay,
    sha256_file,
)
from morphware.systolic.params import ArrayParams


def _doc(name: str = "test-ws8x8", rows: int = 8, depth: int = 256, **files: Any) -> dict:
    return {
        "format": 1, "name": name, "board": "pynq-z2", "part": "xc7z020clg400-1",
        "circuit": "ws_top",
        "params": {"rows": rows, "cols": 8, "data_bits": 8, "acc_bits": 32, "acc_depth": depth},
        "clock_mhz": 100, "resources": {"LUT": 1200, "DSP": 64},
        "files": files or {"bitstream": {"path": f"{name}.bit", "sha256": None},
                           "hwh": {"path": f"{name}.hwh", "sha256": None}},
        "ip": {"array": "ws_top_0", "dma_a": "a", "dma_w": "w", "dma_o": "o"},
    }


def _built(tmp: Path, name: str, rows: int = 8, depth: int = 256) -> Path:
    """A manifest with real files and correct hashes."""
    files = {}
    for role, ext in (("bitstream", "bit"), ("hwh", "hwh")):
        f = tmp / f"{name}.{ext}"
        f.write_bytes(f"{name} {role}".encode())
        files[role] = {"path": f.name, "sha256": sha256_file(f)}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(_doc(name, rows, depth, **files)))
    return path


def test_shipped_example_is_valid_and_reports_missing_bit() -> None:
    shipped = {m.name: m for m in catalog()}
    m = shipped["pynq-z2-ws8x8"]
    assert m.board == "pynq-z2" and m.params == ArrayParams(8, 8, 8, 32, 256)
    with pytest.raises(BitstreamMissingError, match=r"bitstream file .*pynq-z2-ws8x8\.bit is missing"):
        select_overlay(ArrayParams(), "pynq-z2")


def test_select_verifies_and_prefers_smallest_depth(tmp_path: Path) -> None:
    _built(tmp_path, "deep", depth=1024)
    _built(tmp_path, "shallow", depth=256)
    _built(tmp_path, "wide", rows=16)
    m = select_overlay(ArrayParams(acc_depth=128), "pynq-z2", dirs=[tmp_path])
    assert m.name == "shallow"
    assert m.file("bitstream").read_bytes() == b"shallow bitstream"
    assert select_overlay(ArrayParams(acc_depth=512), "pynq-z2", dirs=[tmp_path]).name == "deep"
    assert select_overlay(ArrayParams(rows=16), "pynq-z2", dirs=[tmp_path]).name == "wide"


def test_no_fallback_on_hash_mismatch(tmp_path: Path) -> None:
    path = _built(tmp_path, "good")
    _built(tmp_path, "other", depth=512)  # would also fit: must not be used instead
    (tmp_path / "good.bit").write_bytes(b"tampered")
    with pytest.raises(BitstreamHashError, match="good.bit has sha256"):
        select_overlay(ArrayParams(), "pynq-z2", dirs=[tmp_path])
    assert path.exists()


def test_no_overlay_for_shape_or_board(tmp_path: Path) -> None:
    _built(tmp_path, "only")
    with pytest.raises(NoOverlayError, match="fits array 4x4"):
        select_overlay(ArrayParams(rows=4, cols=4), "pynq-z2", dirs=[tmp_path])
    with pytest.raises(NoOverlayError, match="board 'zcu104'"):
        select_overlay(ArrayParams(), "zcu104", dirs=[tmp_path])


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("board"), "missing field 'board'"),
    (lambda d: d.update(format=2), "'format' must be 1"),
    (lambda d: d["params"].update(rows=0), "'params' is invalid"),
    (lambda d: d["files"].pop("hwh"), r"files lacks \['hwh'\]"),
    (lambda d: d["files"]["bitstream"].update(path="../x.bit"), "relative"),
    (lambda d: d["files"]["bitstream"].update(sha256="abc"), "64 lower-case hex"),
    (lambda d: d["ip"].pop("dma_o"), "dma_o"),
    (lambda d: d.update(clock_mhz=-1), "clock_mhz"),
    (lambda d: d.update(resources={"LUT": -3}), "resources"),
])
def test_manifest_validation(tmp_path: Path, mutate: Any, match: str) -> None:
    d = _doc()
    mutate(d)
    p = tmp_path / "m.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ManifestError, match=match):
        load_manifest(p)


def test_duplicate_names_and_bad_json(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_doc("same")))
    (tmp_path / "b.json").write_text(json.dumps(_doc("same")))
    with pytest.raises(ManifestError, match="also used"):
        catalog([tmp_path])
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        catalog([tmp_path])


def test_detect_board(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MORPHWARE_BOARD", raising=False)
    monkeypatch.setenv("BOARD", "Pynq_Z2")
    assert detect_board() == "pynq-z2"
    monkeypatch.delenv("BOARD")
    with pytest.raises(NoOverlayError, match="MORPHWARE_BOARD"):
        detect_board()
