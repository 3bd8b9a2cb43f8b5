"""``morphware hpo status``: a search as the requester sees it, and the search runner that
``morphware submit`` uses for a job.toml with an ``[hpo]`` table."""

from __future__ import annotations

from pathlib import Path

import typer

hpo_app = typer.Typer(help="Hyperparameter searches run by `morphware submit JOB.toml` with an "
                           "[hpo] table.", no_args_is_help=True,
                       rich_markup_mode=None)

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """Best-so-far as a one-line bar chart (a plot a person reads at a glance in a terminal)."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[round((v - lo) / span * (len(SPARK) - 1))] for v in values)


def search_waves(spec) -> int:  # noqa: ANN001 - JobSpec, lazily imported
    """How many rounds of jobs a search posts at most: each rung's trials, ``parallel`` at a
    time (a rung waits for the one before it)."""
    import math

    from morphware.runtime.job.halving import rungs

    assert spec.hpo is not None
    plan = rungs(spec.hpo.trials, spec.hpo.min_epochs, spec.training.epochs, spec.hpo.eta)
    return sum(math.ceil(r.trials / spec.hpo.parallel) for r in plan)


def run_search(job: Path, data_dir: Path, timeout: float) -> None:
    """Run the search to the end and print the chosen configuration (exit 1 if none)."""
    from morphware.runtime.job.hpo import HpoError, run_hpo
    from morphware.runtime.job.splits import SplitError

    try:
        res = run_hpo(job, data_dir, timeout=timeout, echo=typer.echo)
    except (HpoError, SplitError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    for r in res.trials:
        typer.echo(f"trial {r.number}: rung {r.rung} ({r.epochs} epochs) jobs {list(r.jobs)} "
                   f"{r.outcome} validation={r.value} {r.params}")
    if res.best is None:
        typer.echo("no trial trained the full budget to a validated metric", err=True)
        raise typer.Exit(1)
    typer.echo(f"best: trial {res.best.number} {res.best.params}")
    typer.echo(f"  validation metric {res.best.value:.4f}, test metric "
               f"{res.test_metric if res.test_metric is None else f'{res.test_metric:.4f}'}")
    typer.echo(f"  tokens spent {res.tokens:.4g} over {sum(len(r.jobs) for r in res.trials)} "
               f"job(s) in {res.seconds:.0f}s; model: {res.best_model}")


@hpo_app.command("status")
def status(
    job: Path = typer.Argument(..., help="The search's job.toml."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The requester daemon's state folder."),
    storage: str = typer.Option("", "--storage", help="Study database URL (default: "
                                "[hpo].storage, else hpo.db in --data-dir)."),
) -> None:
    """Trials by rung: budget, validation metric, tokens; and the best value so far over time."""
    import optuna
    from morphware.runtime.job.hpo import default_storage
    from morphware.runtime.job.spec import JobSpecError, load_job

    try:
        spec = load_job(job)
    except JobSpecError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    url = storage or (spec.hpo.storage if spec.hpo else None) or default_storage(data_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=spec.name, storage=url)
    except KeyError:
        typer.echo(f"error: no search named {spec.name!r} in {url}", err=True)
        raise typer.Exit(1) from None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best_so_far: list[float] = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.datetime_start):
        steps = sorted(t.intermediate_values.items())
        rungs = ", ".join(f"{e} ep: {v:.4f}" for e, v in steps) or "-"
        tokens = sum(float(v) for k, v in t.user_attrs.items() if k.startswith("tokens_r"))
        typer.echo(f"trial {t.number:3d} {t.state.name.lower():9s} {rungs:40s} "
                   f"tokens {tokens:8.3g}  {t.params}")
        if t.value is not None:
            prev = best_so_far[-1] if best_so_far else t.value
            best_so_far.append(max(prev, t.value) if maximize else min(prev, t.value))
    if best_so_far:
        typer.echo(f"best so far: {sparkline(best_so_far)} {best_so_far[-1]:.4f}")


def register(app: typer.Typer) -> None:
    app.add_typer(hpo_app, name="hpo")
