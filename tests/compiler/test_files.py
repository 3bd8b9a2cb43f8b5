"""ONNX files as people export them: old opsets, Keras layouts, no shape information, several
outputs, QDQ quantisation; and the bounds that keep the front end from hanging."""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest
from compiler_testlib import SMALL, sample_inputs
from morphware.compiler import CompileError, compile_model, execute, run
from morphware.compiler.frontend import export_torch
from morphware.compiler.prepare import run_bounded
from onnx import TensorProto, helper
from onnx import numpy_helper as nh
from onnx.reference import ReferenceEvaluator

from tests.support import zoo


def _reference(m: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    ref = ReferenceEvaluator(m)
    name = m.graph.input[0].name
    outs = [ref.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]


def _close(y: np.ndarray, ref: np.ndarray, tol: float = 0.03) -> bool:
    return float(np.abs(y - ref).max()) <= tol * float(np.abs(ref).max())


def _opset6_batchnorm_around_gemm() -> onnx.ModelProto:
    """The file that made qonnx's channels-last conversion loop: opset 6, IR 3, initializers
    listed as inputs, Gemm -> Unsqueeze -> BatchNormalization -> Squeeze."""
    r = np.random.default_rng(0)
    arrays = {"w": r.standard_normal((4, 8)), "b": r.standard_normal(4), "s": r.uniform(.5, 1, 4),
              "bb": r.standard_normal(4), "mu": r.standard_normal(4), "var": r.uniform(.5, 1, 4)}
    inits = [nh.from_array(v.astype(np.float32), k) for k, v in arrays.items()]
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, broadcast=1),
             helper.make_node("Unsqueeze", ["g"], ["u"], axes=[2]),
             helper.make_node("BatchNormalization", ["u", "s", "bb", "mu", "var"], ["bn"],
                              is_test=1),
             helper.make_node("Squeeze", ["bn"], ["y"], axes=[2])]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])] + [
        helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims)) for i in inits]
    g = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [1, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)])
    m.ir_version = 3
    return m


def test_opset6_file_is_upgraded_and_compiles() -> None:
    m = _opset6_batchnorm_around_gemm()
    x = np.random.default_rng(1).standard_normal((32, 8)).astype(np.float32)
    program, _ = compile_model(m, SMALL, x)
    assert _close(execute(program, x[:8]), _reference(m, x[:8])[0])


def test_keras_nhwc_transposes_cost_nothing() -> None:
    """NHWC input -> Transpose(0,3,1,2) -> Conv -> Relu -> Transpose(0,2,3,1) -> Flatten -> Gemm."""
    r = np.random.default_rng(2)
    inits = [nh.from_array(r.standard_normal((4, 3, 3, 3)).astype(np.float32), "cw"),
             nh.from_array(r.standard_normal((144, 5)).astype(np.float32), "dw")]
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "cw"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Transpose", ["r"], ["h"], perm=[0, 2, 3, 1]),
             helper.make_node("Flatten", ["h"], ["f"]),
             helper.make_node("MatMul", ["f", "dw"], ["y"])]
    g = helper.make_graph(nodes, "keras", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 6, 6, 3])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = sample_inputs((6, 6, 3), 16, seed=3)
    program, _ = compile_model(m, SMALL, x)
    ops = [i["op"] for i in program.instructions if i["op"] not in ("quantize", "dequantize")]
    assert ops == ["gemm", "reshape", "gemm"]  # no host transpose: both became layout changes
    assert _close(execute(program, x[:4]), _reference(m, x[:4])[0])


def test_no_shape_information_and_two_outputs() -> None:
    module, x0 = zoo.build("lenet")
    m = export_torch(module, x0)
    del m.graph.value_info[:]
    hidden = next(n.output[0] for n in m.graph.node if n.op_type == "MaxPool")
    m.graph.output.append(helper.make_tensor_value_info(hidden, TensorProto.FLOAT, [None] * 4))
    del m.graph.output[0].type.tensor_type.shape.dim[:]
    m.graph.output[0].type.tensor_type.shape.dim.add()
    m.graph.output[0].type.tensor_type.shape.dim.add()  # rank only: no dimension is known
    x = sample_inputs((1, 8, 8), 32, seed=4)
    program, _ = compile_model(m, SMALL, x)
    ys = execute(program, x[:4])
    refs = _reference(m, x[:4])
    assert len(ys) == 2 and len(program.outputs) == 2
    assert all(_close(y, r) for y, r in zip(ys, refs, strict=True))
    assert run(program, x[:4]).output.shape == refs[0].shape


def test_qdq_model_uses_its_scales(tmp_path) -> None:
    """onnxruntime static quantisation (QDQ): activation ranges come from the file's scales."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    module, x0 = zoo.build("cnn_bn")
    fp = tmp_path / "f.onnx"
    onnx.save(export_torch(module, x0), fp)
    x = sample_inputs((1, 8, 8), 32, seed=5)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": x[i:i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.it, None)

    qp = tmp_path / "q.onnx"
    quantize_static(str(fp), str(qp), Reader(), quant_format=QuantFormat.QDQ)
    qm = onnx.load(qp)
    assert any(n.op_type == "QuantizeLinear" for n in qm.graph.node)
    # one calibration sample: the activation ranges come from the file's scales
    program, _ = compile_model(str(qp), SMALL, x[:1])
    y = execute(program, x[:8])
    # within 8 %: symmetric int8 has half the steps of the file's uint8 for non-negative tensors
    assert _close(y, _reference(qm, x[:8])[0], 0.08)   # the QDQ model's own semantics
    relu = "/2/Relu_output_0_DequantizeLinear_Output"  # onnxruntime dropped the Relu: uint8 zp 0
    assert program.meta["stats"][relu] == pytest.approx(255 * float(nh.to_array(next(
        i for i in qm.graph.initializer if i.name == "/2/Relu_output_0_scale"))))
    assert any(i["op"] == "relu" or i.get("relu") for i in program.instructions)


def _sleep() -> bytes:
    time.sleep(30)
    return b""


def _allocate() -> bytes:
    return bytes(np.ones(1 << 31, np.uint8))


def _crash() -> bytes:
    os.abort()


@pytest.mark.parametrize(("fn", "message"), [(_sleep, "did not finish within 1 s"),
                                             (_allocate, "memory bound"),
                                             (_crash, "crashed")])
def test_bounded_step_ends_cleanly(fn, message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(CompileError, match=message):
        run_bounded(fn, "model", "step", timeout_s=1.0, memory_bytes=512 << 20)
    assert time.perf_counter() - t0 < 10
