"""The ``cuda`` backend: torch on an NVIDIA GPU; preferred over cpu for training and inference."""

from __future__ import annotations

from morphware.runtime.backends.torch_common import TorchBackend


class CudaBackend(TorchBackend):
    name = "cuda"
    priority = 80
    description = "PyTorch on a CUDA GPU: training and float inference"

    def available(self) -> tuple[bool, str]:
        try:
            import torch
        except ImportError as e:
            return False, f"torch does not import ({e})"
        if torch.version.cuda is None:
            return False, f"torch {torch.__version__} is a CPU-only build"
        if not torch.cuda.is_available():
            return False, "no CUDA device visible (driver missing or CUDA_VISIBLE_DEVICES empty)"
        return True, f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"

    def torch_device(self) -> str:
        return "cuda"


BACKEND = CudaBackend
