"""Finding anvil (a local Ethereum node from the npm registry), and installing it on first use.

A checkout gets anvil from ``make setup`` into its ``tools/`` folder. An installed package has no
such folder: ``ensure_anvil`` installs the npm package ``@foundry-rs/anvil`` into a per-user tools
folder (``$MORPHWARE_TOOLS``, else ``$XDG_DATA_HOME/morphware/tools``, else
``~/.local/share/morphware/tools``) the first time ``morphware devnet`` needs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

NPM_PACKAGE = "@foundry-rs/anvil"
# npm unpacks the binary of this platform into a sibling package, e.g. anvil-linux-amd64
_NPM_GLOB = "node_modules/@foundry-rs/anvil-*/bin/anvil"
NPM_TIMEOUT_S = 600


class AnvilUnavailable(RuntimeError):
    """anvil is not installed and cannot be installed here; the message says what to run."""


def user_tools_dir() -> Path:
    """The per-user folder that npm installs anvil into for an installed (non-checkout) package."""
    env = os.environ.get("MORPHWARE_TOOLS")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "morphware" / "tools"


def _npm_binary(prefix: Path) -> Path | None:
    for c in sorted(prefix.glob(_NPM_GLOB)):
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return None


def tool_prefixes() -> list[Path]:
    """npm prefixes that may hold anvil: the checkout's tools/, ./tools/, the per-user folder."""
    return [Path(__file__).resolve().parents[1] / "tools", Path.cwd() / "tools", user_tools_dir()]


def anvil_bin() -> Path | None:
    """$MORPHWARE_ANVIL, then the checkout's tools/, ./tools/, the per-user tools folder, PATH."""
    env = os.environ.get("MORPHWARE_ANVIL")
    if env:
        p = Path(env)
        return p if p.is_file() and os.access(p, os.X_OK) else None
    for prefix in tool_prefixes():
        found = _npm_binary(prefix)
        if found is not None:
            return found
    on_path = shutil.which("anvil")
    return Path(on_path) if on_path else None


def install_command(prefix: Path | None = None) -> str:
    """The npm command that installs anvil into ``prefix`` (default: the per-user tools folder)."""
    return f"npm install --prefix {prefix or user_tools_dir()} {NPM_PACKAGE}"


def install_anvil(prefix: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Install anvil from the npm registry into ``prefix``; returns the binary.

    Raises AnvilUnavailable when npm is not on PATH, fails, or leaves no binary."""
    prefix = prefix or user_tools_dir()
    npm = shutil.which("npm")
    if npm is None:
        raise AnvilUnavailable(
            "anvil is not installed and npm (Node.js) is not on PATH: install Node.js with npm "
            f"(e.g. sudo apt-get install -y npm), then run `{install_command(prefix)}`, "
            "or set MORPHWARE_ANVIL to an anvil binary")
    if log is not None:
        log(f"installing anvil from the npm registry into {prefix} (first use) ...")
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                              "--silent", NPM_PACKAGE], capture_output=True, text=True,
                             timeout=NPM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AnvilUnavailable(f"`{install_command(prefix)}` did not finish: {e}") from e
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise AnvilUnavailable(f"`{install_command(prefix)}` failed (exit {out.returncode}): "
                               f"{last}")
    found = _npm_binary(prefix)
    if found is None:
        raise AnvilUnavailable(f"npm installed {NPM_PACKAGE} into {prefix} but no anvil binary "
                               f"for this platform is there ({prefix / _NPM_GLOB})")
    return found


def ensure_anvil(log: Callable[[str], None] | None = None) -> Path:
    """anvil's binary: the one already found, else installed now into the per-user tools folder."""
    return anvil_bin() or install_anvil(log=log)
