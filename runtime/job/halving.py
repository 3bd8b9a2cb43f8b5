"""Successive halving with epochs as the budget: which trials train how far.

Rung 0 trains every configuration for ``min_epochs``; each next rung keeps the best 1/eta of
the previous one and trains them further, from their trained weights, until the full budget.
Budgets are cumulative epochs; a promoted trial's job trains only the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    index: int
    epochs: int  # cumulative training epochs a trial has after this rung
    trials: int  # how many trials train at this rung


def rungs(trials: int, min_epochs: int | None, max_epochs: int, eta: int) -> list[Rung]:
    """The plan; without ``min_epochs`` one rung trains every trial the full budget."""
    if trials < 1 or max_epochs < 1:
        raise ValueError(f"need trials >= 1 and epochs >= 1, got {trials} and {max_epochs}")
    if min_epochs is None or min_epochs >= max_epochs:
        return [Rung(0, max_epochs, trials)]
    if eta < 2:
        raise ValueError(f"eta must be >= 2, got {eta}")
    # as many rungs as both the budget ratio and the trial count allow
    by_budget = math.floor(math.log(max_epochs / min_epochs, eta) + 1e-9)
    by_trials = math.floor(math.log(trials, eta) + 1e-9)
    extra = max(0, min(by_budget, by_trials))
    out = []
    for r in range(extra + 1):
        epochs = max_epochs if r == extra else min(max_epochs, min_epochs * eta**r)
        out.append(Rung(r, epochs, max(1, trials // eta**r)))
    return out


def promote(values: dict[int, float], keep: int, maximize: bool) -> list[int]:
    """The ``keep`` best trial numbers by value (ties: the earlier trial), best first."""
    ranked = sorted(values, key=lambda n: (-values[n] if maximize else values[n], n))
    return ranked[:keep]
