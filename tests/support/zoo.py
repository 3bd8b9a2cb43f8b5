"""A small model zoo: the torch modules the compiler, runtime and benchmarks test against.

Each builder returns ``(module, example_input)``; the example input fixes the ONNX export shape
(batch 1) and is the shape the compiled Program expects per sample. Inputs are 8x8 single-channel
images (scikit-learn's digits) or flat 64-vectors, so every model trains in seconds on a CPU.
torch is imported lazily so that importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

N_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)


def _torch() -> Any:
    import torch

    return torch


def mlp(hidden: int = 32, seed: int = 0) -> tuple[Any, Any]:
    """Flat 64 -> hidden -> hidden -> 10 multilayer perceptron."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, N_CLASSES))
    return model.eval(), torch.zeros(1, 64)


def lenet(seed: int = 0) -> tuple[Any, Any]:
    """LeNet-style CNN for 8x8 images: conv-relu-pool, conv-relu, flatten, two dense layers."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, N_CLASSES))
    return model.eval(), torch.zeros(1, *IMAGE_SHAPE)


def cnn_bn(seed: int = 0) -> tuple[Any, Any]:
    """CNN with batch normalisation after each convolution (folded by the compiler)."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 4 * 4, N_CLASSES))
    _randomise_bn(model, seed)
    return model.eval(), torch.zeros(1, *IMAGE_SHAPE)


def _randomise_bn(model: Any, seed: int) -> None:
    """Give batch-norm layers non-trivial statistics so that folding them is actually tested."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def residual(seed: int = 0) -> tuple[Any, Any]:
    """A residual block: conv-relu, then conv + skip connection (Add), relu, dense head."""
    torch = _torch()
    nn = torch.nn

    class ResidualNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Linear(8 * 8 * 8, N_CLASSES)

        def forward(self, x: Any) -> Any:
            x = torch.relu(self.stem(x))
            y = self.conv2(torch.relu(self.conv1(x)))
            x = torch.relu(x + y)
            return self.head(torch.flatten(x, 1))

    torch.manual_seed(seed)
    return ResidualNet().eval(), torch.zeros(1, *IMAGE_SHAPE)


def digits(seed: int = 0, train_fraction: float = 0.8) -> dict[str, Any]:
    """scikit-learn's digits (ships with scikit-learn), scaled to [0, 1] and split with a fixed
    seed: ``x_train``, ``y_train``, ``x_test``, ``y_test`` (x flat, 64 features)."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    cut = int(train_fraction * len(x))
    return {"x_train": x[idx[:cut]], "y_train": y[idx[:cut]],
            "x_test": x[idx[cut:]], "y_test": y[idx[cut:]]}


def train(module: Any, x: Any, y: Any, epochs: int, seed: int = 0, lr: float = 3e-3) -> Any:
    """A few epochs of Adam with cross-entropy, deterministic for a fixed seed; returns the module
    in eval mode. One torch thread: these models are tiny and threads only contend."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        opt = torch.optim.Adam(module.parameters(), lr=lr)
        module.train()
        for _ in range(epochs):
            perm = torch.randperm(len(xt))
            for s in range(0, len(xt), 64):
                b = perm[s:s + 64]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(module(xt[b]), yt[b]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return module.eval()


ZOO: dict[str, Callable[..., tuple[Any, Any]]] = {
    "mlp": mlp, "lenet": lenet, "cnn_bn": cnn_bn, "residual": residual,
}


def build(name: str, seed: int = 0) -> tuple[Any, Any]:
    """Build a zoo model by name; raises KeyError listing the known names."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name](seed=seed)
