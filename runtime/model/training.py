"""The training engine: an ONNX model, an .npz training set and a recipe in; a trained ONNX out.

Everything a worker receives is data (ONNX, .npz, the recipe as TOML), so nothing submitted is
executed: the ONNX graph is converted to a torch module by ``morphware.runtime.model.onnx_torch``. The
loop emits per-step losses and per-epoch metrics to a callback (the worker publishes them as its
live loss curve), is deterministic on CPU given the recipe's seed, checkpoints after every epoch
(model, optimizer, RNG, curve) and resumes from a checkpoint, and stops with ``TrainingError`` on
a non-finite loss instead of shipping a broken model.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from morphware.runtime.model.safe_io import (
    DatasetError,
    input_shape,
    load_onnx,
    load_xy,
    prepare_inputs,
)

if TYPE_CHECKING:
    import onnx
    import torch
    from morphware.runtime.backends.base import Backend
    from morphware.runtime.job.spec import TrainingRecipe
    from morphware.runtime.model.onnx_torch import OnnxModule

CHECKPOINT_VERSION = 1
# metadata_props key of the trained model's per-epoch loss curve (JSON list of floats)
LOSS_CURVE_KEY = "morphware.loss_curve"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable checkpoint, data that does not fit)."""


@dataclass(frozen=True)
class TrainEvent:
    """One progress report: ``kind`` is "step" (loss of one batch), "epoch" (metrics),
    "resumed" (from a checkpoint: ``epoch`` epochs and ``step`` steps already done) or
    "discarded" (an unusable checkpoint was deleted, training starts over: ``note`` says why)."""

    kind: str
    epoch: int
    step: int
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    total_steps: int = 0
    note: str = ""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced. ``loss_curve`` holds the mean loss of each epoch;
    ``step_losses`` every batch's loss (across resumed runs)."""

    metrics: dict[str, float]
    loss_curve: list[float]
    step_losses: list[float]
    backend: str
    epochs: int
    onnx_path: Path
    seconds: float
    array: dict[str, int] = field(default_factory=dict)  # array backends: commands, cycles, MACs


EventCallback = Callable[[TrainEvent], None]


def _loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torch.nn.functional as F

    losses = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss,
              "bce": F.binary_cross_entropy_with_logits}
    if name not in losses:
        raise TrainingError(f"unknown loss {name!r}; known: {', '.join(losses)}")
    return losses[name]


def make_optimizer(recipe: TrainingRecipe, params: Any) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``params``."""
    import torch

    lr, wd = recipe.learning_rate, recipe.weight_decay
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, weight_decay=wd)
    raise TrainingError(f"unknown optimizer {recipe.optimizer!r}; known: adam, adamw, sgd")


def prepare_targets(y: np.ndarray, loss: str, source: str) -> np.ndarray:
    """Class indices (int64) for cross-entropy, float32 targets for mse/bce."""
    if loss == "cross_entropy":
        if y.ndim == 2 and y.dtype.kind == "f":  # one-hot or soft labels -> indices
            return y.argmax(axis=1).astype(np.int64)
        if y.ndim != 1 or y.dtype.kind not in "biu":
            raise DatasetError(f"{source}: cross_entropy needs integer class labels y of shape "
                               f"(N,), got {y.dtype} {y.shape}")
        if y.min() < 0:
            raise DatasetError(f"{source}: class labels must be >= 0, found {int(y.min())}")
        return y.astype(np.int64)
    return y.astype(np.float32)


def _training_backend(backend: str) -> Backend:
    """The backend a training run uses: a torch device, or an array backend (golden, rtl, fpga)
    that runs every GEMM of the step on the systolic array."""
    from morphware.runtime.backends.registry import get_backend, select_backend

    b = select_backend("train") if backend == "auto" else get_backend(backend)
    ok, why = b.available()
    if not ok:
        raise TrainingError(f"backend {b.name!r} is not usable here: {why}")
    if not b.capabilities().train:
        raise TrainingError(f"backend {b.name!r} cannot train; use cpu, cuda, golden, rtl or fpga")
    return b


def _arithmetic(module: OnnxModule) -> str:
    """How the module computes its GEMMs: "float", or "array int8"/"array int16"."""
    ctx = getattr(module, "array", None)
    return "float" if ctx is None else f"array int{ctx.bits}"


def _save_checkpoint(path: Path, module: OnnxModule, opt: torch.optim.Optimizer, epoch: int,
                     gen: torch.Generator, curve: list[float], steps: list[float],
                     recipe: TrainingRecipe) -> None:
    import torch

    state = {"version": CHECKPOINT_VERSION, "epoch": epoch, "model": module.state_dict(),
             "arithmetic": _arithmetic(module),
             "optimizer": opt.state_dict(), "rng": gen.get_state(), "torch_rng":
             torch.get_rng_state(), "loss_curve": curve, "step_losses": steps,
             "recipe": recipe.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before it replaces the last good one
    os.replace(tmp, path)  # atomic: a crash never leaves half a checkpoint


def _load_checkpoint(path: Path, recipe: TrainingRecipe, arithmetic: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged file
        raise TrainingError(f"{path}: unreadable checkpoint ({e})") from e
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path}: not a version-{CHECKPOINT_VERSION} training checkpoint")
    if not {"epoch", "model", "optimizer", "rng", "torch_rng", "loss_curve", "step_losses",
            "recipe"} <= set(state):
        raise TrainingError(f"{path}: checkpoint lacks part of the training state")
    if state["recipe"] != recipe.to_dict():
        raise TrainingError(f"{path}: checkpoint was written for a different recipe "
                            f"{state['recipe']}; refusing to resume (delete it to start over)")
    if state.get("arithmetic", "float") != arithmetic:
        raise TrainingError(f"{path}: checkpoint was trained with {state.get('arithmetic', 'float')}"
                            f" GEMMs, this run uses {arithmetic}; refusing to resume (delete it "
                            "to start over)")
    return state


def _restore(state: dict[str, Any], module: OnnxModule, opt: torch.optim.Optimizer,
             gen: torch.Generator) -> tuple[int, list[float], list[float]]:
    """Load a checkpoint's state into the module, optimizer and RNGs; (epoch, curve, steps)."""
    import torch

    try:
        module.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise TrainingError(f"checkpoint does not fit this model: {str(e)[:200]}") from e
    return int(state["epoch"]), list(state["loss_curve"]), list(state["step_losses"])


