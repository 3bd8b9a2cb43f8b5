"""The node's calls into the rest of the runtime: packaging, training, evaluation, safe loading.

One thin module, so the roles read as protocol and every dependency on another part of the
runtime is visible in one place. Workers and validators only ever load ONNX, .npz and TOML through
``morphware.runtime.safe_io`` (no pickle, no custom-op domains, no local functions): submitted
code is never executed on their side.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphware.runtime.jobspec import JobSpec, TrainingRecipe

LOSS_CURVE_KEY = "morphware.loss_curve"

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
    from morphware.runtime.packaging import package_job

    with TORCH_EXPORT_LOCK:
        pkg = package_job(spec, out_dir)
    return PackagedJob(files={k: Path(v) for k, v in pkg.artifacts.items()},
                       manifest=public_manifest(dict(pkg.manifest)))


def public_manifest(full: dict[str, Any]) -> dict[str, Any]:
    """The part of packaging's manifest that goes on chain: what a worker needs to decide and
    price (cost figures, shapes, ops, sizes, metric, epochs), flat and small. File hashes stay
    out: every download is checked against its ciphertext hash, and AES-GCM authenticates."""
    model, data, training = full["model"], full["data"], full["training"]
    return {
        "format": full.get("format", ""),
        "name": full.get("name", ""),
        "macs_per_sample": int(model["macs_per_sample"]),
        "params": int(model["params"]),
        "input_shape": list(model["input_shape"]),
        "output_shape": list(model["output_shape"]),
        "ops": sorted(model["ops"]),
        "train_samples": int(data["train"]["samples"]),
        "test_samples": int(data["test"]["samples"]),
        "train_bytes": int(data["train"]["bytes"]),
        "epochs": int(training["epochs"]),
        "batch_size": int(training["batch_size"]),
        "metric": {"name": full["metric"]["name"], "threshold": full["metric"]["threshold"]},
    }


def workload_figures(manifest: dict[str, Any]) -> tuple[int, int, int]:
    """(MACs per sample, training samples, epochs) of a public manifest."""
    try:
        return (int(manifest["macs_per_sample"]), int(manifest["train_samples"]),
                int(manifest["epochs"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"manifest lacks cost figures (macs_per_sample, train_samples, "
                         f"epochs): {e}") from e


def manifest_ops(manifest: dict[str, Any]) -> set[str]:
    return {str(o) for o in manifest.get("ops", [])}


def check_inputs(model: Path, *npz: Path) -> None:
    """Refuse anything but a standard-domain ONNX model and numeric .npz arrays (raises
    safe_io.UnsafeInputError naming the file and the reason)."""
    from morphware.runtime.safe_io import load_npz, load_onnx

    load_onnx(model)
    for p in npz:
        load_npz(p)


def load_recipe(path: Path) -> TrainingRecipe:
    """A recipe from received TOML: data only, validated field by field."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return TrainingRecipe.from_dict(doc.get("training", doc), f"{path.name}: [training]")


@dataclass(frozen=True)
class Trained:
    model: Path
    loss_curve: list[float]
    backend: str
    seconds: float
    metrics: dict[str, float]


def train(model: Path, train_npz: Path, recipe_toml: Path, out: Path,
          on_step: Callable[[int, int, float], None], backend: str = "auto") -> Trained:
    """Train on this node's best training backend; ``on_step(epoch, step, loss)`` per batch.
    The per-epoch loss curve is embedded in the output ONNX's metadata, so the curve travels
    with the result."""
    from morphware.runtime.training import train_onnx

    check_inputs(model, train_npz)
    recipe = load_recipe(recipe_toml)

    def cb(ev: Any) -> None:
        if ev.kind == "step":
            on_step(ev.epoch, ev.step, float(ev.loss))

    with TORCH_EXPORT_LOCK:  # the export at the end of training; see TORCH_EXPORT_LOCK
        res = train_onnx(model, train_npz, recipe, out, on_event=cb, backend=backend)
    embed_curve(Path(res.onnx_path), list(res.loss_curve))
    return Trained(model=Path(res.onnx_path), loss_curve=list(res.loss_curve),
                   backend=res.backend, seconds=res.seconds, metrics=dict(res.metrics))


def embed_curve(path: Path, curve: list[float]) -> None:
    import onnx

    m = onnx.load(str(path))
    kept = [p for p in m.metadata_props if p.key != LOSS_CURVE_KEY]
    del m.metadata_props[:]
    m.metadata_props.extend(kept)
    m.metadata_props.add(key=LOSS_CURVE_KEY, value=json.dumps(curve))
    onnx.save(m, str(path))


def read_curve(path: Path) -> list[float]:
    """The loss curve a worker embedded in a result model ([] if none)."""
    from morphware.runtime.safe_io import load_onnx

    for p in load_onnx(path).metadata_props:
        if p.key == LOSS_CURVE_KEY:
            return [float(v) for v in json.loads(p.value)]
    return []


def evaluate(model: Path, test_npz: Path, metric: str, backend: str = "auto") -> float:
    """The job's metric of ``model`` on the test set, on the chosen backend."""
    from morphware.runtime.evaluation import evaluate as _evaluate

    check_inputs(model, test_npz)
    return float(_evaluate(model, test_npz, metric, backend=backend))
