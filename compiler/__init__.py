"""morphware.compiler: ONNX -> hls4ml ModelGraph -> quantised, tiled systolic Program.

Public API (import cost is small; hls4ml/qonnx/torch load on first compile):

* ``compile_model(model, params, calib, bits=None) -> (Program, report)``
* ``Program`` (``.save(path)``, ``Program.load(path)``)
* ``execute(program, x, backend="golden"|"rtl"|obj) -> ndarray`` and ``run(...) -> Execution``
* ``supported_ops()`` — the ONNX op types it accepts (array or host)
* ``program_cycles(program, batch)``, ``report(program, batch)``, ``format_table(report)``
* ``supported_ops()``: the ONNX op types it compiles
"""

from __future__ import annotations

from morphware.compiler.api import compile_model
from morphware.compiler.cost import format_table, program_cycles, report
from morphware.compiler.errors import CompileError, ProgramFormatError
from morphware.compiler.execute import (
    Execution,
    GemmCall,
    GemmResult,
    GoldenBackend,
    RtlBackend,
    execute,
    run,
)
from morphware.compiler.ops import supported_ops
from morphware.compiler.program import FORMAT_VERSION, Program


def supported_ops() -> list[str]:
    """ONNX op types ``compile_model`` accepts (on the array or as host ops); see
    docs/compiler-ops.md for where each runs and why the others are refused."""
    from morphware.compiler.onnx_import import supported_ops as ops

    return ops()


__all__ = [
    "FORMAT_VERSION", "CompileError", "Execution", "GemmCall", "GemmResult", "GoldenBackend",
    "Program", "ProgramFormatError", "RtlBackend", "compile_model", "execute", "format_table",
    "program_cycles", "report", "run", "supported_ops",
]
