"""Loading untrusted inputs: workers and validators accept only ONNX, .npz arrays and TOML.

Nothing here executes submitted code: .npz files are read with ``allow_pickle=False`` (object
arrays are refused), and ONNX models may use only the standard operator domains, with no local
functions, and must pass ``onnx.checker``. Each concern has its own exception type so callers (the
worker loop) can report it precisely and stay up.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


class UnsafeInputError(ValueError):
    """Base class: an input file was refused."""


class NpzError(UnsafeInputError):
    """An .npz file is missing, unreadable, pickled, or has arrays of the wrong kind."""


class OnnxModelError(UnsafeInputError):
    """An ONNX model is missing, unreadable, invalid, or uses custom ops or functions."""


class DatasetError(UnsafeInputError):
    """A data set lacks the arrays a task needs or their shapes disagree."""


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file, eagerly loaded; pickled/object arrays are refused."""
    path = Path(path)
    if not path.is_file():
        raise NpzError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # np.load would try .npy and pickle formats otherwise
        raise NpzError(f"{path}: not a readable .npz file (not a zip archive)")
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                out[name] = _array(z, name, path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise NpzError(f"{path}: not a readable .npz file ({e})") from e
    if not out:
        raise NpzError(f"{path}: contains no arrays")
    return out


def _array(z: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    try:
        arr = z[name]
    except ValueError as e:  # numpy refuses object arrays without pickle
        raise NpzError(f"{path}: array {name!r} needs pickle (object dtype); "
                       "only numeric arrays are accepted") from e
    if arr.dtype.kind not in "biuf":
        raise NpzError(f"{path}: array {name!r} has dtype {arr.dtype}; "
                       "only bool/int/float arrays are accepted")
    return arr


def load_xy(path: str | Path, x: str = "x", y: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """The (inputs, targets) pair of a data set, checked for presence and matching length."""
    arrays = load_npz(path)
    missing = [k for k in (x, y) if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing array(s) {missing}; found {sorted(arrays)}")
    xs, ys = arrays[x], arrays[y]
    if xs.ndim < 1 or ys.ndim < 1 or len(xs) != len(ys):
        raise DatasetError(f"{path}: {x}{xs.shape} and {y}{ys.shape} differ in sample count")
    if len(xs) == 0:
        raise DatasetError(f"{path}: data set is empty")
    if xs.dtype.kind == "f" and not np.isfinite(xs).all():
        raise DatasetError(f"{path}: array {x!r} contains NaN or infinity")
    return xs, ys


def check_onnx(model: onnx.ModelProto, source: str = "<model>") -> onnx.ModelProto:
    """Refuse custom domains and local functions, then run the ONNX checker."""
    import onnx

    if len(model.functions):
        names = [f.name for f in model.functions]
        raise OnnxModelError(f"{source}: model defines local functions {names}; not accepted")
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise OnnxModelError(f"{source}: imports custom operator domain {opset.domain!r}")
    for node in _all_nodes(model.graph):
        if node.domain not in ALLOWED_DOMAINS:
            raise OnnxModelError(f"{source}: node {node.name or '?'!r} uses op "
                                 f"{node.domain}.{node.op_type} from a custom domain")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid"
        raise OnnxModelError(f"{source}: fails the ONNX checker: {first}") from e
    return model


def _all_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes of a graph and of every subgraph (If/Loop bodies)."""
    out = []
    for node in graph.node:
        out.append(node)
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                out.extend(_all_nodes(attr.g))
            for g in attr.graphs:
                out.extend(_all_nodes(g))
    return out


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """An ONNX model from disk, with external data refused and safety checks applied."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several unrelated types
        raise OnnxModelError(f"{path}: not a readable ONNX model ({e})") from e
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise OnnxModelError(f"{path}: initializer {init.name!r} uses external data; "
                                 "send a self-contained model")
    return check_onnx(model, str(path))


def input_shape(model: onnx.ModelProto) -> list[int | None]:
    """The first graph input's shape; symbolic or unknown dimensions are None."""
    init_names = {t.name for t in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in init_names)
    return [d.dim_value if d.HasField("dim_value") else None
            for d in inp.type.tensor_type.shape.dim]


def prepare_inputs(x: np.ndarray, shape: list[int | None], source: str) -> np.ndarray:
    """Float32 inputs shaped like the model's input; a flat sample is reshaped when the element
    counts agree (an 8x8 image stored as 64 features), anything else is a DatasetError."""
    x = np.asarray(x, dtype=np.float32)
    want = shape[1:]
    if not want or any(d is None for d in want) or list(x.shape[1:]) == want:
        return x
    if math.prod(x.shape[1:]) == math.prod(want):  # type: ignore[arg-type]
        return x.reshape(len(x), *want)  # type: ignore[arg-type]
    raise DatasetError(f"{source}: samples of shape {tuple(x.shape[1:])} do not fit the model "
                       f"input {tuple(want)}")
