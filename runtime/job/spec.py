"""The job specification: ``job.toml`` parsed into frozen, validated dataclasses.

A requester writes one ``job.toml`` per job (schema: docs/job-spec.md). Every field is checked
here, once, with an error that names the file, the table and the field, so nothing downstream
(packaging, the auction, the training engine) has to re-validate. The training recipe is the
part workers receive; it travels as TOML text (``TrainingRecipe.to_dict`` / ``from_dict``), never
as code.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

LOSSES = ("cross_entropy", "mse", "bce")
OPTIMIZERS = ("adam", "adamw", "sgd")
METRICS = ("accuracy", "top5", "mse", "mae")
HIGHER_IS_BETTER = {"accuracy": True, "top5": True, "mse": False, "mae": False}
MODEL_SUFFIXES = (".py", ".ipynb", ".onnx")
DIRECTIONS = ("maximize", "minimize")


class JobSpecError(ValueError):
    """A job.toml (or a recipe dict) that is malformed; the message names the field."""


# ---------------------------------------------------------------------------------------------
# field readers: each returns a typed value or raises JobSpecError naming ``where``


def _type_name(v: Any) -> str:
    return repr(v) if isinstance(v, str) else f"{v!r} ({type(v).__name__})"


def _table(doc: Mapping[str, Any], key: str, src: str, required: bool = True) -> dict[str, Any]:
    if key not in doc:
        if required:
            raise JobSpecError(f"{src}: missing table [{key}]")
        return {}
    val = doc[key]
    if not isinstance(val, dict):
        raise JobSpecError(f"{src}: [{key}] must be a table, got {_type_name(val)}")
    return val


def _get(t: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    if key in t:
        return t[key]
    if default is ...:
        raise JobSpecError(f"{where}.{key} is required")
    return default


def _str(t: Mapping[str, Any], key: str, where: str, default: Any = ...) -> str:
    v = _get(t, key, where, default)
    if not isinstance(v, str) or not v.strip():
        raise JobSpecError(f"{where}.{key} must be a non-empty string, got {_type_name(v)}")
    return v


def _choice(t: Mapping[str, Any], key: str, where: str, options: tuple[str, ...],
            default: Any = ...) -> str:
    v = _str(t, key, where, default)
    if v not in options:
        raise JobSpecError(f"{where}.{key} must be one of {', '.join(options)}, got {v!r}")
    return v


def _posint(t: Mapping[str, Any], key: str, where: str, default: Any = ...,
            allow_zero: bool = False) -> int:
    v = _get(t, key, where, default)
    ok = isinstance(v, int) and not isinstance(v, bool) and (v > 0 or (allow_zero and v == 0))
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise JobSpecError(f"{where}.{key} must be a {kind} integer, got {_type_name(v)}")
    return v


def _num(t: Mapping[str, Any], key: str, where: str, default: Any = ..., *,
         positive: bool = False, nonneg: bool = False) -> float:
    v = _get(t, key, where, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise JobSpecError(f"{where}.{key} must be a finite number, got {_type_name(v)}")
    if positive and v <= 0:
        raise JobSpecError(f"{where}.{key} must be > 0, got {v!r}")
    if nonneg and v < 0:
        raise JobSpecError(f"{where}.{key} must be >= 0, got {v!r}")
    return float(v)


def _unknown(t: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(t) - allowed)
    if extra:
        raise JobSpecError(f"{where} has unknown field(s) {', '.join(extra)}; "
                           f"allowed: {', '.join(sorted(allowed))}")


def _path(t: Mapping[str, Any], key: str, where: str, root: Path,
          suffixes: tuple[str, ...]) -> Path:
    raw = _str(t, key, where)
    p = Path(raw)
    p = p if p.is_absolute() else (root / p)
    p = p.resolve()
    if p.suffix.lower() not in suffixes:
        raise JobSpecError(f"{where}.{key} must end in {' or '.join(suffixes)}, got {raw!r}")
    if not p.is_file():
        raise JobSpecError(f"{where}.{key}: file not found: {p}")
    return p


# ---------------------------------------------------------------------------------------------
# the spec


@dataclass(frozen=True)
class ModelSpec:
    """Where the model comes from: a .py/.ipynb defining ``build_model(**hparams)``, or .onnx."""

    source: Path
    input_shape: tuple[int, ...] | None = None
    hparams: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """"py", "ipynb" or "onnx"."""
        return self.source.suffix.lower().lstrip(".")


@dataclass(frozen=True)
class DataSpec:
    """Paths to the .npz arrays (each with "x" and "y"); the test set goes only to validators.

    A search ranks its trials on a validation split, never on the test set that decides
    acceptance: ``validation`` (its own .npz) or ``validation_fraction`` (held out of ``train``).
    """

    train: Path
    test: Path
    validation: Path | None = None
    validation_fraction: float | None = None


@dataclass(frozen=True)
class TrainingRecipe:
    """How a worker trains: everything is data, so a worker never runs submitted code."""

    loss: str = "cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    weight_decay: float = 0.0
    momentum: float = 0.9

    def __post_init__(self) -> None:
        # Validate also when built directly (a worker builds it from received TOML).
        _recipe_fields(asdict(self), "[training]")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "[training]") -> TrainingRecipe:
        """Build from a parsed TOML table, validating every field; unknown keys are refused."""
        if not isinstance(d, Mapping):
            raise JobSpecError(f"{where} must be a table, got {_type_name(d)}")
        return cls(**_recipe_fields(d, where))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _recipe_fields(t: Mapping[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(TrainingRecipe)}
    _unknown(t, names, where)
    d = TrainingRecipe.__dataclass_fields__
    return {
        "loss": _choice(t, "loss", where, LOSSES, d["loss"].default),
        "optimizer": _choice(t, "optimizer", where, OPTIMIZERS, d["optimizer"].default),
        "learning_rate": _num(t, "learning_rate", where, d["learning_rate"].default,
                              positive=True),
        "epochs": _posint(t, "epochs", where, d["epochs"].default),
        "batch_size": _posint(t, "batch_size", where, d["batch_size"].default),
        "seed": _posint(t, "seed", where, d["seed"].default, allow_zero=True),
        "weight_decay": _num(t, "weight_decay", where, d["weight_decay"].default, nonneg=True),
        "momentum": _num(t, "momentum", where, d["momentum"].default, nonneg=True),
    }


@dataclass(frozen=True)
class MetricSpec:
    """The acceptance test validators apply to the trained model on the held-out set."""

    name: str
    threshold: float

    def __post_init__(self) -> None:
        if self.name not in METRICS:
            raise JobSpecError(f"[metric].name must be one of {', '.join(METRICS)}, "
                               f"got {self.name!r}")
        if self.higher_is_better and not 0.0 <= self.threshold <= 1.0:
            raise JobSpecError(f"[metric].threshold for {self.name} must be in [0, 1], "
                               f"got {self.threshold!r}")
        if not self.higher_is_better and self.threshold < 0:
            raise JobSpecError(f"[metric].threshold for {self.name} must be >= 0, "
                               f"got {self.threshold!r}")

    @property
    def higher_is_better(self) -> bool:
        """accuracy/top5 pass when result >= threshold; mse/mae when result <= threshold."""
        return HIGHER_IS_BETTER[self.name]

    def passes(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


@dataclass(frozen=True)
class MarketTerms:
    """What the requester offers on chain: reserve price, validators, phase deadlines (s)."""

    max_price: float
    validators: int = 3
    validator_fee: float = 0.0
    bid_window_s: int = 60
    reveal_window_s: int = 60
    work_window_s: int = 600
    validation_window_s: int = 300


@dataclass(frozen=True)
class HpoParam:
    """One search dimension: a numeric range (``low``/``high``/``log``/``step``) or ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    choices: tuple[Any, ...] | None = None


SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class HpoSpec:
    """A hyperparameter search: market jobs ``parallel`` at a time, ``trials`` configurations.

    With ``min_epochs`` the search is multi-fidelity (successive halving, budget = epochs): every
    configuration first trains ``min_epochs``, the best 1/``eta`` continue from their trained
    weights, rung after rung, up to ``[training].epochs``. Without it every trial trains the full
    budget. Trial jobs are accepted at ``trial_threshold`` (default: any working model), so an
    honest worker is never slashed for a configuration that turned out poor.
    """

    trials: int
    parallel: int
    direction: str
    space: tuple[HpoParam, ...]
    min_epochs: int | None = None
    eta: int = 3
    sampler: str = "tpe"
    storage: str | None = None
    trial_threshold: float | None = None


@dataclass(frozen=True)
class JobSpec:
    """A whole job.toml, validated; paths are absolute (resolved against ``root``)."""

    name: str
    model: ModelSpec
    data: DataSpec
    training: TrainingRecipe
    metric: MetricSpec
    market: MarketTerms
    hpo: HpoSpec | None
    root: Path

    def with_inputs(self, *, train: Path | None = None, test: Path | None = None,
                    model: Path | None = None, threshold: float | None = None) -> JobSpec:
        """One job of a search: other data files (a trial's held-out set is the validation
        split), a trained ONNX to continue from, or another acceptance threshold."""
        out = self
        if train is not None or test is not None:
            out = replace(out, data=replace(out.data, train=Path(train or out.data.train),
                                            test=Path(test or out.data.test)))
        if model is not None:
            out = replace(out, model=ModelSpec(source=Path(model),
                                               input_shape=out.model.input_shape))
        if threshold is not None:
            out = replace(out, metric=MetricSpec(out.metric.name, float(threshold)))
        return out

    def with_hparams(self, hparams: Mapping[str, Any]) -> JobSpec:
        """The spec of one HPO trial: keys naming a training field override the recipe (and are
        re-validated), the others are passed to ``build_model`` on top of ``[model].hparams``."""
        recipe_names = {f.name for f in fields(TrainingRecipe)}
        recipe = {k: v for k, v in hparams.items() if k in recipe_names}
        model = {k: v for k, v in hparams.items() if k not in recipe_names}
        training = TrainingRecipe.from_dict({**self.training.to_dict(), **recipe})
        if model and self.model.kind == "onnx":
            raise JobSpecError(f"hyperparameters {sorted(model)} need a .py/.ipynb model; "
                               f"an .onnx model takes no build_model arguments")
        new_model = replace(self.model, hparams={**self.model.hparams, **model})
        return replace(self, training=training, model=new_model)


