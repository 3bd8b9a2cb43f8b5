"""The "Systolic" hls4ml backend plug-in, registered through the ``hls4ml.backends`` entry point
declared in pyproject.toml, so that ``convert_from_onnx_model(..., backend='Systolic')`` yields a
ModelGraph whose flow quantises, lowers, tiles and schedules it into a Program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register(register_backend: Callable[..., Any] | None = None,
             register_writer: Callable[..., Any] | None = None) -> None:
    """Called by hls4ml's plug-in loader (writer first: the backend looks its writer up)."""
    from morphware.compiler.hls4ml_backend.backend import SystolicBackend, SystolicWriter

    if register_writer is not None:
        register_writer("Systolic", SystolicWriter)
    if register_backend is not None:
        register_backend("Systolic", SystolicBackend)
