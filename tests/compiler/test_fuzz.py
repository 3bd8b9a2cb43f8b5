"""Mutated ONNX files: every one ends in a CompileError or a Program that runs, within a bound.

Mutations of an exported LeNet (truncation, bit flips, structural edits of nodes, attributes,
shapes, initializers and opsets). The default run takes a few dozen cases; ``slow`` runs more.
"""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from compiler_testlib import SMALL, sample_inputs
from morphware.compiler import CompileError, compile_model, execute
from morphware.compiler.frontend import export_torch

from tests.support import zoo

BOUND_S = 30.0   # per compile; the front end's own bound is prepare.TIMEOUT_S (60 s)
OPS = ["Conv", "Relu", "MaxPool", "Gemm", "Flatten", "Reshape", "Concat", "Add", "Softmax",
       "Transpose", "AveragePool", "BatchNormalization", "Tile", "Pad", "Split", "NotAnOp", ""]


@pytest.fixture(scope="module")
def base() -> bytes:
    module, x = zoo.build("lenet")
    return export_torch(module, x).SerializeToString()


def _bytes_mutation(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    if kind == "truncate":
        return data[:int(rng.integers(0, len(data)))]
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(0, len(buf)))
        buf[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(buf)


def _structural(data: bytes, rng: np.random.Generator) -> bytes:
    m = onnx.load_from_string(data)
    g = m.graph
    nodes = list(g.node)
    n = nodes[int(rng.integers(0, len(nodes)))]
    what = int(rng.integers(0, 8))
    if what == 0:
        n.op_type = OPS[int(rng.integers(0, len(OPS)))]
    elif what == 1:
        g.node.remove(n)
    elif what == 2:
        order = rng.permutation(len(nodes))
        del g.node[:]
        g.node.extend(nodes[i] for i in order)
    elif what == 3 and n.attribute:
        a = n.attribute[int(rng.integers(0, len(n.attribute)))]
        big = int(rng.choice([-3, 0, 7, 1 << 20]))
        if a.type == onnx.AttributeProto.INT:
            a.i = big
        elif a.type == onnx.AttributeProto.INTS and a.ints:
            a.ints[int(rng.integers(0, len(a.ints)))] = big
    elif what == 4:
        dims = g.input[0].type.tensor_type.shape.dim
        dims[int(rng.integers(0, len(dims)))].dim_value = int(rng.choice([0, 3, 1 << 30]))
    elif what == 5 and g.initializer:
        t = g.initializer[int(rng.integers(0, len(g.initializer)))]
        if t.dims:
            t.dims[0] = int(rng.choice([1, t.dims[0] + 1, 1 << 16]))
    elif what == 6 and n.input:
        names = [o for x in nodes for o in x.output] + ["missing"]
        n.input[int(rng.integers(0, len(n.input)))] = names[int(rng.integers(0, len(names)))]
    else:
        m.opset_import[0].version = int(rng.integers(1, 30))
    return m.SerializeToString()


def mutate(data: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    kind = ("truncate", "flip", "structure")[seed % 3]
    if kind == "structure":
        return _structural(data, rng)
    return _bytes_mutation(data, rng, kind)


def _check(data: bytes) -> str:
    calib = sample_inputs((1, 8, 8), 8, seed=0)
    t0 = time.perf_counter()
    try:
        program, _ = compile_model(data, SMALL, calib, timeout_s=BOUND_S)
    except CompileError as e:
        assert str(e)
        outcome = "refused"
    else:
        y = execute(program, calib[:2])
        assert y.shape[0] == 2
        outcome = "compiled"
    assert time.perf_counter() - t0 < 2 * BOUND_S
    return outcome


@pytest.mark.parametrize("seed", range(30))
def test_mutated_onnx_is_refused_cleanly_or_compiles(base: bytes, seed: int) -> None:
    _check(mutate(base, seed))


@pytest.mark.slow
def test_many_mutations(base: bytes) -> None:
    outcomes = [_check(mutate(base, seed)) for seed in range(30, 330)]
    assert "refused" in outcomes
