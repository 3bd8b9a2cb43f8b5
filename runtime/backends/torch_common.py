"""What the cpu and cuda backends share: float inference of an ONNX model through torch."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
from morphware.runtime.backends.base import Backend, BackendError, Capabilities

if TYPE_CHECKING:
    import onnx

BATCH = 1024


class TorchBackend(Backend):
    """A torch device running the ONNX->torch converter's module, in float32."""

    def __init__(self) -> None:
        self._modules: dict[str, Any] = {}

    def capabilities(self) -> Capabilities:
        from morphware.runtime.model.onnx_torch import supported_ops

        ops = frozenset(supported_ops()) | {"Constant"}
        return Capabilities(train=True, programs=False, ops=ops, train_ops=ops)

    def training_module(self, model: onnx.ModelProto, bits: int | None = None) -> Any:
        from morphware.runtime.model.onnx_torch import to_torch

        if bits is not None:
            raise BackendError(f"backend {self.name!r} trains in float32; --bits applies to the "
                               "array backends (golden, rtl, fpga)")
        return to_torch(model).to(self.torch_device())

    def predict(self, model: onnx.ModelProto, x: np.ndarray,
                calib: np.ndarray | None = None) -> np.ndarray:
        import torch
        from morphware.runtime.model.onnx_torch import to_torch
        from morphware.runtime.model.safe_io import input_shape, prepare_inputs

        self.require(model)
        x = prepare_inputs(x, input_shape(model), "inputs")
        device = self.torch_device()
        key = hashlib.sha256(model.SerializeToString()).hexdigest()
        module = self._modules.get(key)
        if module is None:  # converted once per model: profiles and repeated calls reuse it
            module = to_torch(model).to(device).eval()
            self._modules = {key: module}

        outs = []
        with torch.inference_mode():
            for i in range(0, len(x), BATCH):
                y = module(torch.from_numpy(x[i:i + BATCH]).to(device))
                y = y[0] if isinstance(y, tuple) else y
                outs.append(y.float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