# ---------------------------------------------------------------------------------------------
# parsing


def _model(t: dict[str, Any], src: str, root: Path) -> ModelSpec:
    where = f"{src}: [model]"
    _unknown(t, {"source", "input_shape", "hparams"}, where)
    source = _path(t, "source", where, root, MODEL_SUFFIXES)
    shape_raw = t.get("input_shape")
    shape: tuple[int, ...] | None = None
    if shape_raw is not None:
        if (not isinstance(shape_raw, list) or not shape_raw
                or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                           for d in shape_raw)):
            raise JobSpecError(f"{where}.input_shape must be a non-empty list of positive "
                               f"integers, got {_type_name(shape_raw)}")
        shape = tuple(shape_raw)
    elif source.suffix.lower() != ".onnx":
        raise JobSpecError(f"{where}.input_shape is required for a {source.suffix} model "
                           f"(the per-sample input shape used to export ONNX)")
    hp = t.get("hparams", {})
    if not isinstance(hp, dict):
        raise JobSpecError(f"{where}.hparams must be a table, got {_type_name(hp)}")
    return ModelSpec(source=source, input_shape=shape, hparams=dict(hp))


def _data(t: dict[str, Any], src: str, root: Path) -> DataSpec:
    where = f"{src}: [data]"
    _unknown(t, {"train", "test", "validation", "validation_fraction"}, where)
    if "validation" in t and "validation_fraction" in t:
        raise JobSpecError(f"{where}: give validation or validation_fraction, not both")
    fraction = None
    if "validation_fraction" in t:
        fraction = _num(t, "validation_fraction", where, positive=True)
        if not fraction < 0.9:
            raise JobSpecError(f"{where}.validation_fraction must be in (0, 0.9), "
                               f"got {fraction!r}")
    paths = {k: _path(t, k, where, root, (".npz",)) for k in ("train", "test", "validation")
             if k in t or k != "validation"}
    named = {}
    for k, p in paths.items():
        if p in named:
            raise JobSpecError(f"{where}: {k} and {named[p]} name the same file {p}")
        named[p] = k
    return DataSpec(train=paths["train"], test=paths["test"], validation=paths.get("validation"),
                    validation_fraction=fraction)


def _metric(t: dict[str, Any], src: str) -> MetricSpec:
    where = f"{src}: [metric]"
    _unknown(t, {"name", "threshold"}, where)
    name = _choice(t, "name", where, METRICS)
    threshold = _num(t, "threshold", where)
    try:
        return MetricSpec(name=name, threshold=threshold)
    except JobSpecError as e:
        raise JobSpecError(f"{src}: {e}") from None


def _market(t: dict[str, Any], src: str) -> MarketTerms:
    where = f"{src}: [market]"
    d = MarketTerms.__dataclass_fields__
    _unknown(t, set(d), where)
    return MarketTerms(
        max_price=_num(t, "max_price", where, positive=True),
        validators=_posint(t, "validators", where, d["validators"].default),
        validator_fee=_num(t, "validator_fee", where, d["validator_fee"].default, nonneg=True),
        bid_window_s=_posint(t, "bid_window_s", where, d["bid_window_s"].default),
        reveal_window_s=_posint(t, "reveal_window_s", where, d["reveal_window_s"].default),
        work_window_s=_posint(t, "work_window_s", where, d["work_window_s"].default),
        validation_window_s=_posint(t, "validation_window_s", where,
                                    d["validation_window_s"].default),
    )


