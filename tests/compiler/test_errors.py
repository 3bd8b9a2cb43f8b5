"""Bad input stops with a message naming the node, op or field at fault."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from compiler_testlib import SMALL, sample_inputs
from morphware.compiler import CompileError, compile_model, execute
from morphware.compiler.frontend import export_torch
from onnx import TensorProto, helper

from tests.support import zoo


def _mlp_bytes() -> bytes:
    module, x = zoo.build("mlp")
    return export_torch(module, x).SerializeToString()


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_truncated_onnx_file(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(_mlp_bytes()[:200])
    with pytest.raises(CompileError, match="malformed or truncated ONNX"):
        compile_model(str(path), SMALL, np.zeros((4, 64), np.float32))


def test_missing_file() -> None:
    with pytest.raises(CompileError, match="does not exist"):
        compile_model("/nonexistent/m.onnx", SMALL, np.zeros((4, 64), np.float32))


def test_unsupported_op_is_named() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    m = _model([helper.make_node("Det", ["x"], ["y"], name="det_1")], [x], [y])
    with pytest.raises(CompileError, match="node det_1: op Det: not supported"):
        compile_model(m, SMALL, np.zeros((4, 2, 2), np.float32))


def test_3d_convolution_is_refused_with_reason() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2, 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2, 3, 3, 3], np.ones(108, np.float32))
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="c3", kernel_shape=[3, 3, 3])
    with pytest.raises(CompileError, match="node c3: op Conv: 3-D convolution is not supported"):
        compile_model(_model([conv], [x], [y], [w]), SMALL, np.zeros((2, 2, 4, 4, 4), np.float32))


def test_shapes_that_do_not_infer() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [5, 4], np.ones(20, np.float32))
    mm = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    with pytest.raises(CompileError, match="shapes do not infer"):
        compile_model(_model([mm], [x], [y], [w]), SMALL, np.zeros((4, 8), np.float32))


def test_calibration_of_wrong_shape() -> None:
    module, _ = zoo.build("lenet")
    with pytest.raises(CompileError, match=r"calibration data: shape \(4, 64\).*\(N, 1, 8, 8\)"):
        compile_model(module, SMALL, np.zeros((4, 64), np.float32),
                      example_input=np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(CompileError, match="NaN"):
        compile_model(_mlp_bytes(), SMALL, np.full((4, 64), np.nan, np.float32))


def test_torch_module_needs_example_input_or_calib() -> None:
    module, _ = zoo.build("mlp")
    with pytest.raises(CompileError, match="cannot compile a int"):
        compile_model(3, SMALL, np.zeros((4, 64), np.float32))
    program, _ = compile_model(module, SMALL, sample_inputs((64,), 8, 0))
    with pytest.raises(ValueError, match="unknown backend"):
        execute(program, np.zeros((1, 64), np.float32), backend="quantum")


def test_zoo_unknown_name() -> None:
    with pytest.raises(KeyError, match="known: mlp"):
        zoo.build("vgg")


def test_unknown_circuit_is_named() -> None:
    with pytest.raises(CompileError, match="unknown circuit 'os'"):
        compile_model(_mlp_bytes(), SMALL, np.zeros((4, 64), np.float32), circuit="os")
