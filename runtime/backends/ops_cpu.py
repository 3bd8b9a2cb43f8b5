"""The ``cpu`` backend: torch on the host CPU; always usable when torch imports."""

from __future__ import annotations

from morphware.runtime.backends.torch_common import TorchBackend


class CpuBackend(TorchBackend):
    name = "cpu"
    priority = 60
    description = "PyTorch on the CPU: training and float inference"

    def available(self) -> tuple[bool, str]:
        try:
            import torch
        except ImportError as e:
            return False, f"torch does not import ({e}); install torch==2.13.0 (CPU build)"
        return True, f"torch {torch.__version__}, {torch.get_num_threads()} threads"

    def torch_device(self) -> str:
        return "cpu"


BACKEND = CpuBackend
