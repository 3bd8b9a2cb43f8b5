"""The ONNX op types the compiler accepts: each is lowered to the array, run as a host op, or
folded away before translation.

This is the one list: the importer (``onnx_import.HANDLERS``) refuses any other op, naming the
node, and the runtime's Program backends (golden, rtl, fpga) advertise exactly these, so a
worker never bids on a model its compiler would refuse. docs/compiler-ops.md says where each runs.
"""

from __future__ import annotations

# GEMM-shaped ops that run on the array (Conv through im2col).
ARRAY_OPS = frozenset({"Gemm", "MatMul", "Conv"})

# Ops whose every use is folded into constants before translation (shape arithmetic, weights).
FOLDED_OPS = frozenset({"Constant", "ConstantOfShape", "Shape"})


def supported_ops() -> frozenset[str]:
    """Every ONNX op type a Program can be compiled from (array, host or folded)."""
    from morphware.compiler.onnx_import import HANDLERS

    return frozenset(HANDLERS) | FOLDED_OPS
