"""Executors of a Program. Host ops run here in numpy; GEMM commands go to a *GEMM backend*: any
object with ``gemm(calls: list[GemmCall]) -> list[GemmResult]``. Three exist: the golden model
(:class:`GoldenBackend`), the RTL simulation (:class:`RtlBackend`) and the runtime's FPGA driver.
Because only the backend differs, all executors agree bit for bit exactly when their GEMMs do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from morphware.compiler import hostops
from morphware.compiler.lower import m_chunks
from morphware.compiler.program import Program
from morphware.systolic.circuit import get_circuit
from morphware.systolic.commands import GemmCall, GemmResult
from morphware.systolic.params import ArrayParams

__all__ = ["GemmCall", "GemmResult", "GemmBackend", "GoldenBackend", "RtlBackend", "Execution"]


class GemmBackend(Protocol):
    def gemm(self, calls: list[GemmCall]) -> list[Any]: ...


class GoldenBackend:
    """The bit-exact specification (the circuit's golden model); cycles from its cycle model."""

    def __init__(self, p: ArrayParams, circuit: str = "ws") -> None:
        self.p = p
        self.circuit = get_circuit(circuit)

    def gemm(self, calls: list[GemmCall]) -> list[GemmResult]:
        out = []
        for c in calls:
            y = self.circuit.golden_gemm(c.a, c.w, c.bias, c.mult, c.shift, self.p,
                                         relu=c.relu, raw=c.raw)
            m, k = c.a.shape
            out.append(GemmResult(y, int(self.circuit.cycles(m, k, c.w.shape[1], self.p)), 0))
        return out


class RtlBackend:
    """The array's RTL in simulation: one simulator invocation per batch of commands."""

    def __init__(self, p: ArrayParams, sim: str = "verilator", circuit: str = "ws") -> None:
        self.p = p
        self.sim = sim
        self.circuit = get_circuit(circuit)

    def gemm(self, calls: list[GemmCall]) -> list[Any]:
        from morphware.systolic.sim import run_gemms

        return run_gemms(self.p, list(calls), sim=self.sim, circuit=self.circuit)


@dataclass
class Execution:
    """Result of running a Program: the output and, per GEMM layer, the cycles the backend took."""

    output: np.ndarray
    cycles: dict[str, int] = field(default_factory=dict)
    outputs: list[np.ndarray] = field(default_factory=list)
    stall_cycles: dict[str, int] = field(default_factory=dict)

    @property
    def total_cycles(self) -> int:
        return sum(self.cycles.values())


def make_backend(backend: str | GemmBackend, p: ArrayParams, circuit: str = "ws") -> GemmBackend:
    if not isinstance(backend, str):
        if not callable(getattr(backend, "gemm", None)):
            raise TypeError("backend must be 'golden', 'rtl', 'rtl-icarus' or have gemm(calls)")
        return backend
    if backend == "golden":
        return GoldenBackend(p, circuit)
    if backend in ("rtl", "rtl-verilator"):
        return RtlBackend(p, "verilator", circuit)
    if backend == "rtl-icarus":
        return RtlBackend(p, "icarus", circuit)
    raise ValueError(f"unknown backend {backend!r}: use golden, rtl, rtl-icarus or an object")


def _batch(program: Program, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    shape = tuple(program.input_shape)
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape:
        raise ValueError(f"input {program.input_name!r}: shape {x.shape} does not match the "
                         f"program's per-sample shape {shape} (with a leading batch axis)")
    return x


def gemm_operands(ins: dict[str, Any], a_in: np.ndarray) -> list[np.ndarray]:
    """The A matrix of each group of a GEMM instruction: the input rows (dense) or im2col
    patches (conv2d) of the group's input channels."""
    g = int(ins.get("groups", 1))
    cg = a_in.shape[-1] // g
    out = []
    for j in range(g):
        x = a_in[..., j * cg:(j + 1) * cg] if g > 1 else a_in
        if ins["kind"] == "conv2d":
            c = ins["conv"]
            out.append(hostops.im2col(x, c["kh"], c["kw"], c["sh"], c["sw"], tuple(c["pads"]),
                                      c.get("dh", 1), c.get("dw", 1)))
        else:
            out.append(x.reshape(-1, x.shape[-1]))
    return out


def _run_gemm(program: Program, ins: dict[str, Any], a_in: np.ndarray, backend: GemmBackend,
              ex: Execution) -> np.ndarray:
    p = program.params
    arr = program.arrays
    n_batch = a_in.shape[0]
    g = int(ins.get("groups", 1))
    w = arr[ins["w_key"]].astype(np.int64)
    consts = [arr[ins[k]].astype(np.int64) for k in ("bias_key", "mult_key", "shift_key")]
    ng = w.shape[1] // g
    calls = []
    for j, a in enumerate(gemm_operands(ins, a_in)):
        cols = slice(j * ng, (j + 1) * ng)
        calls += [GemmCall(a[s:s + m], w[:, cols], *(c[cols] for c in consts), relu=ins["relu"],
                           raw=ins["raw"]) for s, m in m_chunks(a.shape[0], p.acc_depth)]
    results = backend.gemm(calls)
    ex.cycles[ins["layer"]] = ex.cycles.get(ins["layer"], 0) + sum(int(r.cycles) for r in results)
    ex.stall_cycles[ins["layer"]] = ex.stall_cycles.get(ins["layer"], 0) + sum(
        int(getattr(r, "stall_cycles", 0)) for r in results)
    per_group = len(calls) // g
    ys = [np.concatenate([np.asarray(r.out, np.int64) for r in results[j * per_group:
                                                                         (j + 1) * per_group]])
          for j in range(g)]
    y = np.concatenate(ys, axis=1) if g > 1 else ys[0]
    return y.reshape(n_batch, *ins["out_shape"])


def run(program: Program, x: np.ndarray, backend: str | GemmBackend = "golden") -> Execution:
    """Execute ``program`` on a batch ``x`` (``(N, *program.input_shape)`` or one sample)."""
    be = make_backend(backend, program.params, program.circuit)
    p = program.params
    ex = Execution(np.empty(0))
    env: dict[str, np.ndarray] = {program.input_name: _batch(program, x)}
    for ins in program.instructions:
        xs = [env[t] for t in ins["inputs"]]
        op = ins["op"]
        if op == "gemm":
            y = _run_gemm(program, ins, xs[0], be, ex)
        elif op == "quantize":
            y = hostops.quantize(xs[0], ins["scale"], p.qmin, p.qmax)
        elif op == "dequantize":
            y = hostops.dequantize(xs[0], program.arrays[ins["scale_key"]])
        else:
            arrays = {k[:-4]: program.arrays[v] for k, v in ins.items() if k.endswith("_key")}
            y = hostops.run_host(op, xs, ins.get("attrs", {}), arrays)
        env[ins["output"]] = y
        for t in ins.get("free", []):
            env.pop(t, None)
    ex.outputs = [env[name] for name, _ in program.outputs]
    ex.output = ex.outputs[0]
    return ex


def execute(program: Program, x: np.ndarray,
            backend: str | GemmBackend = "golden") -> np.ndarray | list[np.ndarray]:
    """Run ``program`` and return its (float) output; a list of outputs when it has several."""
    ex = run(program, x, backend)
    return ex.output if len(ex.outputs) == 1 else ex.outputs
