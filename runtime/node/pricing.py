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
the work window; the sealed second-price auction makes bidding one's true cost the best strategy,
so the formula is deliberately cost-based rather than strategic.

A worker that already holds jobs (won, or still in auctions it may win) starts a new one only
after them: ``wait_s`` = the work queued ahead of it divided by its training slots (one per
device). The quote then has to fit the window *after* the wait, and the ask carries the wait as
a cost (``WAIT_WEIGHT`` of the price per second while the job sits queued: the requester's result
comes later, and the operator's slot is promised), so a busy worker asks more and the auctions
spread work over the idle ones. The estimate itself is corrected by the worker's measured speed
(``speed``: actual over estimated seconds of its past trainings).
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
    """A priced bid: the estimated training time, the wait before it can start (queued work)
    and the ask (tokens)."""

    seconds: float
    ask: float
    wait_s: float = 0.0

    def fits(self, max_price: float, work_window_s: float,
             start_in_s: float = 0.0) -> tuple[bool, str]:
        """Whether to bid, and why not. ``start_in_s``: how long from now until the work window
        can open at the earliest (the rest of the auction); the queue runs meanwhile."""
        if self.ask > max_price:
            return False, f"ask {self.ask:.4g} exceeds the job's max price {max_price:.4g}"
        need = self.wait_s + self.seconds * DEADLINE_SAFETY
        if need > work_window_s + max(start_in_s, 0.0):
            why = (f"estimated {self.seconds:.1f}s (x{DEADLINE_SAFETY} safety)")
            if self.wait_s > 0:
                why += f" after {self.wait_s:.1f}s of queued work"
            return False, f"{why} does not fit the {work_window_s:.0f}s work window"
        return True, "ok"


def quote(work: WorkLoad, profile: WorkerProfile, *, wait_s: float = 0.0,
          speed: float = 1.0) -> Quote:
    """The cost-based ask for ``work`` on ``profile`` after ``wait_s`` of queued work, with the
    estimate scaled by the measured ``speed`` ratio (see the module docstring)."""
    if wait_s < 0 or speed <= 0:
        raise PricingError(f"wait_s must be >= 0 and speed > 0, got {wait_s}, {speed}")
    if profile.clock_hz > 0:
        if work.array_cycles <= 0:
            raise PricingError("an array worker prices from the array cycles of the job; the "
                               "workload has none (the manifest lists no GEMM shapes)")
        seconds = work.array_cycles / profile.clock_hz + profile.overhead_s
    else:
        seconds = work.macs / profile.macs_per_s + profile.overhead_s
    seconds *= speed
    cost_s = seconds + WAIT_WEIGHT * wait_s
    ask = max(profile.min_ask, cost_s * profile.price_per_s * (1.0 + profile.margin))
    return Quote(seconds=seconds, ask=ask, wait_s=wait_s)


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
