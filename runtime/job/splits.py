"""The validation split of a search: trials are ranked on it, never on the test set.

Either the job names a validation .npz (checked for rows shared with train or test), or a
fraction of the training set is held out with the recipe's seed, so a restarted search gets the
same split back. Files are written pickle-free, like every other job array.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from morphware.runtime.job.spec import JobSpec
from morphware.runtime.model.safe_io import load_xy


class SplitError(ValueError):
    """The validation split is unusable (shared rows, too few samples, mismatched arrays)."""


@dataclass(frozen=True)
class Split:
    """The files a search's trial jobs use: train for workers, validation for validators."""

    train: Path
    validation: Path
    train_samples: int
    validation_samples: int


def _row_hashes(x: np.ndarray) -> set[bytes]:
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat}


def check_disjoint(named: dict[str, np.ndarray]) -> None:
    """Refuse sets that share input rows: a validation row seen in training would flatter the
    trials it ranks, and one from the test set would leak the acceptance test into selection."""
    hashes = {name: _row_hashes(x) for name, x in named.items()}
    names = list(hashes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = len(hashes[a] & hashes[b])
            if shared:
                raise SplitError(f"{a} and {b} share {shared} input row(s); the sets must be "
                                 f"disjoint (drop the duplicates from one of them)")


def _save(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(path)


def make_split(spec: JobSpec, out_dir: Path) -> Split:
    """The search's (train, validation) files under ``out_dir`` (deterministic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    xt, yt = load_xy(spec.data.train)
    xs, _ = load_xy(spec.data.test)
    if spec.data.validation is not None:
        xv, yv = load_xy(spec.data.validation)
        check_disjoint({"[data].train": xt, "[data].validation": xv, "[data].test": xs})
        return Split(spec.data.train, spec.data.validation, len(xt), len(xv))
    fraction = spec.data.validation_fraction
    if fraction is None:
        raise SplitError("the job names no validation split ([data].validation or "
                         "[data].validation_fraction)")
    n_val = int(round(len(xt) * fraction))
    if n_val < 1 or n_val >= len(xt):
        raise SplitError(f"[data].validation_fraction {fraction} of {len(xt)} training samples "
                         f"leaves {n_val} for validation and {len(xt) - n_val} for training")
    order = np.random.default_rng(spec.training.seed).permutation(len(xt))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    check_disjoint({"the training part": xt[train_idx], "the validation part": xt[val_idx],
                    "[data].test": xs})
    train, val = out_dir / "train.npz", out_dir / "validation.npz"
    _save(train, xt[train_idx], yt[train_idx])
    _save(val, xt[val_idx], yt[val_idx])
    return Split(train, val, len(train_idx), len(val_idx))
