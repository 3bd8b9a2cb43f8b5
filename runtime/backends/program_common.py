"""What the Program backends (golden, rtl, fpga) share: compile an ONNX model for the array
(calibrating on sample inputs), then run the Program with a backend-specific GEMM engine.

All three run the same Program with the same host code (``morphware.compiler``), so they can
differ only in their GEMMs, and those must agree bit for bit.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from morphware.runtime.backends.base import Backend, BackendError, Capabilities

if TYPE_CHECKING:
    import onnx
    from morphware.systolic.params import ArrayParams

_CACHE_SIZE = 4
# The clock an array backend without a board of its own (golden, rtl) is priced at: the shipped
# PYNQ-Z2 overlay's.
STAND_IN_CLOCK_HZ = 100e6

def program_ops() -> frozenset[str]:
    """The ONNX op types a Program can contain (array or host), per the compiler."""
    from morphware.compiler.ops import supported_ops

    return supported_ops()


def parse_array(spec: str, data_bits: int = 8) -> ArrayParams:
    """"8x8" (rows x cols) -> ArrayParams; anything else is a BackendError."""
    from morphware.systolic.params import ArrayParams

    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", spec)
    if not m:
        raise BackendError(f"array shape must look like 8x8 (rows x cols), got {spec!r}")
    try:
        return ArrayParams(rows=int(m.group(1)), cols=int(m.group(2)), data_bits=data_bits)
    except ValueError as e:
        raise BackendError(f"array shape {spec!r}: {e}") from e


class ProgramBackend(Backend):
    """Runs compiled Programs; subclasses name their executor and may supply a GEMM engine."""

    executor: ClassVar[str]

    def __init__(self, params: ArrayParams | None = None, bits: int = 8):
        from morphware.systolic.params import ArrayParams

        self.params = params or ArrayParams()
        self.bits = bits
        self._programs: OrderedDict[str, Any] = OrderedDict()

    def with_array(self, array: str) -> Backend:
        return type(self)(parse_array(array, self.params.data_bits), self.bits)

    def available(self) -> tuple[bool, str]:
        try:
            from morphware.compiler import compile_model, execute  # noqa: F401
        except ImportError as e:
            return False, f"the compiler (morphware.compiler) is not importable: {e}"
        return True, f"array {self.params.rows}x{self.params.cols}, int{self.bits}"

    def capabilities(self) -> Capabilities:
        from morphware.runtime.model.array_training import train_ops

        return Capabilities(train=True, programs=True, ops=program_ops(), train_ops=train_ops())

    def torch_device(self) -> str:
        return "cpu"  # the host side of array training: loss, element-wise ops, optimizer

    def array_clock_hz(self) -> float:
        return STAND_IN_CLOCK_HZ

    def training_engine(self, params: ArrayParams) -> Any:
        """The GEMM engine array training runs on for ``params`` (golden or RTL executor)."""
        from morphware.compiler.execute import make_backend

        return make_backend(self.gemm_engine(), params)

    def training_module(self, model: onnx.ModelProto, bits: int | None = None) -> Any:
        """``model`` as a torch module whose every GEMM (forward, both gradients) runs on this
        backend's array with ``bits``-bit operands (default: the backend's)."""
        import dataclasses

        from morphware.compiler.training import IntGemm
        from morphware.runtime.model.array_training import array_module

        bits = self.bits if bits is None else bits
        if bits not in (8, 16):
            raise BackendError(f"array training takes --bits 8 or 16, got {bits}")
        params = dataclasses.replace(self.params, data_bits=bits)
        return array_module(model, IntGemm(self.training_engine(params), params), bits)

    def gemm_engine(self) -> Any:
        """What runs the Program's GEMMs: an executor name of ``morphware.compiler.execute``
        ("golden", "rtl") or an object with ``gemm(calls) -> results``."""
        return self.executor

    def compile(self, model: onnx.ModelProto, calib: np.ndarray) -> Any:
        """The Program for ``model`` calibrated on ``calib``; recent ones are cached, so a
        profile or repeated evaluation compiles once."""
        from morphware.compiler import compile_model

        key = hashlib.sha256(model.SerializeToString() + self.params.tag.encode()
                             + np.ascontiguousarray(calib).tobytes()).hexdigest()
        if key in self._programs:
            self._programs.move_to_end(key)
            return self._programs[key]
        program, _report = compile_model(model, self.params, calib, bits=self.bits)
        self._programs[key] = program
        while len(self._programs) > _CACHE_SIZE:
            self._programs.popitem(last=False)
        return program

    def predict(self, model: onnx.ModelProto, x: np.ndarray,
                calib: np.ndarray | None = None) -> np.ndarray:
        from morphware.compiler import execute
        from morphware.runtime.model.safe_io import input_shape, prepare_inputs

        self.require(model)
        shape = input_shape(model)
        x = prepare_inputs(x, shape, "inputs")
        calib = x if calib is None else prepare_inputs(calib, shape, "calibration inputs")
        program = self.compile(model, calib)
        out = execute(program, x, backend=self.gemm_engine())
        return np.asarray(out, dtype=np.float32)
