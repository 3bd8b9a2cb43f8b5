"""``morphware verify``: run the verification suite on one circuit configuration in simulation,
optionally place and route it (``--pnr DEVICE``) for its Fmax and placed resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from morphware.systolic.params import ArrayParams
    from morphware.systolic.verify import CaseResult


def verify(
    rows: int = typer.Option(8, "--rows", help="array rows R (K extent of a weight tile)"),
    cols: int = typer.Option(8, "--cols", help="array columns C (N extent of a weight tile)"),
    sim: str = typer.Option("verilator", "--sim", help="verilator or icarus"),
    bits: int = typer.Option(8, "--bits", help="data width: 8 or 16"),
    circuit: str = typer.Option("ws", "--circuit", help="registered circuit name"),
    seed: int = typer.Option(0, "--seed", help="seed of the random cases"),
    resources: bool = typer.Option(True, "--resources/--no-resources",
                                   help="also synthesise with Yosys (synth_xilinx)"),
    pnr: str = typer.Option("", "--pnr", metavar="DEVICE",
                            help="also place and route with nextpnr from PyPI: lfe5u-25f, "
                                 "lfe5u-45f, lfe5u-85f (speed suffix -6/-7/-8), ice40up5k"),
    pnr_mhz: float = typer.Option(100.0, "--pnr-mhz", help="clock target for --pnr (MHz)"),
    suite: bool = typer.Option(True, "--suite/--no-suite",
                               help="run the simulation suite (--no-suite: only --pnr / resources)"),
) -> None:
    """Directed + random GEMMs on the RTL, bit-exact against the golden model and cycle-exact
    against the cycle model; with --pnr also synthesis, place and route and the Fmax. Exits 1 on
    any mismatch or when the placed design misses the --pnr-mhz target."""
    from morphware.systolic.circuit import get_circuit
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
    if pnr:
        from morphware.systolic.pnr import parse_device
        try:
            parse_device(pnr)
        except ValueError as e:
            console.print(f"[red]{e}[/]")
            raise typer.Exit(2) from None
    results: list[CaseResult] = []
    if suite:
        console.print(f"verifying circuit [bold]{circ.name}[/] {p.tag} on {sim} ...")
        results = run_suite(circ, p, sim, seed=seed)
        _print_suite(console, results, circ.name, p, sim)
    if resources:
        _print_resources(console, p, circ)
    timing_ok = _print_pnr(console, p, circ, pnr, pnr_mhz) if pnr else True
    failed = [r for r in results if not (r.passed and r.cycles_ok)]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} cases failed[/]")
        raise typer.Exit(1)
    if results:
        console.print(f"[green]all {len(results)} cases passed[/]")
    if not timing_ok:
        raise typer.Exit(1)


def _print_suite(console: Console, results: list[CaseResult], name: str, p: ArrayParams,
                 sim: str) -> None:
    from morphware.systolic.cycle_model import utilization

    rows, cols, bits = p.rows, p.cols, p.data_bits
    table = Table(title=f"{name} {rows}x{cols} int{bits} on {sim}")
    for col in ("case", "M x K x N", "result", "cycles", "model", "stalls", "utilization"):
        table.add_column(col)
    for r in results:
        ok = r.passed and r.cycles_ok
        verdict = "[green]pass[/]" if ok else f"[red]FAIL ({r.mismatches} wrong)[/]"
        table.add_row(r.name, f"{r.m}x{r.k}x{r.n}", verdict, str(r.cycles), str(r.model_cycles),
                      str(r.stall_cycles), f"{utilization(r.m, r.k, r.n, p, r.cycles):.1%}")
    console.print(table)


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


def _print_pnr(console: Console, p: ArrayParams, circ: object, device: str, mhz: float) -> bool:
    """Place and route, print Fmax, critical path and resources; True when the target is met."""
    from morphware.systolic.pnr import run

    console.print(f"place and route on [bold]{device}[/] at {mhz:g} MHz "
                  "(minutes; cached per RTL, parameters and tool versions) ...")
    try:
        r = run(p, device, circ, target_mhz=mhz)  # type: ignore[arg-type]  # a Circuit
    except (RuntimeError, OSError) as e:
        console.print(f"[red]place and route failed: {e}[/]")
        return False
    speed = f" speed {r.speed}" if r.speed else ""
    verdict = "[green]met[/]" if r.met else "[red]missed[/]"
    console.print(f"Fmax [bold]{r.fmax_mhz:.1f} MHz[/] on {r.device}{speed} "
                  f"(target {r.target_mhz:g} MHz: {verdict})")
    cp = r.critical_path
    console.print(f"critical path {cp['delay_ns']} ns ({cp['logic_ns']} logic, "
                  f"{cp['routing_ns']} routing): {cp['from']} -> {cp['to']}")
    table = Table(title=f"placed resources ({r.device}{speed})")
    for k in ("LUT", "FF", "DSP", "BRAM"):
        table.add_column(k)
    table.add_column("MACs/DSP")
    table.add_row(*(f"{r.resources[k]:g} / {r.available[k]}" for k in ("LUT", "FF", "DSP",
                                                                     "BRAM")),
                  f"{r.resources['MACs_per_DSP']:g}")
    console.print(table)
    tools = ", ".join(f"{k} {v}" for k, v in r.tools.items())
    when = "cached" if r.cached else f"synthesis {r.synth_s:.0f} s, place and route {r.pnr_s:.0f} s"
    console.print(f"{tools}; {when}; report {r.files.get('report.json', '')}")
    return r.met


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
