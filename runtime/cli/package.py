"""``morphware package``: package a job locally (ONNX + .npz + training.toml + manifest.json)
to inspect what would be published, without a chain or peers."""

from __future__ import annotations

from pathlib import Path

import typer


def package(
    job: Path = typer.Argument(..., help="job.toml (or the folder holding it)."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="Output folder [default: <job folder>/package]."),
) -> None:
    """Validate job.toml, build and export the model, check the data, write the package."""
    from morphware.runtime.job.packaging import PackagingError, package_job
    from morphware.runtime.job.spec import JobSpecError, load_job
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    try:
        spec = load_job(job)
        pkg = package_job(spec, out if out is not None else spec.root / "package")
    except (JobSpecError, PackagingError) as e:
        console.print(f"[red]error:[/] {escape(str(e))}")  # "[training]" is not markup
        raise typer.Exit(1) from None
    m = pkg.manifest
    table = Table(title=f"job {m['name']} packaged in {pkg.root}")
    for col in ("file", "what", "bytes", "sha256"):
        table.add_column(col)
    model = m["model"]
    table.add_row(pkg.model.name, f"{model['params']:,} params, "
                  f"{model['macs_per_sample']:,} MACs/sample", str(model["bytes"]),
                  model["sha256"][:16])
    for role in ("train", "test"):
        d = m["data"][role]
        table.add_row(d["file"], f"{d['samples']} samples, x {d['x_shape'][1:]} {d['x_dtype']}",
                      str(d["bytes"]), d["sha256"][:16])
    table.add_row(pkg.recipe.name, "training recipe + metric", str(pkg.recipe.stat().st_size),
                  m["recipe"]["sha256"][:16])
    console.print(table)
    met = m["metric"]
    console.print(f"metric: {met['name']} {'>=' if met['higher_is_better'] else '<='} "
                  f"{met['threshold']}; manifest: {pkg.manifest_path}")


def register(app: typer.Typer) -> None:
    app.command("package")(package)
