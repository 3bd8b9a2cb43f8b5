"""The compiler's top-level entry point."""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any

import numpy as np
from morphware.compiler import cost, frontend
from morphware.compiler.errors import CompileError
from morphware.compiler.program import Program
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams


def compile_model(model: Any, params: ArrayParams, calib: np.ndarray, bits: int | None = None,
                  example_input: Any = None, name: str = "model",
                  circuit: str = "ws") -> tuple[Program, dict[str, Any]]:
    """Compile ``model`` (ONNX path, bytes, ``onnx.ModelProto`` or torch module) for ``params``.

    ``calib`` is a batch ``(N, *input_shape)`` in the model's own input layout; a torch module is
    exported with ``example_input`` (default: the first calibration sample). ``bits`` (8 or 16)
    overrides ``params.data_bits``; ``circuit`` names the registered circuit to target. Returns the Program and the compile report
    (:func:`morphware.compiler.cost.report`, batch 1).
    """
    try:
        get_circuit(circuit)
    except ValueError as e:
        raise CompileError(str(e)) from e
    if bits is not None and bits != params.data_bits:
        params = dataclasses.replace(params, data_bits=bits)
    if example_input is None and not isinstance(model, (str, bytes)) and hasattr(model, "forward"):
        example_input = np.asarray(calib, np.float32)[:1]
    mp = frontend.load_onnx(model, example_input)
    frontend.validate(mp)
    shape = frontend.input_shape(mp)
    wrapper = frontend.clean(mp)
    with tempfile.TemporaryDirectory() as tmp:
        hm = frontend.to_hls(wrapper, "Systolic", output_dir=tmp, project_name=name,
                             rows=params.rows, cols=params.cols, data_bits=params.data_bits,
                             acc_depth=params.acc_depth, calibration=calib, onnx_input_shape=shape,
                             circuit=circuit)
    program: Program = hm.systolic_program
    program.meta["name"] = name
    return program, cost.report(program)
