"""How a worker prices a bid: from the job's public manifest and its own measured speed.

The work of a training job is known before anyone sees the data: the manifest gives the model's
multiply-accumulates per sample (forward pass) and the number of training samples, the recipe
gives the epochs. Training costs about three forward passes per sample (forward, gradient w.r.t.
activations, gradient w.r.t. weights), so

    work_macs   = 3 x macs_per_sample x train_samples x epochs
    train_s     = work_macs / measured_macs_per_s + fixed_overhead_s
    ask         = (train_s x price_per_s) x (1 + margin), at least ``min_ask``

``measured_macs_per_s`` comes from the backend's own benchmark on this machine (the node profiles
itself at start; see ``WorkerProfile.measure``). A worker that trains on a systolic array (golden,
rtl or fpga backend; ``clock_hz`` set) knows its time exactly instead: the manifest's GEMM shapes,
batch size and epochs fix every array command of the run, so ``train_s = array_cycles / clock_hz
+ fixed_overhead_s``, ``array_cycles`` from the cycle model. ``price_per_s`` is what the operator wants per
second of its hardware (electricity, wear, opportunity), ``margin`` its profit. A worker bids only
when its ask is within the job's maximum price and its time estimate, with a safety factor, fits
the work window. The auction is pay-as-bid (the winner is paid its own ask); the formula is
deliberately cost-based (the operator's own price for its time) rather than a guess at the
other bids.

A worker that already holds jobs (won, or still in auctions it may win) starts a new one only
after them: ``queue_s`` = the work held ahead of it, in wall-clock seconds per training slot,
every open bid counted as won (an honest worker never promises more than it can deliver). The
quote has to fit the work window *after* the queue, and the ask carries the wait as a cost
(``WAIT_WEIGHT`` of the price per second while the job sits queued: the requester's result
comes later, and the slot is promised), so a worker busy with won work asks more than an idle
one and jobs that arrive over time spread over the workers.

The ask is priced in *profile* seconds (what the job needs on this hardware by the backend's
own benchmark); the measured ``speed`` (actual over profile seconds of its past trainings)
corrects only the time estimate and so the deadline arithmetic. On a machine shared with other
load the measured speed is mostly contention, which only a worker that trained recently has
measured: pricing from it made whoever trained last the dearest bidder, whatever its price.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

BACKWARD_FACTOR = 3.0
DEADLINE_SAFETY = 2.0
WAIT_WEIGHT = 0.5


class PricingError(ValueError):
    """A manifest or profile that cannot be priced (missing or non-positive figures)."""


@dataclass(frozen=True)
class WorkLoad:
    """The figures of a job that determine its cost; all from the public manifest."""

    macs_per_sample: int
    train_samples: int
    epochs: int
    array_cycles: int = 0  # cycles of the whole run on the worker's array (0: not priced so)

    def __post_init__(self) -> None:
        for name in ("macs_per_sample", "train_samples", "epochs"):
            if getattr(self, name) <= 0:
                raise PricingError(f"workload {name} must be > 0, got {getattr(self, name)}")
        if self.array_cycles < 0:
            raise PricingError(f"workload array_cycles must be >= 0, got {self.array_cycles}")

    @property
    def macs(self) -> float:
        return BACKWARD_FACTOR * self.macs_per_sample * self.train_samples * self.epochs


@dataclass(frozen=True)
class WorkerProfile:
    """A worker's hardware and its operator's prices (tokens, not base units). ``clock_hz``:
    the clock of the systolic array it trains on (0 for torch backends)."""

    backend: str
    macs_per_s: float
    price_per_s: float
    margin: float = 0.2
    overhead_s: float = 2.0
    min_ask: float = 0.01
    clock_hz: float = 0.0

    def __post_init__(self) -> None:
        if self.macs_per_s <= 0:
            raise PricingError(f"profile macs_per_s must be > 0, got {self.macs_per_s}")
        if self.price_per_s < 0 or self.margin < 0 or self.overhead_s < 0 or self.clock_hz < 0:
            raise PricingError("profile price_per_s, margin, overhead_s and clock_hz must be >= 0")

    @staticmethod
    def measure(backend: str = "cpu", seconds: float = 0.3) -> float:
        """Measured multiply-accumulates per second of a dense float32 GEMM on this machine: the
        kernel that dominates MLP/conv training. Used when the backend offers no profile."""
        import numpy as np

        n = 256
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        reps, t0 = 0, time.perf_counter()
        while True:
            a @ b
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                return reps * n**3 / dt


@dataclass(frozen=True)
class Quote:
    """A priced bid: the estimated wall-clock training time, the ask (tokens), the work held
    ahead of it (``queue_s``, wall-clock, every open bid won) and the wait its ask charges for
    (``wait_s``, the same queue in profile seconds)."""

    seconds: float
    ask: float
    queue_s: float = 0.0
    wait_s: float = 0.0

    def fits(self, max_price: float, work_window_s: float,
             start_in_s: float = 0.0) -> tuple[bool, str]:
        """Whether to bid, and why not. ``start_in_s``: how long from now until the work window
        can open at the earliest (the rest of the auction); the queue runs meanwhile."""
        if self.ask > max_price:
            return False, f"ask {self.ask:.4g} exceeds the job's max price {max_price:.4g}"
        need = self.queue_s + self.seconds * DEADLINE_SAFETY
        if need > work_window_s + max(start_in_s, 0.0):
            why = (f"estimated {self.seconds:.1f}s (x{DEADLINE_SAFETY} safety)")
            if self.queue_s > 0:
                why += f" after {self.queue_s:.1f}s of queued work"
            return False, f"{why} does not fit the {work_window_s:.0f}s work window"
        return True, "ok"


def profile_seconds(work: WorkLoad, profile: WorkerProfile) -> float:
    """What ``work`` takes on ``profile``'s hardware by its own measurements (no correction)."""
    if profile.clock_hz > 0:
        if work.array_cycles <= 0:
            raise PricingError("an array worker prices from the array cycles of the job; the "
                               "workload has none (the manifest lists no GEMM shapes)")
        return work.array_cycles / profile.clock_hz + profile.overhead_s
    return work.macs / profile.macs_per_s + profile.overhead_s


