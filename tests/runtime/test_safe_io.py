"""Untrusted inputs: .npz without pickles, ONNX without custom ops, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from morphware.runtime.model.safe_io import (
    DatasetError,
    NpzError,
    OnnxModelError,
    load_npz,
    load_onnx,
    load_xy,
)
from onnx import TensorProto, helper


def _tiny_model(domain: str = "", op: str = "Relu") -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], domain=domain, name="n0")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def test_npz_roundtrip(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((3, 2), np.float32), y=np.arange(3))
    arrays = load_npz(p)
    assert set(arrays) == {"x", "y"} and arrays["x"].shape == (3, 2)


def test_npz_object_array_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.npz"
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(NpzError, match="'x'.*pickle"):
        load_npz(p)


def test_npz_string_array_refused(tmp_path: Path) -> None:
    p = tmp_path / "s.npz"
    np.savez(p, x=np.array(["a", "b"]))
    with pytest.raises(NpzError, match="dtype"):
        load_npz(p)


@pytest.mark.parametrize("content,match", [(None, "no such file"), (b"not a zip", "readable")])
def test_npz_missing_or_garbage(tmp_path: Path, content: bytes | None, match: str) -> None:
    p = tmp_path / "bad.npz"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(NpzError, match=match):
        load_npz(p)


def test_xy_checks(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, x=np.ones((3, 2), np.float32))
    with pytest.raises(DatasetError, match=r"missing array\(s\) \['y'\]"):
        load_xy(p)
    np.savez(p, x=np.ones((3, 2), np.float32), y=np.arange(4))
    with pytest.raises(DatasetError, match="sample count"):
        load_xy(p)
    np.savez(p, x=np.full((3, 2), np.nan, np.float32), y=np.arange(3))
    with pytest.raises(DatasetError, match="NaN"):
        load_xy(p)


def test_onnx_ok(tmp_path: Path) -> None:
    p = tmp_path / "m.onnx"
    onnx.save(_tiny_model(), p)
    assert load_onnx(p).graph.node[0].op_type == "Relu"


def test_onnx_custom_domain_refused(tmp_path: Path) -> None:
    p = tmp_path / "m.onnx"
    onnx.save(_tiny_model("com.evil", "Backdoor"), p)
    with pytest.raises(OnnxModelError, match="com.evil"):
        load_onnx(p)


def test_onnx_functions_refused(tmp_path: Path) -> None:
    m = _tiny_model()
    fn = helper.make_function("", "F", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    m.functions.append(fn)
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    with pytest.raises(OnnxModelError, match="local functions"):
        load_onnx(p)


def test_onnx_checker_failure_and_garbage(tmp_path: Path) -> None:
    m = _tiny_model()
    m.graph.node[0].input[0] = "undefined_tensor"
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    with pytest.raises(OnnxModelError, match="checker"):
        load_onnx(p)
    p.write_bytes(b"\xff\x00garbage")
    with pytest.raises(OnnxModelError):
        load_onnx(p)
    with pytest.raises(OnnxModelError, match="no such file"):
        load_onnx(tmp_path / "absent.onnx")
