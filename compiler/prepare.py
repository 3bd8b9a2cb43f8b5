"""Front-end preparation of an ONNX file, run in a child process with a time and memory bound.

The steps are third-party C++ and Python code fed with untrusted bytes (protobuf parsing, the
ONNX checker, onnx's version converter, shape inference, constant folding with onnx's reference
operators); any of them may loop, exhaust memory or crash the interpreter on a malformed file.
Running them in a child process whose wall time (``timeout_s``) and address space
(``memory_bytes``) are limited turns every such failure into a :class:`CompileError`.

Steps, in order:

1. parse and check the model (``onnx.checker``);
2. upgrade the default-domain opset to :data:`TARGET_OPSET` with onnx's version converter
   (opsets 6 to 21 are accepted);
3. drop initializers from the graph inputs, pin the batch dimension of the real input to 1;
4. fold constants: every node whose inputs are all constant (and ``Shape`` of a tensor whose
   shape is static) is evaluated with onnx's reference implementation, at most
   :data:`MAX_FOLD_ROUNDS` rounds of shape inference + folding;
5. final strict shape inference, so that every remaining tensor has a static shape.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from morphware.compiler.errors import CompileError

TARGET_OPSET = 13        # what the importer's op semantics follow (Softmax on one axis, ...)
MIN_OPSET, MAX_OPSET = 6, 21
MAX_FOLD_ROUNDS = 8
MAX_CONST_ELEMENTS = 1 << 27   # a folded constant larger than this is refused (128 Mi elements)
TIMEOUT_S = 60.0
MEMORY_BYTES = 6 << 30
IR_VERSION = 10          # onnxruntime and the reference runtime accept IR <= 10 everywhere


def prepare(data: bytes, where: str, timeout_s: float = TIMEOUT_S,
            memory_bytes: int = MEMORY_BYTES) -> bytes:
    """Serialized, prepared model (see module doc) or CompileError within ``timeout_s``."""
    return run_bounded(lambda: _prepare(data, where), where,
                       "front-end preparation (check, opset upgrade, constant folding, shape "
                       "inference)", timeout_s, memory_bytes)


def run_bounded(fn: Callable[[], bytes], where: str, what: str, timeout_s: float = TIMEOUT_S,
                memory_bytes: int = MEMORY_BYTES) -> bytes:
    """``fn()`` in a forked child (cheap: the parent's imports are already loaded) whose address
    space may grow by at most ``memory_bytes``; the parent waits at most ``timeout_s`` for its
    answer, then kills it. Any failure of ``fn`` comes back as a CompileError."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, fn, where, memory_bytes), daemon=True)
    child.start()
    send.close()
    try:
        if not recv.poll(timeout_s):
            raise CompileError(f"{where}: {what} did not finish within {timeout_s:g} s")
        try:
            kind, payload = recv.recv()
        except EOFError:
            child.join(5)
            raise CompileError(f"{where}: {what} crashed (exit status {child.exitcode}) on "
                               "this file") from None
    finally:
        recv.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if kind != "ok":
        raise CompileError(payload)
    return payload


def _vm_bytes() -> int:
    """This process's current virtual memory size (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _child(conn: Any, fn: Callable[[], bytes], where: str, memory_bytes: int) -> None:
    """Forked child: run ``fn`` under a memory bound, send ("ok", bytes) or ("error", msg)."""
    import resource

    limit = _vm_bytes() + memory_bytes
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit is already in force
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        out: tuple[str, Any] = ("ok", fn())
    except CompileError as e:
        out = ("error", str(e))
    except MemoryError:
        out = ("error", f"{where}: ran out of the memory bound ({memory_bytes >> 20} MiB)")
    except RecursionError:
        out = ("error", f"{where}: model nesting too deep")
    except Exception as e:  # a third-party step failing in a way it does not document
        out = ("error", f"{where}: failed: {type(e).__name__}: {_first_line(e)}")
    try:
        conn.send(out)
    finally:
        conn.close()
        os._exit(0)


def _prepare(data: bytes, where: str) -> bytes:
    import onnx

    m = _parse(data, where)
    _check(m, where)
    m = _upgrade(m, where)
    _inputs_and_batch(m, where)
    m = _fold(m, where)
    try:
        m = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        raise CompileError(f"{where}: shapes do not infer: {_first_line(e)}") from e
    return m.SerializeToString()


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _parse(data: bytes, where: str) -> Any:
    import onnx

    try:
        m = onnx.load_from_string(data)
    except Exception as e:  # protobuf raises DecodeError/RuntimeWarning variants
        raise CompileError(f"{where}: malformed or truncated ONNX ({type(e).__name__}: "
                           f"{_first_line(e)})") from e
    if not m.graph.node:
        raise CompileError(f"{where}: malformed or truncated ONNX (graph has no nodes)")
    return m


def _check(m: Any, where: str) -> None:
    import onnx

    m.ir_version = min(m.ir_version or IR_VERSION, IR_VERSION)
    try:
        onnx.checker.check_model(m)
    except Exception as e:
        raise CompileError(f"{where}: invalid ONNX model: {_first_line(e)}") from e
    # IR >= 4 semantics from here on: initializers need not be graph inputs (the opset converter
    # adds initializers, and shape inference reads them only under IR >= 4)
    m.ir_version = IR_VERSION


def default_opset(m: Any) -> int:
    """The model's default-domain ("" or "ai.onnx") opset version; 0 when it has none."""
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)


