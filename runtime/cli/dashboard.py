"""``morphware dashboard``: serve a node's read-only HTTP API and the web dashboard.

FastAPI and uvicorn are imported inside the command so ``morphware --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


def dashboard(
    data_dir: Path = typer.Option(..., "--data-dir", help="The node's state folder (node.db)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", help="TCP port (0: any free port)."),
) -> None:
    """Serve the dashboard and its JSON API (read only) for the node on --data-dir."""
    import uvicorn
    from morphware.runtime.api.app import create_app
    from morphware.runtime.api.source import SourceError

    try:
        app = create_app(data_dir)
    except SourceError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"morphware dashboard for {data_dir} on http://{host}:{port}/ (Ctrl-C to stop)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        typer.echo(f"error: could not serve on {host}:{port} (port in use?)", err=True)
        raise typer.Exit(1) from e


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
