"""Finding the anvil binary installed from the npm registry into the project's tools/ folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_NPM_REL = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")


def anvil_bin() -> Path | None:
    """$MORPHWARE_ANVIL, then <repo>/tools/..., then ./tools/..., then PATH."""
    env = os.environ.get("MORPHWARE_ANVIL")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[1] / "tools" / _NPM_REL,
        Path.cwd() / "tools" / _NPM_REL,
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    found = shutil.which("anvil")
    return Path(found) if found else None