def _upgrade(m: Any, where: str) -> Any:
    import onnx
    from onnx import version_converter

    v = default_opset(m)
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise CompileError(f"{where}: opset {v} is outside the supported range "
                           f"{MIN_OPSET}..{MAX_OPSET}")
    others = [o.domain for o in m.opset_import if o.domain not in ("", "ai.onnx")]
    if others:
        raise CompileError(f"{where}: operator domain(s) {', '.join(others)} are not supported "
                           "(only the default ONNX domain)")
    if v >= TARGET_OPSET:
        return m  # newer opsets keep the op semantics the importer reads (checked per op there)
    if v < 7:
        _prelu_slopes_per_channel(m)
    try:
        up = version_converter.convert_version(m, TARGET_OPSET)
    except Exception as e:
        raise CompileError(f"{where}: onnx's version converter cannot upgrade opset {v} to "
                           f"{TARGET_OPSET}: {_first_line(e)}") from e
    up.ir_version = min(up.ir_version, IR_VERSION)
    try:
        onnx.checker.check_model(up)
    except Exception as e:
        raise CompileError(f"{where}: opset {v} -> {TARGET_OPSET} upgrade gave an invalid "
                           f"model: {_first_line(e)}") from e
    return up


def _prelu_slopes_per_channel(m: Any) -> None:
    """Opset 6 PRelu applies a 1-D slope per channel (axis 1); from opset 7 it broadcasts like
    numpy and onnx's converter does not rewrite it: reshape such slopes to (C, 1, ..., 1)."""
    import onnx
    from onnx import numpy_helper

    ranks = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
    except Exception:
        return  # the later shape inference reports what is wrong
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info):
        if vi.type.tensor_type.HasField("shape"):
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
    inits = {i.name: i for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type != "PRelu" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        slope = numpy_helper.to_array(inits[n.input[1]])
        rank = ranks.get(n.input[0], 0)
        if slope.ndim == 1 and slope.size > 1 and rank > 2:
            new = numpy_helper.from_array(slope.reshape(-1, *([1] * (rank - 2))), n.input[1])
            inits[n.input[1]].CopyFrom(new)
            for vi in m.graph.input:
                if vi.name == n.input[1]:
                    vi.CopyFrom(onnx.helper.make_tensor_value_info(
                        vi.name, new.data_type, list(new.dims)))


def _inputs_and_batch(m: Any, where: str) -> None:
    """Initializers listed as graph inputs are constants; the one real input gets batch 1."""
    inits = {i.name for i in m.graph.initializer}
    kept = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(kept)
    real = list(m.graph.input)  # the copies now in the graph (extend copies messages)
    if len(real) != 1:
        raise CompileError(f"{where}: model has {len(real)} graph inputs (initializers "
                           "excluded); the compiler needs exactly one")
    dims = real[0].type.tensor_type.shape.dim
    if not real[0].type.tensor_type.HasField("shape") or not dims:
        raise CompileError(f"{where}: input {real[0].name!r}: shape is unknown")
    if not dims[0].HasField("dim_value"):
        dims[0].dim_value = 1
    for i, d in enumerate(dims):
        if not d.HasField("dim_value") or d.dim_value < 1:
            raise CompileError(f"{where}: input {real[0].name!r}: dimension {i} is not fixed; "
                               "export the model with a static input shape")
    for o in m.graph.output:  # output shapes are re-inferred from the input
        o.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]


def _fold(m: Any, where: str) -> Any:
    """Constant folding, alternating with shape inference, until nothing changes."""
    import onnx

    for _ in range(MAX_FOLD_ROUNDS):
        try:
            m = onnx.shape_inference.infer_shapes(m, data_prop=True)
        except Exception as e:
            raise CompileError(f"{where}: shapes do not infer: {_first_line(e)}") from e
        if not _fold_round(m, where):
            return m
    return m


def _static_shapes(m: Any) -> dict[str, list[int]]:
    out = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[vi.name] = [d.dim_value for d in t.shape.dim]
    return out


NEVER_FOLD = {"If", "Loop", "Scan", "RandomNormal", "RandomUniform",
              "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


def _fold_round(m: Any, where: str) -> bool:
    """One pass over the nodes in order; returns whether anything was folded."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    consts = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    opsets = {"": default_opset(m)}
    shapes = _static_shapes(m)
    keep, folded = [], False
    graph_outputs = {o.name for o in m.graph.output}
    for n in m.graph.node:
        value: list[Any] | None = None
        if n.op_type == "Shape" and n.input[0] not in consts and n.input[0] in shapes:
            s = np.array(shapes[n.input[0]], np.int64)
            start = next((a.i for a in n.attribute if a.name == "start"), 0)
            end = next((a.i for a in n.attribute if a.name == "end"), len(s))
            value = [s[start:end]]
        elif (n.op_type not in NEVER_FOLD and all(i == "" or i in consts for i in n.input)
              and not any(o in graph_outputs for o in n.output)):
            try:
                value = ReferenceEvaluator(n, opsets=opsets).run(None, {i: consts[i] for i in n.input if i})
            except MemoryError:
                raise
            except Exception as e:
                raise CompileError(f"{where}: node {n.name or '(unnamed)'}: op {n.op_type}: "
                                   f"constant folding failed: {_first_line(e)}") from e
        if value is None:
            keep.append(n)
            continue
        folded = True
        for name, v in zip(n.output, value, strict=False):
            arr = np.asarray(v)
            if arr.size > MAX_CONST_ELEMENTS:
                raise CompileError(f"{where}: node {n.name or '(unnamed)'}: op {n.op_type}: "
                                   f"constant of {arr.size} elements is too large")
            consts[name] = arr
            m.graph.initializer.append(numpy_helper.from_array(arr, name))
    if folded:
        del m.graph.node[:]
        m.graph.node.extend(keep)
        used = {i for n in keep for i in n.input} | graph_outputs
        inits = [i for i in m.graph.initializer if i.name in used]
        del m.graph.initializer[:]
        m.graph.initializer.extend(inits)
    return folded
