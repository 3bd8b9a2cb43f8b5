"""``morphware verify``: run the verification suite on one circuit configuration in simulation."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table


def verify(
    rows: int = typer.Option(8, "--rows", help="array rows R (K extent of a weight tile)"),
    cols: int = typer.Option(8, "--cols", help="array columns C (N extent of a weight tile)"),
    sim: str = typer.Option("verilator", "--sim", help="verilator or icarus"),
    bits: int = typer.Option(8, "--bits", help="data width: 8 or 16"),
    circuit: str = typer.Option("ws", "--circuit", help="registered circuit name"),
    seed: int = typer.Option(0, "--seed", help="seed of the random cases"),
    resources: bool = typer.Option(True, "--resources/--no-resources",
                                   help="also synthesise with Yosys (synth_xilinx)"),
) -> None:
    """Directed + random GEMMs on the RTL, bit-exact against the golden model and cycle-exact
    against the cycle model. Exits 1 on any mismatch."""
    from morphware.systolic.circuit import get_circuit
    from morphware.systolic.cycle_model import utilization
    from morphware.systolic.params import ArrayParams
    from morphware.systolic.sim import check_simulator
    from morphware.systolic.verify import run_suite

    console = Console()
    try:
        p = ArrayParams(rows=rows, cols=cols, data_bits=bits)
        circ = get_circuit(circuit)
        check_simulator(sim)  # a missing [rtl] extra or simulator: one line, before any work
    except ValueError as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    console.print(f"verifying circuit [bold]{circ.name}[/] {p.tag} on {sim} ...")
    results = run_suite(circ, p, sim, seed=seed)
    table = Table(title=f"{circ.name} {rows}x{cols} int{bits} on {sim}")
    for col in ("case", "M x K x N", "result", "cycles", "model", "stalls", "utilization"):
        table.add_column(col)
    for r in results:
        ok = r.passed and r.cycles_ok
        verdict = "[green]pass[/]" if ok else f"[red]FAIL ({r.mismatches} wrong)[/]"
        table.add_row(r.name, f"{r.m}x{r.k}x{r.n}", verdict, str(r.cycles), str(r.model_cycles),
                      str(r.stall_cycles), f"{utilization(r.m, r.k, r.n, p, r.cycles):.1%}")
    console.print(table)
    if resources:
        _print_resources(console, p, circ)
    failed = [r for r in results if not (r.passed and r.cycles_ok)]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} cases failed[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(results)} cases passed[/]")


def _print_resources(console: Console, p: object, circ: object) -> None:
    from morphware.systolic.resources import estimate

    try:
        res = estimate(p, "xilinx", circ)  # type: ignore[arg-type]
    except (RuntimeError, OSError) as e:
        console.print(f"[yellow]resources unavailable: {e}[/]")
        return
    table = Table(title="resources (Yosys synth_xilinx, xc7)")
    for k in res:
        table.add_column(k)
    table.add_row(*(f"{v:g}" for v in res.values()))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
