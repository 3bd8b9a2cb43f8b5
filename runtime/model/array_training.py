"""Training with every GEMM on the systolic array, the rest in torch on the host.

``array_module(model, gemm, bits)`` converts an ONNX model like ``onnx_torch.to_torch`` but routes
Gemm, MatMul and Conv (through im2col) to ``ArrayMatmul``, an autograd function whose forward
``Y = A @ B`` and backward ``dA = dY @ B.T``, ``dB = A.T @ dY`` are integer products on the array
(``morphware.compiler.training``: quantisation, overflow-proof scales, commands). The host keeps
the float32 master weights, the loss, element-wise ops, im2col/col2im and the optimizer, so the
training engine (checkpoints, resume, NaN stop, ONNX export) runs this module unchanged.

Stochastic rounding of gradients draws from torch's global generator: the training engine seeds
it from the recipe and saves it in checkpoints, so a run is reproducible and resumes exactly.
While torch traces the module for ONNX export the float ops are used: the exported graph is the
ordinary float model of the trained weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from morphware.compiler.training import IntGemm, Operand, QTensor, quantize_pair
from morphware.runtime.model.onnx_torch import (
    Attrs,
    OnnxModule,
    OpBuilder,
    UnsupportedOpError,
    supported_ops,
)

BITS = (8, 16)


def train_ops() -> frozenset[str]:
    """ONNX ops array training runs: GEMMs on the array, every other converter op on the host."""
    return frozenset(supported_ops()) | {"Constant"}


@dataclass
class ArrayContext:
    """The array a module trains on: the integer GEMM runner and the operand width."""

    gemm: IntGemm
    bits: int


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def _noise(shape: torch.Size) -> np.ndarray:
    """Uniform [0, 1) noise for stochastic rounding, from torch's global (seeded) generator."""
    return torch.rand(shape, dtype=torch.float64).numpy()


class ArrayMatmul(torch.autograd.Function):
    """``a @ b`` (2-D) with the forward and both gradients computed on the array."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, array: ArrayContext) -> torch.Tensor:
        ctx.array = array
        ctx.shapes = (a.shape, b.shape)
        ctx.finite = bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
        if not ctx.finite:  # never send NaN to the array; the loss turns NaN and training stops
            return torch.full((a.shape[0], b.shape[1]), float("nan"), dtype=a.dtype)
        qa, qb = quantize_pair(Operand(_np(a), None), Operand(_np(b), 0), array.bits)
        ctx.qa, ctx.qb = qa, qb
        return torch.from_numpy(array.gemm.matmul(qa, qb)).to(a.dtype)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None,
                                                         None]:
        need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not ctx.finite or not bool(torch.isfinite(dy).all()):
            sa, sb = ctx.shapes
            return (torch.full(sa, float("nan"), dtype=dy.dtype) if need_a else None,
                    torch.full(sb, float("nan"), dtype=dy.dtype) if need_b else None, None)
        array: ArrayContext = ctx.array
        qa, qb = ctx.qa, ctx.qb
        g = _np(dy)
        pairs: list[tuple[QTensor, QTensor]] = []
        if need_a:  # dA = dY @ B.T = (dY * colscale(B)) @ qB.T
            fixed_b = QTensor(qb.q.T, np.array(1.0))
            pairs.append(quantize_pair(Operand(g * qb.scale, 1, _noise(dy.shape)), fixed_b,
                                       array.bits))
        if need_b:  # dB = A.T @ dY, A's forward integers reused
            pairs.append(quantize_pair(qa.t, Operand(g, 0, _noise(dy.shape)), array.bits))
        outs = iter(array.gemm.matmuls(pairs)) if pairs else iter(())
        da = torch.from_numpy(next(outs)).to(dy.dtype) if need_a else None
        db = torch.from_numpy(next(outs)).to(dy.dtype) if need_b else None
        return da, db, None


def array_matmul(a: torch.Tensor, b: torch.Tensor, array: ArrayContext) -> torch.Tensor:
    """``a @ b`` on the array; leading axes of ``a`` are batch rows (``b`` must be 2-D)."""
    if b.dim() != 2 or a.dim() < 2:
        raise UnsupportedOpError(f"array training runs products of an (..., K) input and a 2-D "
                                 f"(K, N) operand; got {tuple(a.shape)} @ {tuple(b.shape)}")
    lead = a.shape[:-1]
    y = ArrayMatmul.apply(a.reshape(-1, a.shape[-1]), b, array)
    return y.reshape(*lead, b.shape[1])


def _traced(array_fn: Callable[..., torch.Tensor], float_fn: Callable[..., torch.Tensor]
            ) -> Callable[..., torch.Tensor]:
    """The array op, except while torch traces the module for ONNX export."""
    def fn(*args: Any) -> torch.Tensor:
        return float_fn(*args) if torch.jit.is_tracing() else array_fn(*args)
    return fn


class ArrayBuilder(OpBuilder):
    """The converter's op builder with the GEMM-shaped ops sent to the array."""

    def __init__(self, opset: int, consts: dict[str, torch.Tensor], array: ArrayContext):
        super().__init__(opset, consts)
        self.array = array

    def op_Gemm(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
        array = self.array

        def gemm(x: torch.Tensor, w: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
            y = array_matmul(x.t() if ta else x, w.t() if tb else w, array)
            if alpha != 1.0:
                y = y * alpha
            if c is not None:
                y = y + (c * beta if beta != 1.0 else c)
            return y
        return _traced(gemm, super().op_Gemm(node, a))

    def op_MatMul(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        array = self.array
        return _traced(lambda x, w: array_matmul(x, w, array), super().op_MatMul(node, a))

    def op_Conv(self, node: onnx.NodeProto, a: Attrs) -> Callable[..., Any]:
        float_conv = super().op_Conv(node, a)
        if int(a.get("group", 1)) != 1:
            raise UnsupportedOpError(f"node {node.name!r}: grouped Conv (group="
                                     f"{a.get('group')}) does not train on the array")
        stride = [int(v) for v in a.get("strides", [1, 1])]
        dil = [int(v) for v in a.get("dilations", [1, 1])]
        pad, fpad = self._spatial(node, a, 2)
        array = self.array

        def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
            if fpad is not None:
                x = F.pad(x, fpad)
            n, _, h, wd = x.shape
            cout, _, kh, kw = w.shape
            oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
            ow = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
            cols = F.unfold(x, (kh, kw), dilation=dil, padding=pad, stride=stride)  # N, CKK, L
            patches = cols.transpose(1, 2).reshape(n * oh * ow, -1)
            y = array_matmul(patches, w.reshape(cout, -1).t(), array)
            y = y.reshape(n, oh * ow, cout).transpose(1, 2).reshape(n, cout, oh, ow)
            return y if b is None else y + b.view(1, -1, 1, 1)
        return _traced(conv, float_conv)


def array_module(model: onnx.ModelProto, gemm: IntGemm, bits: int) -> OnnxModule:
    """A trainable module of ``model`` whose GEMMs run on ``gemm`` with ``bits``-bit operands;
    ``module.array`` is its ArrayContext (``module.array.gemm.stats``: commands and cycles)."""
    if bits not in BITS:
        raise ValueError(f"array training takes 8- or 16-bit operands, got {bits}")
    if gemm.params.data_bits != bits:
        raise ValueError(f"the array is int{gemm.params.data_bits}, training asked for int{bits}")
    ctx = ArrayContext(gemm, bits)
    module = OnnxModule(model, lambda opset, consts: ArrayBuilder(opset, consts, ctx))
    module.array = ctx
    return module
