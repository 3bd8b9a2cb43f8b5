"""``morphware doctor``: per capability, what this machine has and what is missing."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table


def doctor() -> None:
    """Report tools and packages per capability, with the exact fix for anything missing.

    Exits 1 when something required is missing (CUDA, a PYNQ board and Chromium are optional).
    """
    from morphware.runtime.doctor import missing_required, run_all

    checks = run_all()
    table = Table(title="morphware doctor")
    for col in ("capability", "component", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]absent[/]")
        table.add_row(c.capability, c.name, status, c.detail, "" if c.ok else c.fix)
    console = Console()
    console.print(table)
    bad = missing_required(checks)
    if bad:
        console.print(f"[red]{len(bad)} required component(s) missing:[/] "
                      + ", ".join(c.name for c in bad))
        raise typer.Exit(1)
    console.print("[green]everything required is present[/]")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
