"""Job packaging on the requester's machine: job.toml -> ONNX + .npz + TOML + manifest.json.

Only here is user code executed: the requester's own .py/.ipynb, on the requester's own machine,
to build the model and export it. What leaves this machine is data only (ONNX, .npz arrays saved
without pickles, TOML), which is all a worker or validator ever loads.

The public manifest (``manifest.json``) carries what bidders price and validators check:
parameter count, MACs per sample (Gemm/MatMul/Conv, from the graph after shape inference), data
sizes, the metric and threshold, the training recipe, and SHA-256 hashes of the plaintext files.
(The chain records the hashes of the *encrypted* artifacts; see docs/delivery.md.)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import shutil
import sys
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from morphware.runtime.job.spec import JobSpec, MetricSpec, TrainingRecipe

MANIFEST_FORMAT = "morphware-job/1"
OPSET = 17
MODEL_FILE, TRAIN_FILE, TEST_FILE = "model.onnx", "train.npz", "test.npz"
RECIPE_FILE, MANIFEST_FILE = "training.toml", "manifest.json"
CLASS_METRICS = ("accuracy", "top5")


class PackagingError(ValueError):
    """The job cannot be packaged: bad model source, bad data, or the two do not fit."""


@dataclass(frozen=True)
class JobPackage:
    """A packaged job: the files a requester publishes, and the parsed public manifest."""

    root: Path
    model: Path
    train: Path
    test: Path
    recipe: Path
    manifest_path: Path
    manifest: Mapping[str, Any]

    @property
    def artifacts(self) -> dict[str, Path]:
        """The files to publish, by role. ``test`` goes to validators only."""
        return {"model": self.model, "train": self.train, "test": self.test,
                "recipe": self.recipe}

    def public_manifest(self) -> dict[str, Any]:
        """What goes on chain (see ``public_manifest``)."""
        return public_manifest(self.manifest)


# ---------------------------------------------------------------------------------------------
# running the user's model source


def _notebook_code(path: Path) -> str:
    """The code cells of a notebook, in order; IPython magics and shell lines are dropped."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise PackagingError(f"{path.name}: not a Jupyter notebook ({e})") from None
    parts = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        parts.append(f"# cell {i}\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _load_module(path: Path) -> types.ModuleType:
    """Import a .py file or execute a notebook's code cells as a fresh module."""
    name = f"_morphware_user_model_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    sys.path.insert(0, str(path.parent))  # the user's code may import its neighbours
    try:
        if path.suffix.lower() == ".ipynb":
            mod = types.ModuleType(name)
            mod.__file__ = str(path)
            exec(compile(_notebook_code(path), str(path), "exec"), mod.__dict__)
            return mod
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PackagingError(f"cannot import {path}")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    except PackagingError:
        raise
    except Exception as e:
        raise PackagingError(f"{path.name} failed while loading: {user_code_error(e, path)}"
                             ) from e
    finally:
        with contextlib.suppress(ValueError):  # the user's code may have edited sys.path
            sys.path.remove(str(path.parent))


def user_code_error(exc: BaseException, source: Path) -> str:
    """``Type: message (at model.py line N, in fn)``: the error the user's own code raised,
    located at the deepest line of *their* file, so they need no traceback to find it."""
    import traceback

    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == Path(source).resolve():
            where = f" (at {Path(source).name} line {frame.lineno}, in {frame.name})"
    return f"{type(exc).__name__}: {exc}{where}"


def build_model(source: Path, hparams: Mapping[str, Any], seed: int | None = None) -> Any:
    """Run the user's ``build_model(**hparams)`` and return the torch module it builds.
    With ``seed``, the initial weights (and so the exported file) are reproducible."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    mod = _load_module(source)
    fn: Callable[..., Any] | None = getattr(mod, "build_model", None)
    if not callable(fn):
        raise PackagingError(f"{source.name} must define build_model(**hparams) -> "
                             f"torch.nn.Module")
    try:
        model = fn(**dict(hparams))
    except Exception as e:  # the user's code: any failure is theirs to fix, named precisely
        raise PackagingError(f"build_model(**{dict(hparams)!r}) in {source.name} failed: "
                             f"{user_code_error(e, source)}") from e
    if not isinstance(model, torch.nn.Module):
        raise PackagingError(f"build_model in {source.name} returned {type(model).__name__}, "
                             f"not a torch.nn.Module")
    return model


def export_onnx(model: Any, input_shape: tuple[int, ...], out: Path,
                source: Path | None = None) -> Path:
    """Export in eval mode with a dynamic batch axis (legacy exporter: stable, onnx2torch-
    friendly). Constant folding is off so BatchNorm stays a separate, trainable node.
    ``source``: the user's model file, to point at the failing line if the forward pass fails."""
    import torch

    model = model.eval()
    dummy = torch.zeros((1, *input_shape), dtype=torch.float32)
    try:
        with torch.no_grad():
            model(dummy)
    except Exception as e:
        src = source if source is not None else Path("model.py")
        raise PackagingError(f"the model does not accept input of shape (batch, "
                             f"{', '.join(map(str, input_shape))}): {user_code_error(e, src)}"
                             ) from e
    torch.onnx.export(model, (dummy,), str(out), dynamo=False, opset_version=OPSET,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      do_constant_folding=False)
    return out


# ---------------------------------------------------------------------------------------------
# ONNX analysis


def _dims(vi: Any) -> list[int] | None:
    """Static dims of a value_info (symbolic dims, like the batch, become 1); None if unknown."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]


def _node_gemm(node: Any, shapes: Mapping[str, list[int]], inits: Mapping[str, Any]
               ) -> tuple[int, int, int] | None:
    """(rows, k, n) of a Gemm/MatMul/Conv for a batch of 1: ``rows`` x ``k`` activations (Conv:
    OH*OW im2col patches) times a ``k`` x ``n`` weight; None for other ops or unknown shapes."""
    def shape(name: str) -> list[int] | None:
        if name in inits:
            return list(inits[name].dims)
        return shapes.get(name)

    if node.op_type in ("Gemm", "MatMul"):
        a, b = shape(node.input[0]), shape(node.input[1])
        if not a or not b:
            return None
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        trans_b = any(at.name == "transB" and at.i for at in node.attribute)
        k = a[-2] if trans_a else a[-1]
        m = (b[-2] if trans_b else b[-1]) if len(b) > 1 else 1
        rows = math.prod(a[:-1]) if not trans_a else a[-1]
        return rows, k, m
    if node.op_type == "Conv":
        w, y = shape(node.input[1]), shapes.get(node.output[0])
        if not w or not y:
            return None
        return math.prod(y[2:]), math.prod(w[1:]), y[1]  # per output pixel: Cin/group * kernel
    return None


def _needs_grad(g: Any, float_inits: set[str]) -> set[str]:
    """Tensors that depend on a trainable (float) initializer: their producers' inputs need
    gradients in training; the model input alone does not."""
    out = set(float_inits)
    for node in g.node:
        if any(i in out for i in node.input):
            out.update(node.output)
    return out


def analyse_onnx(path: Path) -> dict[str, Any]:
    """Check the model and compute its public figures (params, MACs per sample, I/O shapes)."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as e:
        raise PackagingError(f"{path.name} is not a valid ONNX model: {e}") from None
    g = inferred.graph
    inits = {i.name: i for i in g.initializer}
    shapes = {vi.name: s for vi in [*g.value_info, *g.input, *g.output]
              if (s := _dims(vi)) is not None}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or len(g.output) != 1:
        raise PackagingError(f"{path.name}: a job model needs exactly one input and one output, "
                             f"got {len(inputs)} and {len(g.output)}")
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                   onnx.TensorProto.BFLOAT16}
    params = sum(math.prod(i.dims) for i in g.initializer if i.data_type in float_types)
    grad = _needs_grad(g, {i.name for i in g.initializer if i.data_type in float_types})
    by_op: dict[str, int] = {}
    gemms: list[list[int]] = []
    for node in g.node:
        if (dims := _node_gemm(node, shapes, inits)) and math.prod(dims):
            by_op[node.op_type] = by_op.get(node.op_type, 0) + math.prod(dims)
            gemms.append([*map(int, dims), int(node.input[0] in grad)])
    return {
        "params": int(params),
        "macs_per_sample": int(sum(by_op.values())),
        "macs_by_op": by_op,
        "gemms": gemms,
        "input_shape": (_dims(inputs[0]) or [1])[1:],
        "output_shape": (_dims(g.output[0]) or [1])[1:],
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                     default=0),
        "ops": sorted({n.op_type for n in g.node}),
    }