def quote(work: WorkLoad, profile: WorkerProfile, *, queue_s: float = 0.0,
          wait_s: float | None = None, speed: float = 1.0) -> Quote:
    """The cost-based ask for ``work`` on ``profile``: the job's profile seconds plus
    ``WAIT_WEIGHT`` x the wait (``wait_s`` profile seconds; default ``queue_s`` / speed), priced
    per second; its wall-clock estimate is scaled by the measured ``speed`` and must fit after
    ``queue_s`` (see the module docstring)."""
    if queue_s < 0 or speed <= 0 or (wait_s is not None and wait_s < 0):
        raise PricingError(f"queue_s and wait_s must be >= 0 and speed > 0, got {queue_s}, "
                           f"{wait_s}, {speed}")
    cost_s = profile_seconds(work, profile)
    wait = queue_s / speed if wait_s is None else wait_s
    ask = max(profile.min_ask,
              (cost_s + WAIT_WEIGHT * wait) * profile.price_per_s * (1.0 + profile.margin))
    return Quote(seconds=cost_s * speed, ask=ask, queue_s=queue_s, wait_s=wait)


SPEED_EMA = 0.5
SPEED_BOUNDS = (0.1, 20.0)


def updated_speed(previous: float, estimated_s: float, actual_s: float) -> float:
    """The worker's speed ratio after one training (exponential average of actual/estimated,
    bounded so one outlier cannot make it bid absurdly)."""
    if estimated_s <= 0 or actual_s <= 0:
        return previous
    ratio = min(max(actual_s / estimated_s, SPEED_BOUNDS[0]), SPEED_BOUNDS[1])
    return (1 - SPEED_EMA) * previous + SPEED_EMA * ratio


def to_base_units(amount: float, decimals: int = 18) -> int:
    """Tokens to the integer base units the contracts use (rounded to 1e-6 token first, so
    float noise never changes a bid)."""
    return int(round(amount * 1_000_000)) * 10 ** (decimals - 6)


def from_base_units(amount: int, decimals: int = 18) -> float:
    return amount / 10**decimals


AMOUNT_FACTS = ("price", "withdrawn", "ask", "max_price", "validator_fee", "stake", "earned",
                "spent", "amount")
"""Facts the roles record in token base units (shown as tokens by logs, status, the API)."""


def format_tokens(amount: int, decimals: int = 18, symbol: str = "MWT") -> str:
    """Base units as a human amount with the token's symbol ("12.5 MWT"): at most 6 decimals,
    no trailing zeros, so logs and ``status`` read the same as the job.toml's prices."""
    text = f"{from_base_units(int(amount), decimals):.6f}".rstrip("0").rstrip(".")
    return f"{text} {symbol}".strip()


TRAIN_STATE_FACTOR = 4  # weights, gradients and two Adam moments, float32 each
DATA_COPIES = 2         # the arrays as loaded, and their float32 tensors


def available_memory() -> int:
    """Bytes of physical memory available now (Linux sysconf; 0 when unknown)."""
    import os

    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def training_memory(params: int, train_bytes: int) -> int:
    """A worker's estimate of the memory a training job needs (activations are small beside
    the data for the models the market serves; the factor 2 below covers them)."""
    return 2 * (TRAIN_STATE_FACTOR * 4 * params + DATA_COPIES * train_bytes)


def fits_memory(manifest: dict, available: int | None = None) -> tuple[bool, str]:
    """Whether the job's training state and data fit in this machine's free memory."""
    need = training_memory(int(manifest.get("params", 0)), int(manifest.get("train_bytes", 0)))
    have = available_memory() if available is None else available
    if have and need > have:
        return False, f"needs about {need / 2**20:.0f} MiB, {have / 2**20:.0f} MiB free"
    return True, "ok"
