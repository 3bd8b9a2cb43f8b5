"""Resource estimates from Yosys: ``synth_xilinx`` (Zynq-7000) or ``synth_ice40``, read from
``stat -json``. Results are cached beside the simulator builds (keyed by the RTL's hash), since a
16x16 synthesis takes minutes and the RTL rarely changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from morphware.systolic.circuit import Circuit, get_circuit
from morphware.systolic.params import ArrayParams
from morphware.systolic.sim import cache_root, source_hash

TARGETS = {
    # flattened: Yosys 0.23 (Debian) writes broken `stat -json` for three-level hierarchies
    "xilinx": "synth_xilinx -flatten -family xc7 -top {top}",
    "ice40": "synth_ice40 -dsp -top {top}",
    # technology-independent and fast: enough to prove the RTL infers no latches
    "generic": "synth -flatten -run begin:fine -top {top}",
}
_FF_PREFIXES = {"xilinx": ("FD",), "ice40": ("SB_DFF",), "generic": ("$dff", "$adff", "$sdff")}
_LUT_PREFIXES = {"xilinx": ("LUT",), "ice40": ("SB_LUT4",), "generic": ("$lut",)}
_DSP = {"xilinx": ("DSP48E1",), "ice40": ("SB_MAC16",), "generic": ("$mul", "$macc")}
_BRAM = {"xilinx": {"RAMB18E1": 0.5, "RAMB36E1": 1.0}, "ice40": {"SB_RAM40_4K": 1.0},
         "generic": {}}
_LUTRAM = ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S", "RAM32X1S",
           "RAM64X1S", "RAM128X1S")
_LATCH = ("LDCE", "LDPE", "$_DLATCH", "$_SR", "$dlatch", "$adlatch", "$sr", "SB_LATCH")


def yosys_script(circuit: Circuit, p: ArrayParams, target: str, out_json: Path) -> str:
    """The Yosys commands for one configuration."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {sorted(TARGETS)}")
    reads = " ".join(str(f) for f in circuit.rtl_sources)
    sets = " ".join(f"-set {k} {v}" for k, v in circuit.hdl_parameters(p).items())
    synth = TARGETS[target].format(top=circuit.toplevel)
    return (f"read_verilog -sv {reads}; chparam {sets} {circuit.toplevel}; {synth}; "
            f"tee -q -o {out_json} stat -json")


def summarize(cells: dict[str, int], target: str) -> dict[str, float]:
    """LUT / FF / DSP / BRAM / LUTRAM / latch counts from Yosys's cell-type histogram."""
    def count(prefixes: tuple[str, ...]) -> int:
        return sum(n for t, n in cells.items() if t.startswith(prefixes))
    bram = sum(n * w for t, n in cells.items() for b, w in _BRAM[target].items() if t == b)
    return {
        "LUT": count(_LUT_PREFIXES[target]),
        "FF": count(_FF_PREFIXES[target]),
        "DSP": count(_DSP[target]),
        "BRAM": bram,
        "LUTRAM": count(_LUTRAM) if target == "xilinx" else 0,
        "latches": count(_LATCH),
        "cells": sum(cells.values()),
    }


def cell_counts(stat: dict) -> dict[str, int]:
    """Cell counts by type from Yosys' ``stat -json`` (whole design, or summed over modules)."""
    design = stat.get("design") or {}
    if "num_cells_by_type" in design:
        return {k: int(v) for k, v in design["num_cells_by_type"].items()}
    total: dict[str, int] = {}
    for mod in stat.get("modules", {}).values():
        for k, v in mod.get("num_cells_by_type", {}).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def estimate(p: ArrayParams, target: str = "xilinx", circuit: Circuit | None = None,
             timeout_s: float = 1800) -> dict[str, float]:
    """Synthesise the circuit for ``p`` and return its resources (cached per RTL hash)."""
    circ = circuit or get_circuit()
    if shutil.which("yosys") is None:
        raise RuntimeError("yosys not found on PATH (apt install yosys)")
    key = f"{circ.name}-{p.tag}-{target}-{source_hash(list(circ.rtl_sources))}"
    cached = cache_root() / "synth" / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory(prefix="mw-yosys-") as tmp:
        out = Path(tmp) / "stat.json"
        proc = subprocess.run(["yosys", "-q", "-p", yosys_script(circ, p, target, out)],
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"yosys failed for {p.tag} {target}: {proc.stderr[-2000:]}")
        res = summarize(cell_counts(json.loads(out.read_text())), target)
    res["DSP_per_PE"] = res["DSP"] / (p.rows * p.cols)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(res))
    return res