# ---------------------------------------------------------------------------------------------
# data


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load ``x`` and ``y`` with the same pickle-free loader workers use (safe_io), so the
    requester learns of a refusal before posting; errors are phrased for the job's author."""
    from morphware.runtime.model.safe_io import NpzError
    from morphware.runtime.model.safe_io import load_npz as load_arrays

    try:
        arrays = load_arrays(path)
    except NpzError as e:
        if "needs pickle" in str(e):
            raise PackagingError(f"{path.name} holds object (pickled) arrays; only numeric "
                                 f"arrays are accepted, since workers load data without "
                                 f"pickles") from None
        raise PackagingError(f"{path.name}: cannot read as .npz: {e}") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise PackagingError(f"{path.name} must hold arrays 'x' and 'y'; missing "
                             f"{', '.join(missing)} (has: {', '.join(arrays) or 'none'})")
    return arrays["x"], arrays["y"]


def check_data(role: str, path: Path, x: np.ndarray, y: np.ndarray, input_shape: list[int],
               output_shape: list[int], spec: JobSpec) -> None:
    """x/y must fit the model and the loss: shapes, counts, class labels in range."""
    where = f"[data].{role} ({path.name})"
    if len(x) == 0:
        raise PackagingError(f"{where}: no samples")
    if list(x.shape[1:]) != list(input_shape):
        raise PackagingError(f"{where}: x has per-sample shape {list(x.shape[1:])}, the model "
                             f"expects {list(input_shape)}")
    if len(y) != len(x):
        raise PackagingError(f"{where}: x has {len(x)} samples but y has {len(y)}")
    if not np.all(np.isfinite(x)):
        raise PackagingError(f"{where}: x holds NaN or infinite values")
    classify = spec.training.loss == "cross_entropy" or spec.metric.name in CLASS_METRICS
    if classify:
        n_classes = output_shape[-1] if output_shape else 1
        if y.ndim != 1 or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
            raise PackagingError(f"{where}: y must be a 1-D array of integer class labels for "
                                 f"{spec.training.loss}/{spec.metric.name}, got shape "
                                 f"{list(y.shape)} dtype {y.dtype}")
        if y.min() < 0 or y.max() >= n_classes:
            raise PackagingError(f"{where}: labels span {int(y.min())}..{int(y.max())} but the "
                                 f"model has {n_classes} outputs")
        if spec.metric.name == "top5" and n_classes < 5:
            raise PackagingError(f"[metric].name top5 needs at least 5 classes, the model has "
                                 f"{n_classes}")
    elif list(y.shape[1:]) != list(output_shape) and not (y.ndim == 1 and output_shape == [1]):
        raise PackagingError(f"{where}: y has per-sample shape {list(y.shape[1:])}, the model "
                             f"outputs {list(output_shape)}")


