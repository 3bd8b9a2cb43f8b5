"""The compiler's top-level entry point."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
from morphware.compiler import cost, frontend, lower, onnx_import, prepare
from morphware.compiler.errors import CompileError
from morphware.compiler.program import Program
from morphware.systolic.circuit import get_circuit
from morphware.systolic.params import ArrayParams


def model_bytes(model: Any, example_input: Any = None) -> tuple[bytes, str]:
    """Serialized ONNX of a path, bytes, ModelProto or torch module, and a name for messages.
    Files are not parsed here: parsing untrusted bytes happens in the bounded child process."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise CompileError(f"model file {path} does not exist")
        return path.read_bytes(), str(path)
    if isinstance(model, (bytes, bytearray)):
        return bytes(model), "model bytes"
    return frontend.load_onnx(model, example_input).SerializeToString(), "model"


def compile_model(model: Any, params: ArrayParams, calib: np.ndarray, bits: int | None = None,
                  example_input: Any = None, name: str = "model", circuit: str = "ws",
                  timeout_s: float = prepare.TIMEOUT_S) -> tuple[Program, dict[str, Any]]:
    """Compile ``model`` (ONNX path, bytes, ``onnx.ModelProto`` or torch module) for ``params``.

    ``calib`` is a batch ``(N, *input_shape)`` in the model's own input layout; a torch module is
    exported with ``example_input`` (default: the first calibration sample). ``bits`` (8 or 16)
    overrides ``params.data_bits``; ``circuit`` names the registered circuit to target;
    ``timeout_s`` bounds the front end's preparation of the file (:mod:`prepare`). Returns the
    Program and the compile report (:func:`morphware.compiler.cost.report`, batch 1).
    """
    import onnx

    try:
        get_circuit(circuit)
    except ValueError as e:
        raise CompileError(str(e)) from e
    if bits is not None and bits != params.data_bits:
        params = dataclasses.replace(params, data_bits=bits)
    if example_input is None and not isinstance(model, (str, bytes)) and hasattr(model, "forward"):
        example_input = np.asarray(calib, np.float32)[:1]
    data, where = model_bytes(model, example_input)
    prepared = onnx.load_from_string(prepare.prepare(data, where, timeout_s))
    g = onnx_import.import_model(prepared)
    x = lower.check_calibration(calib, g.input_shape)
    stats = lower.calibrate(g, x)
    instructions, arrays, outs = lower.lower(g, stats, params, None, circuit)
    lower.tile(instructions, params)
    lower.schedule(instructions, keep=set(outs))
    program = Program(params=params, input_name=g.input, input_shape=g.input_shape,
                      outputs=[(o, g.shapes[s]) for o, s in zip(outs, g.outputs, strict=True)],
                      instructions=instructions, arrays=arrays,
                      meta={"name": name, "stats": stats}, circuit=circuit)
    return program, cost.report(program)
