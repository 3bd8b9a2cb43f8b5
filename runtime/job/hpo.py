"""Hyperparameter search on the market: Optuna picks configurations, every training run is a job.

The requester's job.toml has an ``[hpo]`` table. The driver asks Optuna (TPE by default) for
``trials`` configurations and queues each rung of training as a submission in the requester
daemon's store, at most ``parallel`` in flight, so trials train in parallel on whichever
workers win them:

* **Honest selection.** Every trial job's held-out set is the search's *validation* split
  (``splits.make_split``): validators score trials on it, hidden from workers like a test set.
  The test set is used once, at the end, to measure the chosen model.
* **Multi-fidelity** (``[hpo].min_epochs``): successive halving over epochs
  (``halving.rungs``). A promoted trial's next job starts from the model its previous job
  trained (the trained ONNX is the new job's model) and trains only the extra epochs: nothing on
  chain is cancelled and no training is thrown away.
* **Resumable.** The study lives in a real database (SQLite beside the node's store by
  default, or any SQLAlchemy URL in ``[hpo].storage``) and records every rung's submission id,
  so a driver restarted mid-search re-attaches to jobs in flight and never re-posts a rung.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from morphware.runtime.job import halving
from morphware.runtime.job.spec import HpoParam, JobSpec, TrainingRecipe, load_job
from morphware.runtime.job.splits import Split, make_split
from morphware.runtime.node.store import Store

METRIC_SCALE = 10**6
RECIPE_FIELDS = frozenset(f.name for f in fields(TrainingRecipe))


class HpoError(RuntimeError):
    """A job.toml without [hpo], or a search that could not finish."""


def suggest(trial: Any, space: tuple[HpoParam, ...]) -> dict[str, Any]:
    """The hyperparameters of one trial, drawn from the job's search space."""
    out: dict[str, Any] = {}
    for p in space:
        if p.choices is not None:
            out[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.integer:
            step = int(p.step) if p.step else 1
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=step,
                                            log=p.log)
        else:
            out[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high), log=p.log,
                                              step=p.step)
    return out


@dataclass(frozen=True)
class JobOutcome:
    """One finished (or still running) rung job of a trial, from the requester's store."""

    done: bool
    job_id: int | None
    value: float | None  # the validated metric on the validation split
    outcome: str
    tokens: float = 0.0  # clearing price + validator fees paid for it


@dataclass(frozen=True)
class TrialResult:
    number: int
    params: dict[str, Any]
    job_id: int | None  # the trial's last job
    value: float | None  # its validation metric at the last rung it reached
    outcome: str
    rung: int = 0
    epochs: int = 0
    jobs: tuple[int, ...] = ()
    tokens: float = 0.0


@dataclass
class SearchResult:
    trials: list[TrialResult]
    best: TrialResult | None
    test_metric: float | None
    best_model: Path | None
    tokens: float
    seconds: float
    plan: list[halving.Rung] = field(default_factory=list)


