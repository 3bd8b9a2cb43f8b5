"""Hyperparameter search across the market: speed-up with N workers, against the same search run
locally with N processes, and multi-fidelity against full-budget search.

Side by side in one run, on the digits job:

- market: ``run_hpo`` on a real-time anvil chain (a block per second) with N workers and one
  validator as separate ``morphware node`` processes, the requester a node in this process
  (``tests/support/anvil_market.py``), ``parallel = N``;
- local: the same configurations (the same Optuna sampler and seed) trained and scored on the
  same validation split by N worker processes, no market;
- multi-fidelity (successive halving over epochs) vs every configuration at the full budget,
  with the full-budget search given the number of configurations that costs the same epochs.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.report import Report, Table

SEARCH = """
[job]
name = "{name}"

[model]
source = "model.py"
input_shape = [64]
hparams = {{ hidden = 32 }}

[data]
train = "data/train.npz"
test = "data/test.npz"
validation_fraction = 0.2

[training]
learning_rate = 0.01
epochs = {epochs}
seed = 0

[metric]
name = "accuracy"
threshold = 0.5

[market]
max_price = 50.0
validators = 1
validator_fee = 0.5
bid_window_s = 10
reveal_window_s = 10
work_window_s = 600
validation_window_s = 120

[hpo]
trials = {trials}
parallel = {parallel}
direction = "maximize"
sampler = "random"
{extra}