def _batch_metrics(logits: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[int, int]:
    if loss != "cross_entropy":
        return 0, 0
    return int((logits.argmax(dim=1) == y).sum()), len(y)


@dataclass
class _Loop:
    module: OnnxModule
    opt: torch.optim.Optimizer
    loss_fn: Callable[..., torch.Tensor]
    recipe: TrainingRecipe
    device: str
    on_event: EventCallback | None

    def epoch(self, e: int, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
              steps: list[float]) -> dict[str, float]:
        import torch

        self.module.train()
        n, bs = len(x), self.recipe.batch_size
        order = torch.randperm(n, generator=gen)
        total, correct, seen = 0.0, 0, 0
        n_batches = math.ceil(n / bs)
        for b in range(n_batches):
            idx = order[b * bs:(b + 1) * bs]
            xb, yb = x[idx].to(self.device), y[idx].to(self.device)
            self.opt.zero_grad(set_to_none=True)
            out = self.module(xb)
            loss = self.loss_fn(out, yb)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingError(f"loss became {value} at epoch {e + 1}, batch {b + 1}; "
                                    f"lower the learning rate ({self.recipe.learning_rate}) or "
                                    "check the data for extreme values")
            loss.backward()
            self.opt.step()
            steps.append(value)
            total += value * len(idx)
            c, s = _batch_metrics(out.detach(), yb, self.recipe.loss)
            correct, seen = correct + c, seen + s
            if self.on_event:
                self.on_event(TrainEvent("step", e + 1, b + 1, value, total_steps=n_batches))
        metrics = {"loss": total / n}
        if seen:
            metrics["accuracy"] = correct / seen
        return metrics


def train_onnx(onnx_path: str | Path | onnx.ModelProto, train_npz: str | Path, recipe: TrainingRecipe,
               out_onnx: str | Path, on_event: EventCallback | None = None,
               backend: str = "auto", checkpoint: str | Path | None = None,
               bits: int | None = None, discard_bad_checkpoint: bool = False) -> TrainResult:
    """Train the ONNX model on ``train_npz`` (arrays x, y) following ``recipe``; write the trained
    model to ``out_onnx``, its per-epoch loss curve in the metadata (``LOSS_CURVE_KEY``), so the
    curve travels with the model. ``onnx_path`` may be a model already loaded through
    ``safe_io.load_onnx``. With ``checkpoint``, state is saved there after every epoch and, if
    the file exists, training resumes from it (same recipe required; a "resumed" event says
    from where). An unusable checkpoint (damaged, another recipe) raises ``TrainingError``, or
    with ``discard_bad_checkpoint`` is deleted and training starts over (a "discarded" event).
    On an array backend (golden, rtl, fpga) every GEMM of the step runs on the array with
    ``bits``-bit operands (``morphware.runtime.model.array_training``)."""
    import onnx
    import torch
    from morphware.runtime.model.onnx_torch import export_onnx

    t0 = time.perf_counter()
    b = _training_backend(backend)
    name, device = b.name, b.torch_device()
    model = onnx_path if isinstance(onnx_path, onnx.ModelProto) else load_onnx(onnx_path)
    xs, ys = load_xy(train_npz)
    xs = prepare_inputs(xs, input_shape(model), str(train_npz))
    ys = prepare_targets(ys, recipe.loss, str(train_npz))
    torch.manual_seed(recipe.seed)
    module = b.training_module(model, bits)
    opt = make_optimizer(recipe, module.parameters())
    gen = torch.Generator().manual_seed(recipe.seed)
    start, curve, steps = 0, [], []
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        try:
            start, curve, steps = _restore(_load_checkpoint(ckpt, recipe, _arithmetic(module)),
                                           module, opt, gen)
        except TrainingError as e:
            if not discard_bad_checkpoint:
                raise
            ckpt.unlink(missing_ok=True)
            torch.manual_seed(recipe.seed)  # from scratch: exactly as a first run
            module = b.training_module(model, bits)
            opt = make_optimizer(recipe, module.parameters())
            gen = torch.Generator().manual_seed(recipe.seed)
            if on_event:
                on_event(TrainEvent("discarded", 0, 0, float("nan"), note=str(e)))
        else:
            if on_event:
                on_event(TrainEvent("resumed", start, len(steps),
                                    curve[-1] if curve else float("nan")))
    x, y = torch.from_numpy(xs), torch.from_numpy(ys)
    loop = _Loop(module, opt, _loss_fn(recipe.loss), recipe, device, on_event)
    _check_output(module, x[:2].to(device), y[:2].to(device), float(ys.max()), loop.loss_fn,
                  str(train_npz))
    metrics: dict[str, float] = {}
    for e in range(start, recipe.epochs):
        metrics = loop.epoch(e, x, y, gen, steps)
        curve.append(metrics["loss"])
        if on_event:
            on_event(TrainEvent("epoch", e + 1, 0, metrics["loss"], dict(metrics)))
        if ckpt is not None:
            _save_checkpoint(ckpt, module, opt, e + 1, gen, curve, steps, recipe)
    if not metrics:  # resumed from a finished checkpoint: report its final state
        metrics = {"loss": curve[-1]} if curve else {}
    module = module.to("cpu")
    out = export_onnx(module, x[:1], out_onnx, metadata={LOSS_CURVE_KEY: json.dumps(curve)})
    return TrainResult(metrics, curve, steps, name, recipe.epochs, out,
                       time.perf_counter() - t0, _array_stats(module))


def _array_stats(module: OnnxModule) -> dict[str, int]:
    """Commands, cycles and MACs the array ran (this process's part of the run), if any."""
    ctx = getattr(module, "array", None)
    if ctx is None:
        return {}
    st = ctx.gemm.stats
    return {"bits": ctx.bits, "products": st.products, "commands": st.commands,
            "cycles": st.cycles, "macs": st.macs}


def _check_output(module: OnnxModule, x: torch.Tensor, y: torch.Tensor, y_max: float,
                  loss_fn: Callable[..., torch.Tensor], source: str) -> None:
    """Fail before the first epoch, with a clear message, if outputs and targets cannot meet."""
    import torch

    module.eval()
    with torch.no_grad():
        out = module(x)
    if isinstance(out, tuple):
        raise TrainingError(f"model has {len(out)} outputs; training needs exactly one")
    if y.dtype == torch.int64 and out.dim() == 2 and int(y_max) >= out.shape[1]:
        raise DatasetError(f"{source}: class label {int(y_max)} does not exist: the model has "
                           f"{out.shape[1]} outputs")
    try:
        loss_fn(out, y)
    except (RuntimeError, ValueError, IndexError) as e:
        raise DatasetError(f"{source}: targets y{tuple(y.shape[1:])} do not fit the model's "
                           f"output {tuple(out.shape[1:])}: {str(e).splitlines()[0]}") from e