def _save_npz(x: np.ndarray, y: np.ndarray, out: Path) -> None:
    """Re-save only x and y: nothing else the user's file held travels with the job."""
    np.savez(out, x=np.ascontiguousarray(x), y=np.ascontiguousarray(y))


# ---------------------------------------------------------------------------------------------
# recipe TOML


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def recipe_toml(recipe: TrainingRecipe, metric: MetricSpec) -> str:
    """The text a worker receives: ``[training]`` and ``[metric]``, data only."""
    lines = ["# Morphware training recipe: data only, never code.", "[training]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in recipe.to_dict().items()]
    lines += ["", "[metric]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in metric.to_dict().items()]
    return "\n".join(lines) + "\n"


def read_recipe(path: Path | str) -> tuple[TrainingRecipe, MetricSpec | None]:
    """Parse a received ``training.toml`` (what workers call): data only, validated field by
    field. ``[metric]`` is informational (the chain holds the binding one) and may be absent."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PackagingError(f"{p.name}: cannot read the recipe: {e}") from None
    m = doc.get("metric")
    if m is not None and (not isinstance(m, dict) or set(m) != {"name", "threshold"}):
        raise PackagingError(f"{p.name}: [metric] must have exactly name and threshold")
    metric = MetricSpec(str(m["name"]), float(m["threshold"])) if m is not None else None
    return TrainingRecipe.from_dict(doc.get("training", {}), f"{p.name}: [training]"), metric


# ---------------------------------------------------------------------------------------------
# the package


def sha256_hex(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _data_entry(path: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return {"file": path.name, "samples": int(len(x)), "x_shape": list(x.shape),
            "x_dtype": str(x.dtype), "y_shape": list(y.shape), "y_dtype": str(y.dtype),
            "bytes": path.stat().st_size, "sha256": sha256_hex(path)}


def _model_file(spec: JobSpec, out: Path) -> Path:
    if spec.model.kind == "onnx":
        shutil.copyfile(spec.model.source, out)
        return out
    assert spec.model.input_shape is not None  # jobspec requires it for .py/.ipynb
    model = build_model(spec.model.source, spec.model.hparams, seed=spec.training.seed)
    return export_onnx(model, spec.model.input_shape, out, source=spec.model.source)


def package_job(spec: JobSpec, out_dir: Path | str) -> JobPackage:
    """Build the model, export and check ONNX, validate and re-save the data, write the recipe
    and the manifest into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = _model_file(spec, out / MODEL_FILE)
    info = analyse_onnx(model_path)
    if spec.model.input_shape is not None and list(spec.model.input_shape) != info["input_shape"]:
        raise PackagingError(f"[model].input_shape {list(spec.model.input_shape)} differs from "
                             f"the model's input {info['input_shape']}")
    data = {}
    for role, src, dst in (("train", spec.data.train, out / TRAIN_FILE),
                           ("test", spec.data.test, out / TEST_FILE)):
        x, y = load_npz(src)
        check_data(role, src, x, y, info["input_shape"], info["output_shape"], spec)
        _save_npz(x, y, dst)
        data[role] = _data_entry(dst, x, y)
    recipe_path = out / RECIPE_FILE
    recipe_path.write_text(recipe_toml(spec.training, spec.metric), encoding="utf-8")
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "model": {**info, "file": MODEL_FILE, "source_kind": spec.model.kind,
                  "bytes": model_path.stat().st_size, "sha256": sha256_hex(model_path)},
        "data": data,
        "metric": {**spec.metric.to_dict(), "higher_is_better": spec.metric.higher_is_better},
        "training": spec.training.to_dict(),
        "recipe": {"file": RECIPE_FILE, "sha256": sha256_hex(recipe_path)},
        "market": {k: getattr(spec.market, k) for k in spec.market.__dataclass_fields__},
    }
    manifest_path = out / MANIFEST_FILE
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return JobPackage(root=out, model=model_path, train=out / TRAIN_FILE, test=out / TEST_FILE,
                      recipe=recipe_path, manifest_path=manifest_path, manifest=manifest)


# ---------------------------------------------------------------------------------------------
# the public manifest (on chain): written by the requester, read by bidders


def public_manifest(full: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the manifest that goes on chain: what a worker needs to decide and
    price (cost figures, shapes, ops, sizes, metric, epochs), flat and small. File hashes stay
    out: every download is checked against its ciphertext hash, and AES-GCM authenticates."""
    model, data, training = full["model"], full["data"], full["training"]
    return {
        "format": full.get("format", ""),
        "name": full.get("name", ""),
        "macs_per_sample": int(model["macs_per_sample"]),
        "gemms": [list(map(int, g)) for g in model.get("gemms", [])],
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
