"""Backend discovery and selection.

Backends are the modules ``ops_<name>.py`` in this package (each exports ``BACKEND``, a Backend
subclass) plus any registered by other packages under the entry-point group
``morphware.backends``. Selection:

* ``train``: cuda, then cpu (the first usable one that can train);
* ``infer``/``eval``: the usable backend with the highest ``priority`` (fastest) that supports
  every op of the model, host-partitioned ops included.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from morphware.runtime.backends.base import Backend, BackendError, HardwareProfile

if TYPE_CHECKING:
    import onnx

BUILTIN = ("ops_fpga", "ops_rtl", "ops_golden", "ops_cuda", "ops_cpu")
TRAIN_ORDER = ("cuda", "cpu")
TASKS = ("train", "infer", "eval")


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``morphware backends``."""

    name: str
    usable: bool
    reason: str
    priority: int
    train: bool
    programs: bool
    description: str


@cache
def all_backends() -> dict[str, Backend]:
    """Every known backend by name, built-ins first; a plug-in that fails to load is skipped
    with its error recorded under ``load_errors()``."""
    found: dict[str, Backend] = {}
    for mod in BUILTIN:
        module = importlib.import_module(f"{__package__}.{mod}")
        cls = module.BACKEND
        found[cls.name] = cls()
    for ep in importlib.metadata.entry_points(group="morphware.backends"):
        try:
            cls = ep.load()
            found.setdefault(cls.name, cls())
        except Exception as e:  # noqa: BLE001 - a broken plug-in must not hide the others
            _LOAD_ERRORS[ep.name] = str(e)
    return found


_LOAD_ERRORS: dict[str, str] = {}


def load_errors() -> dict[str, str]:
    """Plug-ins that failed to load, with their errors."""
    all_backends()
    return dict(_LOAD_ERRORS)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is a BackendError listing the known ones."""
    backends = all_backends()
    if name not in backends:
        raise BackendError(f"unknown backend {name!r}; known: {', '.join(backends)}")
    return backends[name]


def select_backend(task: str, model: onnx.ModelProto | None = None) -> Backend:
    """The backend to use for ``task`` ("train", "infer" or "eval") on ``model``."""
    if task not in TASKS:
        raise BackendError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    backends = all_backends()
    reasons: list[str] = []
    if task == "train":
        candidates = [backends[n] for n in TRAIN_ORDER if n in backends]
    else:
        candidates = sorted(backends.values(), key=lambda b: -b.priority)
    for b in candidates:
        ok, why = b.available()
        if ok and model is not None:
            ok, why = b.supports(model)
        if ok and task == "train" and not b.capabilities().train:
            ok, why = False, "cannot train"
        if ok:
            return b
        reasons.append(f"{b.name}: {why}")
    raise BackendError(f"no usable backend for {task}: " + "; ".join(reasons))


def status() -> list[BackendStatus]:
    """Every backend, highest priority first, with whether it is usable here and why not."""
    rows = []
    for b in sorted(all_backends().values(), key=lambda b: -b.priority):
        ok, why = b.available()
        caps = b.capabilities()
        rows.append(BackendStatus(b.name, ok, why, b.priority, caps.train, caps.programs,
                                  b.description))
    return rows


def profile_for(task: str, model: onnx.ModelProto | None = None,
                refresh: bool = False) -> HardwareProfile:
    """The measured (cached) throughput of the backend ``select_backend(task, model)`` picks:
    what a worker quotes its bids from."""
    return select_backend(task, model).profile(refresh=refresh)
