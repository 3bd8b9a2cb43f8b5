"""Helpers shared by the compiler tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from typing import Any

import numpy as np
from morphware.systolic.params import ArrayParams

SMALL = ArrayParams(rows=4, cols=4, data_bits=8, acc_depth=64)


def sample_inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """Digits-like inputs in [0, 1]."""
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)



def train(module: Any, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> Any:
    """A few epochs of Adam on (x, y); deterministic for a fixed seed."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only contend on a shared 2-core CI machine
    try:
        return _train(module, x, y, epochs, seed)
    finally:
        torch.set_num_threads(threads)


def _train(module: Any, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for s in range(0, len(xt), 64):
            b = perm[s:s + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xt[b]), yt[b]).backward()
            opt.step()
    return module.eval()
