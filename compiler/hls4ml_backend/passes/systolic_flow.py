"""The Systolic backend's passes, one per flow stage: quantise -> lower -> tile -> schedule -> write.

Each works on the whole ModelGraph (a ModelOptimizerPass) and keeps its results in
``model.systolic`` (a dict); the last one leaves the Program in ``model.systolic_program``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hls4ml.model.optimizer import ModelOptimizerPass
from morphware.compiler import graph, lower
from morphware.compiler.errors import CompileError
from morphware.compiler.program import Program
from morphware.systolic.params import ArrayParams


def _state(model: Any) -> dict[str, Any]:
    if not hasattr(model, "systolic"):
        model.systolic = {}
    return model.systolic


def input_adapt(onnx_shape: tuple[int, ...], hls_shape: tuple[int, ...], onnx_name: str,
                hls_name: str) -> dict[str, Any] | None:
    """Host op mapping the user's input layout (ONNX, NCHW) onto hls4ml's (channels-last)."""
    if tuple(onnx_shape) == tuple(hls_shape):
        return None
    if len(onnx_shape) == 3 and tuple(hls_shape) == (onnx_shape[1], onnx_shape[2], onnx_shape[0]):
        return {"op": "transpose", "layer": "input", "inputs": [onnx_name], "output": hls_name,
                "attrs": {"perm": [1, 2, 0]}}
    if int(np.prod(onnx_shape)) == int(np.prod(hls_shape)):
        return {"op": "reshape", "layer": "input", "inputs": [onnx_name], "output": hls_name,
                "attrs": {"shape": list(hls_shape)}}
    raise CompileError(f"input: ONNX shape {onnx_shape} cannot be mapped onto hls4ml's {hls_shape}")


class SystolicQuantise(ModelOptimizerPass):
    """Extract the float IR and calibrate activation ranges on the calibration set."""

    def __init__(self) -> None:
        self.name = "systolic_quantise"

    def transform(self, model: Any) -> bool:
        st = _state(model)
        calib = model.config.get_config_value("Calibration")
        if calib is None:
            raise CompileError("the Systolic backend needs calibration data: pass calibration="
                               "<array (N, *input_shape)> to convert_from_onnx_model")
        g = graph.from_modelgraph(model)
        onnx_shape = model.config.get_config_value("OnnxInputShape") or g.input_shape
        calib = lower.check_calibration(calib, tuple(onnx_shape))
        adapt = input_adapt(tuple(onnx_shape), g.input_shape, "input", g.input)
        x = calib if adapt is None else _adapt(adapt, calib)
        st.update(graph=g, adapt=adapt, onnx_shape=tuple(onnx_shape),
                  stats=lower.calibrate(g, x), params=ArrayParams.from_dict(
                      model.config.get_config_value("ArrayParams")))
        return True


def _adapt(ins: dict[str, Any], x: np.ndarray) -> np.ndarray:
    from morphware.compiler.hostops import run_host

    return run_host(ins["op"], [x], ins["attrs"], {})


class SystolicLower(ModelOptimizerPass):
    def __init__(self) -> None:
        self.name = "systolic_lower"

    def transform(self, model: Any) -> bool:
        st = _state(model)
        st["instructions"], st["arrays"], st["output"] = lower.lower(
            st["graph"], st["stats"], st["params"], st["adapt"])
        return True


class SystolicTile(ModelOptimizerPass):
    def __init__(self) -> None:
        self.name = "systolic_tile"

    def transform(self, model: Any) -> bool:
        st = _state(model)
        lower.tile(st["instructions"], st["params"])
        return True


class SystolicSchedule(ModelOptimizerPass):
    def __init__(self) -> None:
        self.name = "systolic_schedule"

    def transform(self, model: Any) -> bool:
        st = _state(model)
        lower.schedule(st["instructions"], keep=set(st["output"]))
        return True


class SystolicWrite(ModelOptimizerPass):
    """Assemble the Program (in memory; ``model.write()`` saves it to the output directory)."""

    def __init__(self) -> None:
        self.name = "systolic_write"

    def transform(self, model: Any) -> bool:
        st = _state(model)
        g = st["graph"]
        model.systolic_program = Program(
            params=st["params"], input_name="input" if st["adapt"] else g.input,
            input_shape=st["onnx_shape"], outputs=[(st["output"][0], g.shapes[g.output])],
            instructions=st["instructions"], arrays=st["arrays"],
            meta={"project": model.config.get_project_name(), "stats": st["stats"]},
            circuit=model.config.get_config_value("Circuit") or "ws")
        return True
