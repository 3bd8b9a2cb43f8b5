"""Write the digits example's data: ``data/train.npz`` and ``data/test.npz``.

The 8x8 digits set ships with scikit-learn, so this needs no download. Pixels are scaled to
[0, 1] as float32; labels are int64 class indices. The split is fixed (seed 0, stratified,
1437 train / 360 test) so the committed files are reproducible: ``python make_data.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def make(out_dir: Path = HERE / "data") -> tuple[Path, Path]:
    """Build the fixed split and write it; returns (train path, test path)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = out_dir / "train.npz", out_dir / "test.npz"
    np.savez_compressed(train, x=x_tr, y=y_tr)
    np.savez_compressed(test, x=x_te, y=y_te)
    return train, test


if __name__ == "__main__":
    for p in make():
        print(p, p.stat().st_size, "bytes")
