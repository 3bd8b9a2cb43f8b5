"""morphware.compiler: ONNX -> float IR -> quantised, tiled systolic Program.

Public API (import cost is small; onnx/torch load on first compile, hls4ml/qonnx only for the
hls4ml routes):

* ``compile_model(model, params, calib, bits=None) -> (Program, report)``
* ``Program`` (``.save(path)``, ``Program.load(path)``)
* ``execute(program, x, backend="golden"|"rtl"|obj) -> ndarray`` and ``run(...) -> Execution``
* ``supported_ops()`` — the ONNX op types it accepts (array or host)
* ``program_cycles(program, batch)``, ``report(program, batch)``, ``format_table(report)``
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

__all__ = [
    "FORMAT_VERSION", "CompileError", "Execution", "GemmCall", "GemmResult", "GoldenBackend",
    "Program", "ProgramFormatError", "RtlBackend", "compile_model", "execute", "format_table",
    "program_cycles", "report", "run", "supported_ops",
]
