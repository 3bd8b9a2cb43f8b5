"""``morphware train``, ``morphware eval`` and ``morphware backends``: the engine, run locally.

``train`` runs on the requester's own machine, so it may build the model from the job's own .py
(that is the requester's code); workers only ever see the exported ONNX.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from morphware.runtime.job.spec import JobSpec

console = Console()


def _known_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input at fault: print the message, no traceback."""
    from morphware.compiler.errors import CompileError
    from morphware.runtime.backends.base import BackendError
    from morphware.runtime.job.packaging import PackagingError
    from morphware.runtime.job.spec import JobSpecError
    from morphware.runtime.model.evaluation import MetricError
    from morphware.runtime.model.onnx_torch import UnsupportedOpError
    from morphware.runtime.model.safe_io import UnsafeInputError
    from morphware.runtime.model.training import TrainingError

    return (CompileError, BackendError, MetricError, JobSpecError, UnsupportedOpError,
            UnsafeInputError, TrainingError, PackagingError)


def _fail(e: BaseException) -> typer.Exit:
    console.print(f"[red]error:[/] {escape(str(e))}")
    return typer.Exit(1)


def model_to_onnx(spec: JobSpec, out: Path) -> Path:
    """The job's model as ONNX: the .onnx itself, or its .py/.ipynb's ``build_model(**hparams)``
    exported by the requester's packaging (same seed, same export as a real job)."""
    if spec.model.kind == "onnx":
        return spec.model.source
    import warnings

    from morphware.runtime.job.packaging import build_model, export_onnx

    assert spec.model.input_shape is not None  # jobspec requires it for .py/.ipynb
    out.mkdir(parents=True, exist_ok=True)
    net = build_model(spec.model.source, spec.model.hparams, seed=spec.training.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return export_onnx(net, spec.model.input_shape, out / "model.onnx",
                           source=spec.model.source)


def train(
    job: Path = typer.Argument(..., help="job.toml", exists=True, dir_okay=False),
    out: Path = typer.Option(None, "-o", "--out", help="output folder (default: out/<job name>)"),
    backend: str = typer.Option("auto", help="training backend: auto, cuda, cpu, or golden, rtl, "
                                "fpga (every GEMM on the systolic array)"),
    bits: int = typer.Option(None, help="array backends: operand width, 8 or 16 "
                             "(default: the backend's)"),
    resume: bool = typer.Option(True, help="resume from out/checkpoint.pt if present"),
) -> None:
    """Train a job's model locally (as a worker would) and evaluate it on the job's test set."""
    from morphware.runtime.job.spec import load_job
    from morphware.runtime.model.evaluation import evaluate
    from morphware.runtime.model.training import TrainEvent, train_onnx
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    try:
        spec = load_job(job)
        out = out or Path("out") / spec.name
        onnx_path = model_to_onnx(spec, out)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} steps"),
                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                      console=console) as progress:
            task = progress.add_task(f"training {spec.name}", total=None, info="")

            def on_event(ev: TrainEvent) -> None:
                if ev.kind == "step":
                    progress.update(task, total=ev.total_steps * spec.training.epochs,
                                    advance=1, info=f"epoch {ev.epoch} loss {ev.loss:.4f}")
                elif ev.kind == "resumed":
                    progress.console.print(f"resuming from the checkpoint after epoch "
                                           f"{ev.epoch}/{spec.training.epochs}")
                elif ev.kind == "discarded":
                    progress.console.print(f"starting over: {escape(ev.note)}")
                else:
                    shown = " ".join(f"{k} {v:.4f}" for k, v in ev.metrics.items())
                    progress.console.print(f"epoch {ev.epoch}/{spec.training.epochs}: {shown}")

            result = train_onnx(onnx_path, spec.data.train, spec.training, out / "trained.onnx",
                                on_event=on_event, backend=backend, bits=bits,
                                checkpoint=(out / "checkpoint.pt") if resume else None)
        value = evaluate(result.onnx_path, spec.data.test, spec.metric.name, backend="cpu")
    except _known_errors() as e:
        raise _fail(e) from e
    passed = spec.metric.passes(value)
    summary: dict[str, Any] = {**asdict(result), "onnx_path": str(result.onnx_path),
                               "test_metric": {spec.metric.name: value}, "passes": passed}
    (out / "train_result.json").write_text(json.dumps(summary, indent=2))
    verdict = "[green]passes[/]" if passed else "[red]fails[/]"
    console.print(f"{spec.metric.name} on the test set: {value:.4f} — {verdict} the threshold "
                  f"{spec.metric.threshold} (backend {result.backend}, {result.seconds:.1f} s)")
    if result.array:
        a = result.array
        console.print(f"array: int{a['bits']}, {a['commands']:,} GEMM commands, "
                      f"{a['cycles']:,} cycles (cycle model), {a['macs']:,} MACs")
    console.print(f"trained model: {result.onnx_path}")


def eval_cmd(
    model: Path = typer.Argument(..., help="model.onnx", exists=True, dir_okay=False),
    test: Path = typer.Argument(..., help="test set .npz with arrays x, y", exists=True,
                                dir_okay=False),
    backend: str = typer.Option("auto", help="auto, cpu, cuda, golden, rtl or fpga"),
    metric: str = typer.Option("accuracy", help="accuracy, top5, mse or mae"),
    array: str = typer.Option(None, help="array shape for Program backends, e.g. 8x8"),
) -> None:
    """Evaluate a model on a test set with one backend."""
    import time

    from morphware.runtime.model.evaluation import evaluate

    t0 = time.perf_counter()
    try:
        value = evaluate(model, test, metric, backend=backend, array=array)
    except _known_errors() as e:
        raise _fail(e) from e
    console.print(f"{metric}: {value:.4f}  (backend {backend}, {time.perf_counter() - t0:.2f} s)")


def backends(
    profile: bool = typer.Option(False, help="measure (or read cached) throughput of each "
                                 "usable backend"),
) -> None:
    """List the execution backends: usable here, or why not."""
    from morphware.runtime.backends.registry import get_backend, status

    table = Table(title="morphware backends")
    cols = ["backend", "usable", "train", "programs", "priority", "detail"]
    if profile:
        cols.insert(5, "samples/s")
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in status():
        row = [r.name, "[green]yes[/]" if r.usable else "[red]no[/]", "yes" if r.train else "",
               "yes" if r.programs else "", str(r.priority)]
        if profile:
            row.append(f"{get_backend(r.name).profile().samples_per_s:,.0f}"
                       if r.usable and r.name != "rtl" else "")
        table.add_row(*row, escape(r.reason))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(eval_cmd)
    app.command("backends")(backends)
