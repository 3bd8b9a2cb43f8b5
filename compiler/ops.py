"""The ONNX op types the compiler accepts: each is lowered to the array or run as a host op.

This is the one list: the front end refuses any other op (naming the node) and the runtime's
Program backends (golden, rtl, fpga) advertise exactly these, so a worker never bids on a model
its compiler would refuse. Keep it equal to what ``graph.py`` translates after qonnx's clean-up.
"""

from __future__ import annotations

# GEMM-shaped ops that run on the array (Conv through im2col).
ARRAY_OPS = frozenset({"Gemm", "MatMul", "Conv"})

# Ops the host executor runs (compiler/hostops.py), or that qonnx/hls4ml fold away (BatchNorm
# into the preceding layer, Constant/Identity/Dropout into nothing).
HOST_OPS = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Elu", "Softplus", "Softsign",
    "MaxPool", "GlobalAveragePool", "GlobalMaxPool", "Pad", "Concat", "Reshape", "Flatten",
    "Transpose", "Add", "Sub", "Mul", "Max", "BatchNormalization", "Constant", "Identity",
    "Dropout",
})


def supported_ops() -> frozenset[str]:
    """Every ONNX op type a Program can be compiled from (array or host)."""
    return ARRAY_OPS | HOST_OPS