def _hpo_param(name: str, t: Any, where: str) -> HpoParam:
    w = f"{where}.{name}"
    if not isinstance(t, dict):
        raise JobSpecError(f"{w} must be a table like {{ low = .., high = .. }} or "
                           f"{{ choices = [..] }}, got {_type_name(t)}")
    if "choices" in t:
        _unknown(t, {"choices"}, w)
        ch = t["choices"]
        if not isinstance(ch, list) or not ch:
            raise JobSpecError(f"{w}.choices must be a non-empty list, got {_type_name(ch)}")
        return HpoParam(name=name, choices=tuple(ch))
    _unknown(t, {"low", "high", "log", "step"}, w)
    low, high = _num(t, "low", w), _num(t, "high", w)
    if not low < high:
        raise JobSpecError(f"{w}: low must be < high, got low={low!r} high={high!r}")
    log = t.get("log", False)
    if not isinstance(log, bool):
        raise JobSpecError(f"{w}.log must be true or false, got {_type_name(log)}")
    if log and low <= 0:
        raise JobSpecError(f"{w}: a log range needs low > 0, got {low!r}")
    step = _num(t, "step", w, None, positive=True) if "step" in t else None
    integer = all(isinstance(t[k], int) for k in ("low", "high")) and (
        "step" not in t or isinstance(t["step"], int))
    return HpoParam(name=name, low=low, high=high, log=log, step=step, integer=integer)


def _hpo(t: dict[str, Any], src: str, training: TrainingRecipe, data: DataSpec,
         metric: MetricSpec) -> HpoSpec:
    where = f"{src}: [hpo]"
    _unknown(t, {"trials", "parallel", "direction", "space", "min_epochs", "eta", "sampler",
                 "storage", "trial_threshold"}, where)
    trials = _posint(t, "trials", where)
    parallel = _posint(t, "parallel", where, 1)
    direction = _choice(t, "direction", where, DIRECTIONS, "maximize")
    space_t = _get(t, "space", where)
    if not isinstance(space_t, dict) or not space_t:
        raise JobSpecError(f"{src}: [hpo.space] must be a non-empty table")
    space = tuple(_hpo_param(k, v, f"{src}: [hpo.space]") for k, v in space_t.items())
    if "epochs" in space_t:
        raise JobSpecError(f"{src}: [hpo.space].epochs: the budget is not a hyperparameter; "
                           f"set [training].epochs (and [hpo].min_epochs for multi-fidelity)")
    min_epochs = _posint(t, "min_epochs", where, None) if "min_epochs" in t else None
    if min_epochs is not None and min_epochs > training.epochs:
        raise JobSpecError(f"{where}.min_epochs ({min_epochs}) exceeds [training].epochs "
                           f"({training.epochs})")
    eta = _posint(t, "eta", where, 3)
    if eta < 2:
        raise JobSpecError(f"{where}.eta must be >= 2 (keep the best 1/eta each rung), got {eta}")
    if data.validation is None and data.validation_fraction is None:
        raise JobSpecError(f"{src}: [hpo] ranks trials on a validation split, never on the test "
                           f"set: set [data].validation (an .npz) or [data].validation_fraction")
    storage = _str(t, "storage", where) if "storage" in t else None
    trial_threshold = _num(t, "trial_threshold", where) if "trial_threshold" in t else None
    if trial_threshold is not None:
        try:
            MetricSpec(metric.name, trial_threshold)
        except JobSpecError as e:
            raise JobSpecError(f"{where}.trial_threshold: {e}") from None
    return HpoSpec(trials=trials, parallel=parallel, direction=direction, space=space,
                   min_epochs=min_epochs, eta=eta,
                   sampler=_choice(t, "sampler", where, SAMPLERS, "tpe"), storage=storage,
                   trial_threshold=trial_threshold)


def parse_job(doc: Mapping[str, Any], root: Path, src: str = "job.toml") -> JobSpec:
    """Validate an already-parsed job document; relative paths resolve against ``root``."""
    _unknown(doc, {"job", "model", "data", "training", "metric", "market", "hpo"}, src)
    job = _table(doc, "job", src)
    _unknown(job, {"name"}, f"{src}: [job]")
    name = _str(job, "name", f"{src}: [job]")
    hpo_t = _table(doc, "hpo", src, required=False)
    data = _data(_table(doc, "data", src), src, root)
    training = TrainingRecipe.from_dict(_table(doc, "training", src, required=False),
                                        f"{src}: [training]")
    metric = _metric(_table(doc, "metric", src), src)
    return JobSpec(
        name=name,
        model=_model(_table(doc, "model", src), src, root),
        data=data,
        training=training,
        metric=metric,
        market=_market(_table(doc, "market", src), src),
        hpo=_hpo(hpo_t, src, training, data, metric) if "hpo" in doc else None,
        root=root,
    )


def load_job(path: str | Path) -> JobSpec:
    """Read and validate ``job.toml``. Raises JobSpecError naming the bad field."""
    p = Path(path).resolve()
    if p.is_dir():
        p = p / "job.toml"
    if not p.is_file():
        raise JobSpecError(f"job file not found: {p}")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise JobSpecError(f"{p.name}: not valid TOML: {e}") from None
    return parse_job(doc, p.parent, p.name)
