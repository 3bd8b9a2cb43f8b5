"""The digits example's model: a small MLP on 8x8 images flattened to 64 features.

``build_model(**hparams)`` is the entry point packaging calls (on the requester's machine only).
"""

from __future__ import annotations

import torch.nn as nn


def build_model(hidden: int = 64, n_in: int = 64, n_classes: int = 10) -> nn.Module:
    """Two hidden layers of ``hidden`` units with ReLU; outputs class logits."""
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )
