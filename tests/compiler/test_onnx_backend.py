"""The onnx package's backend test data (pytorch-converted, pytorch-operator), compiled and run
on the golden executor against the expected outputs shipped with each model.

Tolerance, as max |y - expected| over the expected output's range: 2 % at int8 (every model),
0.1 % at int16 (a sample; ``python -m bench compiler`` covers all).
Every single-input model either matches or is refused for a reason listed here (3-D windows,
transposed convolution, ops across the batch axis); a new refusal or a mismatch fails.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from morphware.compiler import run
from morphware.systolic.params import ArrayParams

from tests.support import onnx_cases as oc

TOLERANCE = {8: 0.02, 16: 0.001}

REFUSED = {
    r"test_(AvgPool|MaxPool)3d.*": "3-D windows are not supported",
    r"test_BatchNorm3d.*": "per-channel op on a rank-5 tensor",
    r"test_Conv3d.*": "3-D convolution is not supported",
    r"test_(ConvTranspose2d.*|operator_convtranspose)": "transposed convolution",
    r"test_(PoissonNLLLLoss_no_reduce|operator_params)": "constant operand spans the batch axis",
    r"test_operator_chunk": "across the batch axis",
    r"test_operator_index": "batch axis",
    r"test_operator_view": "outside rank 1",
}


def _names() -> list[tuple[str, str]]:
    return [(s, d.name) for s in oc.SUITES for d in sorted((oc.data_dir() / s).iterdir())
            if d.is_dir()]


def _refusal(name: str) -> str | None:
    return next((why for pat, why in REFUSED.items() if re.fullmatch(pat, name)), None)


INT16_SAMPLE = ("test_Conv1d_dilated", "test_Conv2d_depthwise_with_multiplier", "test_AvgPool2d",
                "test_BatchNorm2d_eval", "test_Linear", "test_operator_conv", "test_SELU")


def _params() -> list[tuple[str, str, int]]:
    return [(s, n, 8) for s, n in _names()] + [
        (s, n, 16) for s, n in _names() if n in INT16_SAMPLE]


@pytest.mark.parametrize(("suite", "name", "bits"), _params())
def test_backend_model(suite: str, name: str, bits: int) -> None:
    c = oc.case(suite, name)
    if not oc.is_inference(c):
        pytest.skip(f"{len(c.inputs)} inputs ({', '.join(str(x.dtype) for x in c.inputs)}): "
                    "not a single-input float inference graph")
    row = oc.evaluate(c, ArrayParams(8, 8, data_bits=bits))
    why = _refusal(name)
    if why is not None:
        assert row["status"] == "refused" and why in row["reason"], row
        return
    assert row["status"] == "compiled", row
    assert row["rel_error"] <= TOLERANCE[bits], row


def test_claimed_ops_are_covered_by_backend_data() -> None:
    """Each op the compiler claims and the backend data exercises compiles somewhere in it."""
    import onnx
    from morphware.compiler import supported_ops

    seen: set[str] = set()
    for suite, name in _names():
        if _refusal(name) is None:
            seen |= {n.op_type for n in onnx.load(str(oc.data_dir() / suite / name /
                                                       "model.onnx")).graph.node}
    must = {"Conv", "Gemm", "MatMul", "BatchNormalization", "MaxPool", "AveragePool", "Relu",
            "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "PRelu",
            "Clip", "Softmax", "LogSoftmax", "Pad", "Concat", "Reshape", "Transpose", "Flatten",
            "ReduceMean", "ReduceSum", "Split", "Mul", "Add", "Exp", "Sqrt"}
    assert must <= set(supported_ops()), must - set(supported_ops())
    assert must <= seen | {"Concat", "Split"}


@pytest.mark.rtl
@pytest.mark.parametrize("name", ["test_Conv1d_dilated", "test_Conv2d_depthwise_strided"])
def test_golden_equals_rtl(name: str) -> None:
    from morphware.compiler import compile_model

    c = oc.case("pytorch-converted", name)
    program, _ = compile_model(str(c.model), ArrayParams(4, 4, acc_depth=64),
                               oc.calibration(c.inputs[0]))
    gold = run(program, c.inputs[0], "golden")
    rtl = run(program, c.inputs[0], "rtl")
    assert np.array_equal(gold.output, rtl.output)
    assert rtl.cycles == gold.cycles
