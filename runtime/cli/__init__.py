"""The ``morphware`` command. Each subcommand group lives in its own module in this folder and
exposes ``register(app)``; add a module name to ``COMMAND_MODULES`` to plug it in."""

from __future__ import annotations

import importlib
import importlib.metadata

import typer

app = typer.Typer(
    name="morphware",
    help="Morphware: a peer-to-peer market for ML compute, with a systolic-array compiler and runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES: list[str] = [
    "doctor",
    "compile",
    "train",
    "verify",
    "package",
    "node",
    "devnet",
    "dashboard",
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"morphware {importlib.metadata.version('morphware')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Morphware: a peer-to-peer market for ML compute."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    app()