def _job_outcome(store: Store, local_id: int) -> JobOutcome:
    sub = store.submission(local_id)
    if sub is None:
        raise HpoError(f"submission {local_id} vanished from the store")
    if sub.state == "failed":
        return JobOutcome(True, None, None, f"failed: {sub.facts.get('error', '')}")
    if sub.job_id is None:
        return JobOutcome(False, None, None, sub.state)
    row = store.job(sub.job_id, "requester")
    if row is None or row.phase != "done":
        return JobOutcome(False, sub.job_id, None, row.phase if row else "posted")
    outcome = str(row.facts.get("outcome", ""))
    median = row.facts.get("median")
    metrics = row.facts.get("metrics") or []
    if median is None and metrics:
        ms = sorted(metrics)
        median = (ms[(len(ms) - 1) // 2] + ms[len(ms) // 2]) // 2
    value = None if median is None or outcome not in ("accepted", "rejected") else (
        int(median) / METRIC_SCALE)
    if outcome == "accepted" and not row.facts.get("model_path"):
        outcome, value = "accepted, model not downloaded", None
    decimals = int(store.get_meta("token_decimals") or 18)
    terms = sub.facts.get("terms") or {}
    fees = float(terms.get("validator_fee", 0)) * int(terms.get("validators", 0))
    price = int(row.facts.get("price", 0) or 0) / 10**decimals
    tokens = (price + fees) if outcome == "accepted" else (fees if value is not None else 0.0)
    return JobOutcome(True, sub.job_id, value, outcome, tokens)


def _sampler(name: str, seed: int) -> Any:
    import optuna

    return (optuna.samplers.RandomSampler(seed=seed) if name == "random"
            else optuna.samplers.TPESampler(seed=seed))


def default_storage(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'hpo.db'}"


class Search:
    """One search's state machine over the study and the requester's store; ``step`` is
    idempotent, so a restarted driver simply steps again."""

    def __init__(self, spec_path: Path, spec: JobSpec, store: Store, storage: str,
                 split: Split, echo: Callable[[str], None] | None = None) -> None:
        import optuna

        assert spec.hpo is not None
        self.spec_path, self.spec, self.hpo, self.store = spec_path, spec, spec.hpo, store
        self.split, self.echo = split, echo
        self.plan = halving.rungs(self.hpo.trials, self.hpo.min_epochs, spec.training.epochs,
                                  self.hpo.eta)
        self.maximize = self.hpo.direction == "maximize"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            study_name=spec.name, storage=storage, direction=self.hpo.direction,
            sampler=_sampler(self.hpo.sampler, spec.training.seed), load_if_exists=True)

    def _say(self, msg: str) -> None:
        if self.echo:
            self.echo(msg)

    def _trial_threshold(self) -> float:
        if self.hpo.trial_threshold is not None:
            return self.hpo.trial_threshold
        return 0.0 if self.spec.metric.higher_is_better else 1e6

    # -- reading the study ------------------------------------------------------------------

    def _trials(self) -> dict[int, Any]:
        return {t.number: t for t in self.study.get_trials(deepcopy=False)}

    def _value(self, t: Any, r: int) -> float | None:
        return t.intermediate_values.get(self.plan[r].epochs)

    def _finished_at(self, t: Any, r: int) -> bool:
        return self._value(t, r) is not None or f"failed_r{r}" in t.user_attrs

    def members(self, r: int, trials: dict[int, Any]) -> list[int] | None:
        """Trials that train at rung ``r``; None while rung ``r - 1`` is still running."""
        if r == 0:
            return sorted(trials)[: self.hpo.trials]
        prev = self.members(r - 1, trials)
        if prev is None or not all(self._finished_at(trials[n], r - 1) for n in prev):
            return None
        values = {n: self._value(trials[n], r - 1) for n in prev}
        scored = {n: v for n, v in values.items() if v is not None}
        return halving.promote(scored, self.plan[r].trials, self.maximize)

    # -- acting -----------------------------------------------------------------------------

    def _submit(self, t: Any, r: int, trials: dict[int, Any]) -> None:
        import optuna

        params = dict(t.params)
        epochs = self.plan[r].epochs - (self.plan[r - 1].epochs if r else 0)
        inputs: dict[str, Any] = {"train": str(self.split.train),
                                  "test": str(self.split.validation),
                                  "threshold": self._trial_threshold()}
        if r:  # continue from the parent's trained weights; its architecture is fixed now
            parent = self.store.submission(int(t.user_attrs[f"sub_r{r - 1}"]))
            row = self.store.job(parent.job_id, "requester") if parent and parent.job_id else None
            if row is None or not row.facts.get("model_path"):
                raise HpoError(f"trial {t.number}: rung {r - 1} model is not on disk")
            inputs["model"] = str(row.facts["model_path"])
            params = {k: v for k, v in params.items() if k in RECIPE_FIELDS}
        local = self.store.add_submission(self.spec_path)
        name = f"{self.spec.name}-t{t.number}-r{r}"
        self.store.update_submission(local, hparams={**params, "epochs": epochs},
                                     inputs=inputs, name=name)
        optuna.trial.Trial(self.study, t._trial_id).set_user_attr(f"sub_r{r}", local)
        self._say(f"trial {t.number} rung {r}: submitted ({epochs} epoch(s)"
                  f"{', from rung ' + str(r - 1) + ' weights' if r else ''}) {params}")

    def _collect(self, t: Any, r: int) -> None:
        import optuna

        job = _job_outcome(self.store, int(t.user_attrs[f"sub_r{r}"]))
        if not job.done:
            return
        trial = optuna.trial.Trial(self.study, t._trial_id)
        if job.job_id is not None:
            trial.set_user_attr(f"job_r{r}", job.job_id)
        trial.set_user_attr(f"tokens_r{r}", job.tokens)
        trial.set_user_attr(f"outcome_r{r}", job.outcome)
        if job.value is None:
            trial.set_user_attr(f"failed_r{r}", job.outcome)
            self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            self._say(f"trial {t.number} rung {r}: job {job.job_id} {job.outcome}")
            return
        trial.report(job.value, self.plan[r].epochs)
        self._say(f"trial {t.number} rung {r}: job {job.job_id} {job.outcome}, validation "
                  f"{self.spec.metric.name} {job.value:.4f}")
        if r == len(self.plan) - 1:
            self.study.tell(t.number, job.value)

    def _prune(self, trials: dict[int, Any]) -> None:
        import optuna

        for r in range(len(self.plan) - 1):
            now, nxt = self.members(r, trials), self.members(r + 1, trials)
            if now is None or nxt is None:
                return
            for n in set(now) - set(nxt):
                t = trials[n]
                if t.state == optuna.trial.TrialState.RUNNING and self._value(t, r) is not None:
                    self.study.tell(n, state=optuna.trial.TrialState.PRUNED)
                    self._say(f"trial {n}: stopped after rung {r}")

    def step(self) -> bool:
        """Advance the search; True once every trial has finished."""
        import optuna

        trials = self._trials()
        while len(trials) < self.hpo.trials:
            t = self.study.ask()
            suggest(t, self.hpo.space)
            trials = self._trials()
        running = optuna.trial.TrialState.RUNNING
        in_flight = sum(1 for t in trials.values() if t.state == running
                        for r in range(len(self.plan))
                        if f"sub_r{r}" in t.user_attrs and not self._finished_at(t, r))
        for r in range(len(self.plan)):
            members = self.members(r, trials)
            if members is None:
                break
            for n in members:
                t = trials[n]
                if t.state != running or self._finished_at(t, r):
                    continue
                if f"sub_r{r}" not in t.user_attrs:
                    if in_flight < self.hpo.parallel:
                        self._submit(t, r, trials)
                        in_flight += 1
                    continue
                self._collect(t, r)
            trials = self._trials()
        self._prune(self._trials())
        return all(t.state != running for t in self._trials().values())

    # -- the outcome ------------------------------------------------------------------------

    def results(self) -> list[TrialResult]:
        out = []
        for n, t in sorted(self._trials().items()):
            reached = [r for r in range(len(self.plan)) if f"sub_r{r}" in t.user_attrs]
            last = reached[-1] if reached else 0
            jobs = tuple(int(t.user_attrs[f"job_r{r}"]) for r in reached
                         if f"job_r{r}" in t.user_attrs)
            out.append(TrialResult(
                number=n, params=dict(t.params), job_id=jobs[-1] if jobs else None,
                value=self._value(t, last), outcome=str(t.user_attrs.get(f"outcome_r{last}",
                                                                         t.state.name.lower())),
                rung=last, epochs=self.plan[last].epochs, jobs=jobs,
                tokens=sum(float(t.user_attrs.get(f"tokens_r{r}", 0.0)) for r in reached)))
        return out

    def best(self, results: list[TrialResult]) -> TrialResult | None:
        """The best trial among those that trained the full budget (validation metric)."""
        full = [r for r in results if r.rung == len(self.plan) - 1 and r.value is not None]
        if not full:
            return None
        return max(full, key=lambda r: r.value if self.maximize else -r.value)

    def model_of(self, trial: TrialResult) -> Path | None:
        if trial.job_id is None:
            return None
        row = self.store.job(trial.job_id, "requester")
        path = row.facts.get("model_path") if row else None
        return Path(path) if path and Path(path).is_file() else None


def run_hpo(spec_path: str | Path, data_dir: str | Path, *, storage: str | None = None,
            timeout: float = 3600.0, poll: float = 0.5,
            echo: Callable[[str], None] | None = None) -> SearchResult:
    """Drive the search through the requester daemon on ``data_dir`` until every trial is done;
    then measure the best model once on the test set and copy it beside the study."""
    from morphware.runtime.model.evaluation import evaluate

    t0 = time.monotonic()
    spec_path = Path(spec_path).resolve()
    spec = load_job(spec_path)
    if spec.hpo is None:
        raise HpoError(f"{spec_path} has no [hpo] table")
    data_dir = Path(data_dir)
    work = data_dir / "hpo" / spec.name
    split = make_split(spec, work / "split")
    store = Store(data_dir / "node.db")
    try:
        search = Search(spec_path, spec, store, storage or spec.hpo.storage
                        or default_storage(data_dir), split, echo)
        end = time.monotonic() + timeout
        while not search.step():
            if time.monotonic() >= end:
                raise HpoError(f"search not finished in {timeout:.0f}s; it resumes where it "
                               f"stopped when run again")
            time.sleep(poll)
        results = search.results()
        best = search.best(results)
        model = search.model_of(best) if best else None
        test_metric, kept = None, None
        if model is not None:
            kept = work / "best.onnx"
            shutil.copyfile(model, kept)
            test_metric = float(evaluate(kept, spec.data.test, spec.metric.name, backend="cpu"))
        return SearchResult(results, best, test_metric, kept, sum(r.tokens for r in results),
                            time.monotonic() - t0, search.plan)
    finally:
        store.close()
