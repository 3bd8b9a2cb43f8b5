"""The ``morphware`` command. Each subcommand group lives in its own module in this folder and
exposes ``register(app)``; add a module name to ``COMMAND_MODULES`` to plug it in."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

import typer
from morphware.contracts.anvil import AnvilUnavailable
from morphware.runtime.cli.errors import MorphwareGroup
from morphware.systolic.toolchain import MissingExtra, MissingTool, extra_of

app = typer.Typer(
    cls=MorphwareGroup,
    name="morphware",
    help="Morphware: a peer-to-peer market for ML compute, with a systolic-array compiler and runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" and "[hpo]" stay as written
)

COMMAND_MODULES: list[str] = [
    "doctor",
    "compile",
    "train",
    "verify",
    "package",
    "node",
    "hpo",
    "devnet",
    "dashboard",
    "bitstream",
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"morphware {importlib.metadata.version('morphware')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug",
                               help="On an operator error, print the traceback too."),
) -> None:
    """Morphware: a peer-to-peer market for ML compute."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


# Exit status of a command that cannot run because an optional part is not installed.
EXIT_MISSING = 3


def main() -> None:
    """Run the command; a missing optional extra or tool (Icarus, anvil) ends in one line naming
    the fix (exit 3) instead of a traceback."""
    try:
        app()
    except (MissingExtra, MissingTool, AnvilUnavailable) as e:
        _fail_missing(str(e))
    except ModuleNotFoundError as e:
        extra = extra_of(e.name or "")
        if extra is None:  # a base dependency: a broken install, worth its traceback
            raise
        _fail_missing(str(MissingExtra(f"morphware {' '.join(sys.argv[1:2])}".strip(), extra,
                                       [e.name or ""])))


def _fail_missing(line: str) -> None:
    typer.echo(f"error: {line}", err=True)
    raise SystemExit(EXIT_MISSING)
