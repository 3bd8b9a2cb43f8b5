"""SystolicBackend: hls4ml's parse/convert/optimize flows, then our own passes (see passes/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from hls4ml.backends.backend import Backend
from hls4ml.backends.fpga.fpga_backend import FPGABackend
from hls4ml.model.flow import register_flow
from morphware.compiler.errors import CompileError

STAGES = ("quantise", "lower", "tile", "schedule", "write")
PROGRAM_FILE = "program.mwp"


class SystolicWriter:
    """Writes the Program the flow produced into the project's output directory."""

    def write_hls(self, model: Any) -> Path:
        program = getattr(model, "systolic_program", None)
        if program is None:
            raise CompileError("the Systolic flow has not produced a Program for this model")
        out = Path(model.config.get_output_dir()) / PROGRAM_FILE
        return program.save(out)


class SystolicBackend(Backend):
    def __init__(self) -> None:
        super().__init__("Systolic")
        self.writer = SystolicWriter()
        self._register_flows()

    def _register_flows(self) -> None:
        prev = "optimize"
        for stage in STAGES:
            prev = register_flow(stage, [f"systolic:systolic_{stage}"], requires=[prev],
                                 backend=self.name)
        self._default_flow = prev

    def get_default_flow(self) -> str:
        return self._default_flow

    def get_writer_flow(self) -> str:
        return self._default_flow

    def create_initial_config(self, rows: int = 8, cols: int = 8, data_bits: int = 8,
                              acc_depth: int = 256, calibration: np.ndarray | None = None,
                              onnx_input_shape: tuple[int, ...] | None = None,
                              circuit: str = "ws", **_: Any) -> dict[str, Any]:
        """Backend config: the target circuit, calibration data (ONNX input layout, batch first)
        and the ONNX per-sample input shape (to map the user's layout onto hls4ml's)."""
        return {"ArrayParams": {"rows": rows, "cols": cols, "data_bits": data_bits,
                                "acc_bits": 32, "acc_depth": acc_depth},
                "Calibration": calibration, "OnnxInputShape": onnx_input_shape,
                "Circuit": circuit}

    @classmethod
    def convert_precision_string(cls, precision: Any) -> Any:
        """hls4ml's layers carry fixed-point result types; we parse them as the FPGA backends do
        (the Program's own types come from quantisation, not from these)."""
        return FPGABackend.convert_precision_string.__func__(FPGABackend, precision)

    def create_layer_class(self, layer_class: type) -> type:
        """hls4ml's layer classes, wrapped under our name; we add no HLS attributes."""
        fqn = layer_class.__module__ + "." + layer_class.__qualname__
        return type(self.name + layer_class.__name__, (layer_class,),
                    {"_expected_attributes": [], "_wrapped": fqn})

    def write(self, model: Any) -> Path:
        return self.writer.write_hls(model)

    def compile(self, model: Any) -> None:
        raise CompileError("the Systolic backend has no C simulation: run the Program with "
                           "morphware.compiler.execute (golden or rtl)")

    def predict(self, model: Any, x: np.ndarray) -> np.ndarray:
        """Golden execution of the compiled Program."""
        from morphware.compiler.execute import execute

        return execute(model.systolic_program, x, "golden")
