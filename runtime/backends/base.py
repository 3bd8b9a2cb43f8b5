"""The execution-backend interface: what every backend (fpga, rtl, golden, cuda, cpu) provides.

A backend says whether it is usable here and why not (``available``), what it can do
(``capabilities``: train? run compiled Programs? which ONNX ops), and runs inference on an ONNX
model (``predict``). Selection (``registry.select_backend``) uses capabilities and ``priority``:
a higher priority means faster for inference. ``profile`` measures this machine's throughput on a
fixed reference model and caches it on disk; the worker prices its bids with it.
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import onnx

REFERENCE_LAYERS = (64, 64, 64, 10)  # the digits MLP: the reference for hardware profiles


class BackendError(RuntimeError):
    """A backend cannot run the requested work (unusable here, or an op it does not support)."""


@dataclass(frozen=True)
class Capabilities:
    """``train``: can run the training loop (torch backends in float; Program backends with
    every GEMM on the array). ``programs``: runs compiled, quantised Programs (results are
    integer-exact, not float). ``ops``: the ONNX op types it can evaluate, host-partitioned ops
    included; ``train_ops``: those it can train."""

    train: bool
    programs: bool
    ops: frozenset[str]
    train_ops: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HardwareProfile:
    """Measured inference throughput of one backend on the reference MLP."""

    backend: str
    samples_per_s: float
    macs_per_s: float
    measured_at: float

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def model_ops(model: onnx.ModelProto) -> set[str]:
    """The op types a model's graph uses."""
    return {n.op_type for n in model.graph.node}


def cache_dir() -> Path:
    """Where profiles are cached: ``$MORPHWARE_CACHE`` or ``~/.cache/morphware``."""
    return Path(os.environ.get("MORPHWARE_CACHE", Path.home() / ".cache" / "morphware"))


def reference_model(seed: int = 0) -> onnx.ModelProto:
    """A Gemm/Relu MLP with fixed random weights, built without torch (every backend runs it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i, (n_in, n_out) in enumerate(zip(REFERENCE_LAYERS, REFERENCE_LAYERS[1:], strict=False)):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"h{i}" if i < len(REFERENCE_LAYERS) - 2 else "y"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out + ("_pre" if
                                      out != "y" else "")], transB=1))
        if out != "y":
            nodes.append(helper.make_node("Relu", [out + "_pre"], [out]))
        prev = out
    graph = helper.make_graph(
        nodes, "reference_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", REFERENCE_LAYERS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", REFERENCE_LAYERS[-1]])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def reference_macs() -> int:
    return sum(a * b for a, b in zip(REFERENCE_LAYERS, REFERENCE_LAYERS[1:], strict=False))


class Backend(ABC):
    """One way of executing models. Subclasses set ``name``, ``priority`` and ``description``."""

    name: ClassVar[str]
    priority: ClassVar[int]  # higher = faster for inference; selection prefers it
    description: ClassVar[str]
    profile_batch: ClassVar[int] = 256  # reference-run batch size (small for simulators)

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(usable here, reason): the reason says what is missing, or what was found."""

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this backend can do."""

    @abstractmethod
    def predict(self, model: onnx.ModelProto, x: np.ndarray,
                calib: np.ndarray | None = None) -> np.ndarray:
        """Float outputs of the model's first output for inputs ``x`` (batch first).
        Program backends compile first, calibrating activations on ``calib`` (default: ``x``)."""

    def with_array(self, array: str) -> Backend:
        """This backend targeting an array shape such as "8x8" (Program backends); backends
        that do not run Programs ignore the shape and return themselves."""
        return self

    def torch_device(self) -> str:
        """The torch device of a training backend."""
        raise BackendError(f"backend {self.name!r} does not train")

    def training_module(self, model: onnx.ModelProto, bits: int | None = None) -> Any:
        """The trainable torch module of ``model`` on this backend (``bits``: the operand width
        of array backends; float backends refuse it)."""
        raise BackendError(f"backend {self.name!r} does not train")

    def array_clock_hz(self) -> float:
        """The clock of the array this backend trains on (0: not an array)."""
        return 0.0

    def supports(self, model: onnx.ModelProto) -> tuple[bool, str]:
        """Whether every op of ``model`` can run here; the reason names the missing ops."""
        missing = sorted(model_ops(model) - self.capabilities().ops)
        if missing:
            return False, f"{self.name} cannot run op(s) {', '.join(missing)}"
        return True, "all ops supported"

    def require(self, model: onnx.ModelProto | None = None) -> None:
        """Raise BackendError unless this backend is usable (and supports ``model``)."""
        ok, why = self.available()
        if not ok:
            raise BackendError(f"backend {self.name!r} is not usable here: {why}")
        if model is not None:
            ok, why = self.supports(model)
            if not ok:
                raise BackendError(why)

    def profile(self, refresh: bool = False, min_seconds: float = 0.3) -> HardwareProfile:
        """Throughput on the reference MLP, measured once and cached in ``cache_dir()``."""
        path = cache_dir() / f"profile-{self.name}.json"
        if not refresh and path.is_file():
            try:
                return HardwareProfile(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                pass  # a damaged cache is re-measured
        self.require()
        model = reference_model()
        x = np.random.default_rng(1).random((self.profile_batch, REFERENCE_LAYERS[0]),
                                            dtype=np.float32)
        self.predict(model, x)  # warm-up: compilation, kernel caches
        n, t0 = 0, time.perf_counter()
        while True:
            self.predict(model, x)
            n += len(x)
            dt = time.perf_counter() - t0
            if dt >= min_seconds:
                break
        sps = n / dt
        prof = HardwareProfile(self.name, sps, sps * reference_macs(), time.time())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(prof.to_dict()))
        return prof
