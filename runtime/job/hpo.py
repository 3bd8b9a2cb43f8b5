"""Hyperparameter search on the market: an Optuna study whose every trial is one market job.

The requester's job.toml has an ``[hpo]`` table (trials, parallel, direction, space). The driver
asks Optuna for up to ``parallel`` trials at a time, queues each as a submission in the requester
daemon's store (with the trial's hyperparameters: recipe fields override the training recipe,
the others go to ``build_model``), and reports each finished job's validated metric (the median
the contract settled on) back to the study. Trials therefore train in parallel on whichever
workers win them.

The study lives in a real database (SQLite beside the node's store by default), and each trial
records its submission id, so a driver restarted mid-search re-attaches to the jobs in flight
instead of posting them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphware.runtime.job.spec import HpoParam, JobSpec, load_job
from morphware.runtime.node.store import Store

METRIC_SCALE = 10**6


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
class TrialResult:
    number: int
    params: dict[str, Any]
    job_id: int | None
    value: float | None
    outcome: str


def _finished(store: Store, local_id: int) -> tuple[bool, int | None, float | None, str]:
    """(done, job id, validated metric or None, outcome) of a queued trial."""
    sub = store.submission(local_id)
    if sub is None:
        raise HpoError(f"submission {local_id} vanished from the store")
    if sub.state == "failed":
        return True, None, None, f"failed: {sub.facts.get('error', '')}"
    if sub.job_id is None:
        return False, None, None, sub.state
    row = store.job(sub.job_id, "requester")
    if row is None or row.phase != "done":
        return False, sub.job_id, None, row.phase if row else "posted"
    outcome = str(row.facts.get("outcome", ""))
    median = row.facts.get("median")
    metrics = row.facts.get("metrics") or []
    if median is None and metrics:
        ms = sorted(metrics)
        median = (ms[(len(ms) - 1) // 2] + ms[len(ms) // 2]) // 2
    value = None if median is None or outcome not in ("accepted", "rejected") else (
        int(median) / METRIC_SCALE)
    return True, sub.job_id, value, outcome


def run_hpo(spec_path: str | Path, data_dir: str | Path, *, storage: str | None = None,
            timeout: float = 3600.0, poll: float = 0.5,
            echo: Callable[[str], None] | None = None) -> list[TrialResult]:
    """Drive the search through the requester daemon on ``data_dir`` until every trial is done."""
    import optuna

    spec: JobSpec = load_job(spec_path)
    if spec.hpo is None:
        raise HpoError(f"{spec_path} has no [hpo] table")
    hpo = spec.hpo
    store = Store(Path(data_dir) / "node.db")
    storage = storage or f"sqlite:///{Path(data_dir).resolve() / 'hpo.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=spec.name, storage=storage,
                                direction=hpo.direction, load_if_exists=True)
    pending: dict[int, int] = {  # trial number -> submission id, re-attached after a restart
        t.number: int(t.user_attrs["submission"]) for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.RUNNING and "submission" in t.user_attrs}
    results: list[TrialResult] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        started = len(study.get_trials(deepcopy=False))
        while len(pending) < hpo.parallel and started < hpo.trials:
            trial = study.ask()
            params = suggest(trial, hpo.space)
            local = store.add_submission(Path(spec_path).resolve())
            store.update_submission(local, hparams=params, name=f"{spec.name}-t{trial.number}")
            trial.set_user_attr("submission", local)
            pending[trial.number] = local
            started += 1
            if echo:
                echo(f"trial {trial.number}: submitted {params}")
        for number, local in list(pending.items()):
            done, job_id, value, outcome = _finished(store, local)
            if not done:
                continue
            state = (optuna.trial.TrialState.COMPLETE if value is not None
                     else optuna.trial.TrialState.FAIL)
            study.tell(number, value, state=state)
            params = study.trials[number].params
            results.append(TrialResult(number, params, job_id, value, outcome))
            del pending[number]
            if echo:
                echo(f"trial {number}: job {job_id} {outcome} metric={value}")
        if not pending and len(study.get_trials(deepcopy=False)) >= hpo.trials:
            return sorted(results, key=lambda r: r.number)
        time.sleep(poll)
    raise HpoError(f"search not finished in {timeout:.0f}s; {len(pending)} trial(s) in flight")

