"""``morphware compile`` and ``morphware run``: the compiler and the Program executors."""

from __future__ import annotations

import json
from pathlib import Path

import typer

PROGRAM_FILE = "program.mwp"


def _array_shape(text: str) -> tuple[int, int]:
    try:
        r, c = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--array must look like 8x8, got {text!r}") from None
    return r, c


def _load_npz(path: Path, what: str) -> object:
    import numpy as np

    if not path.is_file():
        raise typer.BadParameter(f"{what} file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        key = "x" if "x" in z.files else (z.files[0] if len(z.files) == 1 else None)
        if key is None:
            raise typer.BadParameter(f"{what} file {path}: store the array under 'x' "
                                     f"(found {', '.join(z.files)})")
        return z[key]


def compile_cmd(
    model: Path = typer.Argument(..., help="ONNX model file."),
    array: str = typer.Option("8x8", "--array", help="Array shape RxC."),
    bits: int = typer.Option(8, "--bits", help="Data width: 8 or 16."),
    acc_depth: int = typer.Option(256, "--acc-depth", help="Accumulator rows per command."),
    circuit: str = typer.Option("ws", "--circuit", help="Registered circuit to target."),
    calib: Path | None = typer.Option(None, "--calib", help=".npz with calibration inputs 'x'."),
    target: str = typer.Option("systolic", "--target", help="systolic (Program) or hls (hls4ml)."),
    out: Path = typer.Option(Path("out"), "-o", "--out", help="Output directory."),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0,
                                  help="Systolic target: seconds the front end may spend preparing the model "
                                       "(shape inference, constant folding) before giving up."),
) -> None:
    """Compile an ONNX model: print the layer table and write OUT/program.mwp (or an HLS project)."""
    import numpy as np
    from morphware.compiler import CompileError, compile_model, format_table, frontend
    from morphware.systolic.params import ArrayParams

    try:
        if calib is not None:
            x = np.asarray(_load_npz(calib, "--calib"), np.float32)
        else:
            shape = frontend.input_shape(frontend.load_onnx(str(model)))
            x = np.random.default_rng(0).standard_normal((64, *shape)).astype(np.float32)
            typer.echo("warning: no --calib given; calibrating on 64 N(0,1) samples "
                       "(pass real inputs for usable int accuracy)", err=True)
        if target == "hls":
            from morphware.compiler.hls_route import build_hls

            res = build_hls(str(model), x[:16], out / "hls")
            typer.echo(f"hls4ml project: {res.project_dir}\nC simulation vs float on "
                       f"{res.samples} samples: max |err| {res.max_abs_error:.4g}, top-1 "
                       f"agreement {res.top1_agreement:.1%}")
            return
        if target != "systolic":
            raise typer.BadParameter(f"--target must be systolic or hls, got {target!r}")
        r, c = _array_shape(array)
        params = ArrayParams(rows=r, cols=c, data_bits=bits, acc_depth=acc_depth)
        program, rep = compile_model(str(model), params, x, name=model.stem, circuit=circuit,
                                     timeout_s=timeout)
    except CompileError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(format_table(rep))
    path = program.save(out / PROGRAM_FILE)
    (out / "report.json").write_text(json.dumps(rep, indent=2))
    typer.echo(f"wrote {path}")


def run_cmd(
    program: Path = typer.Argument(..., help="Program file (program.mwp) or its directory."),
    inputs: Path = typer.Option(..., "--inputs", help=".npz with the input batch 'x'."),
    backend: str = typer.Option("golden", "--backend", help="golden, rtl or rtl-icarus."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write outputs to this .npz."),
) -> None:
    """Execute a Program on a batch of inputs and print the outputs and array cycles."""
    import numpy as np
    from morphware.compiler import Program, ProgramFormatError, run

    path = program / PROGRAM_FILE if program.is_dir() else program
    try:
        prog = Program.load(path)
        x = _load_npz(inputs, "--inputs")
        ex = run(prog, x, backend)
    except (ProgramFormatError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    y = ex.output
    typer.echo(f"output shape {y.shape}, array cycles {ex.total_cycles} ({backend})")
    if y.ndim == 2:
        typer.echo("argmax: " + " ".join(str(int(v)) for v in y.argmax(axis=1)))
    if out is not None:
        np.savez(out, y=y)
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_cmd)
    app.command("run")(run_cmd)