[hpo.space]
learning_rate = {{ low = 0.001, high = 0.05, log = true }}
hidden = {{ choices = [16, 32, 64] }}
"""


def _write(root: Path, name: str, **kw: Any) -> Path:
    from morphware.runtime.demo import EXAMPLE_JOB

    shutil.copytree(EXAMPLE_JOB.parent, root, dirs_exist_ok=True)
    path = root / f"{name}.toml"
    path.write_text(SEARCH.format(name=name, extra="", **kw))
    return path


def _market(jobs: list[Path], workers: int, root: Path) -> list[dict[str, Any]]:
    """Run the searches one after another on one anvil market with ``workers`` worker
    processes and one validator process."""
    from morphware.runtime.job.hpo import run_hpo

    from tests.support.anvil_market import TOKEN, anvil_market

    out = []
    with anvil_market(root, [(f"worker-{i}", 1.0 + 0.1 * i) for i in range(workers)],
                      ["validator"], requester_tokens=5000 * TOKEN) as net:
        for job in jobs:
            t0 = time.perf_counter()
            res = run_hpo(job, net.requester.data_dir, timeout=3600, poll=0.5)
            out.append({"wall_s": time.perf_counter() - t0,
                        "best_val": res.best.value if res.best else None,
                        "test": res.test_metric, "tokens": res.tokens,
                        "jobs": sum(len(r.jobs) for r in res.trials)})
            print(job.stem, out[-1], flush=True)
    return out


def _train_one(args: tuple[str, dict[str, Any], str, str, str]) -> float:
    """One configuration trained and scored locally (a worker process of the anchor)."""
    from morphware.runtime.job.packaging import package_job
    from morphware.runtime.job.spec import load_job
    from morphware.runtime.model.evaluation import evaluate
    from morphware.runtime.model.training import train_onnx

    job, params, train, val, out = args
    spec = load_job(job).with_hparams(params).with_inputs(train=Path(train), test=Path(val))
    pkg = package_job(spec, Path(out))
    res = train_onnx(pkg.model, pkg.train, spec.training, Path(out) / "trained.onnx",
                     backend="cpu")
    return float(evaluate(res.onnx_path, pkg.test, spec.metric.name, backend="cpu"))


def _local(job: Path, processes: int, root: Path) -> dict[str, Any]:
    import optuna
    from morphware.runtime.job.hpo import suggest
    from morphware.runtime.job.spec import load_job
    from morphware.runtime.job.splits import make_split

    spec = load_job(job)
    assert spec.hpo is not None
    split = make_split(spec, root / "split")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=spec.training.seed))
    t0 = time.perf_counter()
    # spawn, not fork: this process already runs torch's and libtorrent's threads, and a forked
    # child inherits their locks held (a forked trainer hung on torch's thread pool)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        trials = [study.ask() for _ in range(spec.hpo.trials)]
        params = [suggest(t, spec.hpo.space) for t in trials]
        args = [(str(job), p, str(split.train), str(split.validation), str(root / f"t{i}"))
                for i, p in enumerate(params)]
        for t, value in zip(trials, pool.map(_train_one, args), strict=True):
            study.tell(t, value)
    return {"wall_s": time.perf_counter() - t0, "best_val": study.best_value}


def run(quick: bool = False) -> Report:
    trials = 8 if quick else 16
    counts = (1, 2, 4) if quick else (1, 2, 4, 8)
    epochs = 6 if quick else 12
    rows, mf_rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench-hpo-") as d:
        tmp = Path(d)
        base: dict[str, float] = {}
        for n in counts:
            job = _write(tmp / f"job{n}", f"speed-{n}", epochs=epochs, trials=trials,
                         parallel=n)
            m = _market([job], n, tmp / f"m{n}")[0]
            loc = _local(job, n, tmp / f"l{n}")
            base.setdefault("market", m["wall_s"])
            base.setdefault("local", loc["wall_s"])
            su_m, su_l = base["market"] / m["wall_s"], base["local"] / loc["wall_s"]
            rows.append({"workers": n, "market_s": m["wall_s"], "local_s": loc["wall_s"],
                         "market_speedup": su_m, "local_speedup": su_l,
                         "speedup_ratio": su_m / su_l,
                         "market_s_per_trial": m["wall_s"] / trials,
                         "local_s_per_trial": loc["wall_s"] / trials,
                         "tokens": m["tokens"], "best_val_market": m["best_val"],
                         "best_val_local": loc["best_val"], "test_market": m["test"]})
        n = counts[-1]
        sh = _write(tmp / "sh", "mf", epochs=epochs, trials=trials, parallel=n,
                    ).read_text()
        sh_job = tmp / "sh" / "mf.toml"
        sh_job.write_text(sh.replace('sampler = "random"',
                                     'sampler = "random"\nmin_epochs = 1\neta = 2'))
        from morphware.runtime.job.halving import rungs

        plan = rungs(trials, 1, epochs, 2)
        sh_epochs = sum(r.trials * (r.epochs - (plan[i - 1].epochs if i else 0))
                        for i, r in enumerate(plan))
        full_trials = max(1, round(sh_epochs / epochs))
        full_job = _write(tmp / "full", "full", epochs=epochs, trials=full_trials, parallel=n)
        runs = _market([sh_job, full_job], n, tmp / "mf")
        for (label, configs, epochs_trained), m in zip(
                (("successive halving", trials, sh_epochs),
                 ("full budget", full_trials, full_trials * epochs)), runs, strict=True):
            mf_rows.append({"search": label, "configurations": configs, "jobs": m["jobs"],
                            "epochs_trained": epochs_trained, "tokens": m["tokens"],
                            "wall_s": m["wall_s"], "best_val": m["best_val"], "test": m["test"]})
    targets = {f"market speed-up >= 80% of local at N={r['workers']}":
               r["speedup_ratio"] >= 0.8 for r in rows if r["workers"] in (2, 4)}
    return Report(
        name="hpo",
        tables=[
            Table(f"{trials}-configuration search of the digits job ({epochs} epochs each): "
                  "market vs local, N workers / processes", rows, [
                      "market: anvil (1 block/s), N worker processes + 1 validator process, "
                      "requester in this process; local: ProcessPoolExecutor(N) (spawned), "
                      "same configurations (random sampler, seed 0), same validation split",
                      "this machine has 2 cores: both sides stop scaling past N = 2",
                      "each market job also waits its 10-s bid and reveal windows and the "
                      "validators' commit/reveal rounds: the per-trial overhead is protocol "
                      "latency, not compute (digits trials train for seconds)",
                      "so the speed-up ratio says the market overlaps its protocol latency "
                      "across workers, not that it beats local compute: the local side trains "
                      "a trial in ~2 s and cannot scale on 2 cores; the issue's overhead target "
                      "(trials of >= 30 s of training) needs a bigger job than digits"]),
            Table("Multi-fidelity vs full budget at about equal training epochs", mf_rows, [
                f"successive halving: min_epochs 1, eta 2, plan {[(r.epochs, r.trials) for r in plan]}"
                " (cumulative epochs, trials)",
                "the full-budget search gets the number of configurations that costs the same "
                "epochs; tokens are clearing prices + validator fees actually paid",
                "equal epochs are not equal tokens: every job pays validator fees and its "
                "protocol round trips, so on trials this small successive halving (more, "
                "shorter jobs) costs more tokens; it pays off when training dominates a job"]),
        ],
        targets=targets,
        meta={"quick": quick, "trials": trials, "epochs": epochs},
    )
