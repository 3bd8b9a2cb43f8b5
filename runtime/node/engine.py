"""The node's calls into the rest of the runtime: packaging, training, evaluation, safe loading.

One thin module, so the roles read as protocol and every dependency on another part of the
runtime is visible in one place. Workers and validators only ever load ONNX, .npz and TOML through
``morphware.runtime.model.safe_io`` (no pickle, no custom-op domains, no local functions): submitted
code is never executed on their side.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphware.runtime.job.packaging import manifest_ops, workload_figures  # noqa: F401 (port)
from morphware.runtime.job.spec import JobSpec

# torch.onnx.export keeps global state: two exports at once in one process (the demo's requester
# packaging while its worker finishes training) corrupt each other. Real nodes are separate
# processes; in-process nodes take turns.
TORCH_EXPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class PackagedJob:
    """The files a requester publishes and the public manifest it posts."""

    files: dict[str, Path]  # model, train, test, recipe
    manifest: dict[str, Any]


def package(spec: JobSpec, out_dir: Path) -> PackagedJob:
    """Run the requester's own model code (this is their machine), export ONNX, write data and
    recipe, and derive the public manifest that workers price from."""
    from morphware.runtime.job.packaging import package_job

    with TORCH_EXPORT_LOCK:
        pkg = package_job(spec, out_dir)
    return PackagedJob(files={k: Path(v) for k, v in pkg.artifacts.items()},
                       manifest=pkg.public_manifest())


@dataclass(frozen=True)
class Trained:
    model: Path
    loss_curve: list[float]
    backend: str
    seconds: float
    metrics: dict[str, float]


def train(model: Path, train_npz: Path, recipe_toml: Path, out: Path,
          on_step: Callable[[int, int, float], None], backend: str = "auto",
          checkpoint: Path | None = None,
          on_resume: Callable[[int, int, int, str], None] | None = None,
          on_epoch: Callable[[], None] | None = None) -> Trained:
    """Train on this node's best training backend; ``on_step(epoch, step, loss)`` per batch.
    The model and data are loaded through ``safe_io`` (standard-domain ONNX, pickle-free .npz);
    the per-epoch loss curve travels inside the output ONNX's metadata.

    With ``checkpoint``, state is saved there after every epoch and a restarted run resumes
    from it: ``on_resume(epochs_done, epochs, steps_done, "")``; an unusable checkpoint is
    deleted and training starts over: ``on_resume(0, epochs, 0, why)``. ``on_epoch()`` runs at
    the end of every epoch, before its checkpoint is written (make progress durable there)."""
    from morphware.runtime.job.packaging import read_recipe
    from morphware.runtime.model.safe_io import load_onnx
    from morphware.runtime.model.training import train_onnx

    recipe, _metric = read_recipe(recipe_toml)

    def cb(ev: Any) -> None:
        if ev.kind == "step":
            on_step(ev.epoch, ev.step, float(ev.loss))
        elif ev.kind == "epoch" and on_epoch is not None:
            on_epoch()
        elif on_resume is not None and ev.kind in ("resumed", "discarded"):
            on_resume(ev.epoch, recipe.epochs, ev.step, ev.note)

    with TORCH_EXPORT_LOCK:  # the export at the end of training; see TORCH_EXPORT_LOCK
        res = train_onnx(load_onnx(model), train_npz, recipe, out, on_event=cb, backend=backend,
                         checkpoint=checkpoint, discard_bad_checkpoint=True)
    return Trained(model=Path(res.onnx_path), loss_curve=list(res.loss_curve),
                   backend=res.backend, seconds=res.seconds, metrics=dict(res.metrics))


def read_curve(path: Path) -> list[float]:
    """The loss curve a worker embedded in a result model ([] if none)."""
    from morphware.runtime.model.safe_io import load_onnx
    from morphware.runtime.model.training import LOSS_CURVE_KEY

    for p in load_onnx(path).metadata_props:
        if p.key == LOSS_CURVE_KEY:
            return [float(v) for v in json.loads(p.value)]
    return []


def evaluate(model: Path, test_npz: Path, metric: str, backend: str = "auto") -> float:
    """The job's metric of ``model`` on the test set, on the chosen backend (model and data
    loaded through ``safe_io``)."""
    from morphware.runtime.model.evaluation import evaluate as _evaluate

    return float(_evaluate(model, test_npz, metric, backend=backend))


def _train_backend(backend: str) -> Any:
    from morphware.runtime.backends.registry import get_backend, select_backend

    return select_backend("train") if backend == "auto" else get_backend(backend)


def training_ops(backend: str) -> frozenset[str]:
    """The ONNX ops the training engine can run on ``backend`` ("auto": the first torch one)."""
    return _train_backend(backend).capabilities().train_ops


def array_clock_hz(backend: str) -> float:
    """The clock of the systolic array ``backend`` trains on; 0 for a torch backend."""
    return float(_train_backend(backend).array_clock_hz())


def array_peak_macs(backend: str) -> float:
    """MACs per second of ``backend``'s array at full utilisation (R x C per cycle)."""
    b = _train_backend(backend)
    return float(b.params.rows * b.params.cols * b.array_clock_hz())


def array_training_cycles(manifest: dict[str, Any], backend: str) -> int:
    """Array cycles of a whole training job on ``backend``'s array, from the public manifest's
    GEMM shapes, batch size, sample count and epochs (cycle model; raises ValueError when the
    manifest lacks them)."""
    from morphware.compiler.training import GemmLayer, epoch_cycles

    try:
        layers = [GemmLayer(int(r), int(k), int(n), bool(g)) for r, k, n, g in manifest["gemms"]]
        batch, samples = int(manifest["batch_size"]), int(manifest["train_samples"])
        epochs = int(manifest["epochs"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"manifest lacks the GEMM shapes an array worker prices from: {e}") from e
    if not layers or batch <= 0 or samples <= 0:
        raise ValueError("manifest lists no GEMM layers (or no batch/samples) to price on the array")
    return epochs * epoch_cycles(layers, samples, batch, _train_backend(backend).params)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Failures that a later tick retries: a seeder away for now, a peer not ready."""
    from morphware.runtime.delivery.torrent import TorrentError
    from morphware.runtime.node.tasks import NotReady

    return (TorrentError, NotReady, ConnectionError, TimeoutError)


def unsafe_input_error() -> type[Exception]:
    """The error for an artifact refused as unsafe (pickles, custom-op domains, ...)."""
    from morphware.runtime.model.safe_io import UnsafeInputError

    return UnsafeInputError
