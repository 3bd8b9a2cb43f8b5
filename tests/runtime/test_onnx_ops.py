"""The converter op by op against onnxruntime (the reference ONNX implementation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
import torch
from morphware.runtime.model.onnx_torch import to_torch
from onnx import TensorProto, helper, numpy_helper

ort = pytest.importorskip("onnxruntime")
RNG = np.random.default_rng(0)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, tuple[int, ...]],
           inits: dict[str, np.ndarray], opset: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _check(nodes: list[onnx.NodeProto], inputs: dict[str, tuple[int, ...]],
           inits: dict[str, np.ndarray] | None = None, opset: int = 17) -> None:
    m = _model(nodes, inputs, inits or {}, opset)
    feeds = {k: RNG.standard_normal(s).astype(np.float32) for k, s in inputs.items()}
    want = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = to_torch(m).eval()(*[torch.from_numpy(v) for v in feeds.values()])
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=1e-5)


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _i(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


N = helper.make_node
CASES: dict[str, tuple[list[onnx.NodeProto], dict[str, tuple[int, ...]], dict[str, Any], int]] = {
    "gemm_alpha_beta_transA": ([N("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transA=1)],
                               {"x": (4, 3)}, {"w": _f(4, 5), "c": _f(5)}, 17),
    "matmul_batched": ([N("MatMul", ["x", "w"], ["y"])], {"x": (2, 3, 4)}, {"w": _f(4, 6)}, 17),
    "sub_mul_div": ([N("Sub", ["x", "a"], ["s"]), N("Mul", ["s", "a"], ["m"]),
                     N("Div", ["m", "b"], ["y"])], {"x": (2, 3)},
                    {"a": _f(3), "b": np.full(3, 2.5, np.float32)}, 17),
    "leaky_sigmoid_tanh": ([N("LeakyRelu", ["x"], ["l"], alpha=0.3), N("Sigmoid", ["l"], ["s"]),
                            N("Tanh", ["s"], ["y"])], {"x": (3, 4)}, {}, 17),
    "softmax_axis0": ([N("Softmax", ["x"], ["y"], axis=0)], {"x": (3, 4)}, {}, 17),
    "logsoftmax_opset11": ([N("LogSoftmax", ["x"], ["y"], axis=1)], {"x": (2, 3, 4)}, {}, 11),
    "conv_asymmetric_pads": ([N("Conv", ["x", "w"], ["y"], pads=[0, 1, 2, 0], strides=[2, 1])],
                             {"x": (1, 2, 7, 6)}, {"w": _f(3, 2, 3, 3)}, 17),
    "maxpool_ceil_asym": ([N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                             pads=[1, 0, 0, 1], ceil_mode=1)], {"x": (1, 2, 7, 7)}, {}, 17),
    "avgpool_count_pad": ([N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                             count_include_pad=1)], {"x": (1, 2, 5, 5)}, {}, 17),
    "global_pools": ([N("GlobalAveragePool", ["x"], ["a"]), N("GlobalMaxPool", ["x"], ["b"]),
                      N("Add", ["a", "b"], ["y"])], {"x": (2, 3, 4, 5)}, {}, 17),
    "batchnorm": ([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
                  {"x": (2, 3, 4, 4)},
                  {"s": _f(3), "b": _f(3), "m": _f(3), "v": np.abs(_f(3)) + 0.5}, 17),
    "flatten_axis2": ([N("Flatten", ["x"], ["y"], axis=2)], {"x": (2, 3, 4, 5)}, {}, 17),
    "reshape_zero_and_minus1": ([N("Reshape", ["x", "s"], ["y"])], {"x": (2, 3, 4)},
                                {"s": _i(0, -1)}, 17),
    "transpose_concat": ([N("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                          N("Concat", ["t", "t"], ["y"], axis=2)], {"x": (2, 3, 4)}, {}, 17),
    "shape_gather_negative": ([N("Shape", ["x"], ["s"]), N("Gather", ["s", "i"], ["g"]),
                               N("Cast", ["g"], ["y"], to=TensorProto.FLOAT)],
                              {"x": (2, 3, 4)}, {"i": _i(-1, 0)}, 17),
    "unsqueeze_squeeze_13": ([N("Unsqueeze", ["x", "a"], ["u"]), N("Squeeze", ["u", "a"], ["y"])],
                             {"x": (2, 3)}, {"a": _i(0, 3)}, 13),
    "unsqueeze_attr_11": ([N("Unsqueeze", ["x"], ["y"], axes=[1])], {"x": (2, 3)}, {}, 11),
    "clip_inputs": ([N("Clip", ["x", "lo", "hi"], ["y"])], {"x": (3, 4)},
                    {"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)}, 17),
    "reduce_mean_sum_18": ([N("ReduceMean", ["x", "a"], ["m"], keepdims=0),
                            N("ReduceSum", ["m", "b"], ["y"], keepdims=1)], {"x": (2, 3, 4)},
                           {"a": _i(1), "b": _i(-1)}, 18),
    "exp_log_sqrt_pow": ([N("Abs", ["x"], ["a"]), N("Sqrt", ["a"], ["s"]), N("Exp", ["s"], ["e"]),
                          N("Log", ["e"], ["l"]), N("Pow", ["l", "p"], ["n"]),
                          N("Neg", ["n"], ["y"])], {"x": (3, 3)},
                         {"p": np.array(2.0, np.float32)}, 17),
    "dropout_identity": ([N("Dropout", ["x"], ["d"]), N("Identity", ["d"], ["y"])],
                         {"x": (3, 3)}, {}, 17),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case: str) -> None:
    nodes, inputs, inits, opset = CASES[case]
    _check(nodes, inputs, inits, opset)
