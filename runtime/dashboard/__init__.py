"""The requester's web dashboard: static HTML/CSS/JS served by ``morphware.runtime.api``.

No build step and no network: the files in this folder are served as they are."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
