"""Compiling the zoo: agreement with float, Program round trip, M splitting, int16, reports."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from compiler_testlib import SMALL, sample_inputs
from morphware.compiler import (
    Program,
    ProgramFormatError,
    compile_model,
    execute,
    program_cycles,
    run,
)
from morphware.compiler.cost import report as cost_report
from morphware.compiler.program import FORMAT_VERSION

from tests.support import zoo

MODELS = list(zoo.ZOO)


def _float(module, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", MODELS)
def test_int8_output_tracks_float(compiled, name: str) -> None:
    module, program, _ = compiled[name]
    x = sample_inputs(program.input_shape, 16, seed=2)
    ref = _float(module, x)
    y = execute(program, x)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < 0.05 * np.abs(ref).max()


@pytest.mark.parametrize("name", MODELS)
def test_report_and_cost_model(compiled, name: str) -> None:
    _, program, rep = compiled[name]
    rows = rep["layers"]
    assert [r["layer"] for r in rows if r["where"] == "array"] == [g["layer"] for g in program.gemms]
    assert all(r["cycles"] > 0 and 0 < r["utilization"] <= 1 for r in rows if r["where"] == "array")
    assert rep["total"]["cycles"] == program_cycles(program, 1)
    ex = run(program, sample_inputs(program.input_shape, 3, seed=3))
    assert ex.total_cycles == program_cycles(program, 3)


def test_residual_add_runs_on_host(compiled) -> None:
    _, program, rep = compiled["residual"]
    where = {r["op"]: r["where"] for r in rep["layers"]}
    assert where["add"] == "host" and where["conv2d+relu"] == "array"


def test_batchnorm_is_folded(compiled) -> None:
    _, program, _ = compiled["cnn_bn"]
    ops = {i["op"] for i in program.instructions}
    assert "affine" not in ops and len(program.gemms) == 3


def test_save_load_round_trip_is_bit_exact(compiled, tmp_path) -> None:
    _, program, _ = compiled["lenet"]
    path = program.save(tmp_path / "p.mwp")
    again = Program.load(path)
    x = sample_inputs(program.input_shape, 4, seed=4)
    assert np.array_equal(execute(program, x), execute(again, x))
    assert again.params == program.params


def test_other_format_version_is_refused(compiled, tmp_path) -> None:
    _, program, _ = compiled["mlp"]
    head = program.header()
    head["version"] = FORMAT_VERSION + 1
    with pytest.raises(ProgramFormatError, match="format version"):
        Program.from_header(head, program.arrays)
    (tmp_path / "junk.mwp").write_bytes(b"not a zip")
    with pytest.raises(ProgramFormatError, match="not a readable Program"):
        Program.load(tmp_path / "junk.mwp")


def test_m_split_by_accumulator_depth_is_exact(compiled) -> None:
    """A conv with M = 64 rows per sample splits into several commands; results do not change."""
    _, program, _ = compiled["lenet"]
    shallow = dataclasses.replace(program, params=dataclasses.replace(program.params, acc_depth=16))
    x = sample_inputs(program.input_shape, 3, seed=5)
    assert np.array_equal(execute(program, x), execute(shallow, x))
    assert program_cycles(shallow, 3) > 0


def test_int16_is_closer_to_float_than_int8() -> None:
    module, x0 = zoo.build("lenet", seed=3)
    calib = sample_inputs(tuple(x0.shape[1:]), 64, seed=6)
    x = calib[:16]  # inside the calibrated ranges: precision, not saturation, decides the error
    ref = _float(module, x)
    err = {}
    for bits in (8, 16):
        program, _ = compile_model(module, SMALL, calib, bits=bits)
        assert program.params.data_bits == bits
        err[bits] = np.abs(execute(program, x) - ref).max()
    assert err[16] < err[8] / 10


def test_single_sample_without_batch_axis(compiled) -> None:
    _, program, _ = compiled["mlp"]
    x = sample_inputs(program.input_shape, 1, seed=8)
    assert np.array_equal(execute(program, x[0]), execute(program, x))
    with pytest.raises(ValueError, match="does not match"):
        execute(program, np.zeros((2, 63), np.float32))


def test_multichannel_input_and_float_host_tail() -> None:
    """A 3-channel NCHW input (transposed on the host) and a sigmoid after the raw last layer."""
    import torch

    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(36, 3), nn.Sigmoid()).eval()
    x = sample_inputs((3, 8, 8), 32, seed=9)
    program, rep = compile_model(module, SMALL, x)
    ops = [i["op"] for i in program.instructions]
    assert ops[0] == "transpose" and ops[-1] == "sigmoid"
    assert np.abs(execute(program, x[:8]) - _float(module, x[:8])).max() < 0.01


def test_average_pool_and_grouped_conv_track_float() -> None:
    import torch

    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AvgPool2d(2, ceil_mode=True),
                           nn.Conv2d(8, 8, 3, groups=4, padding=1, dilation=1), nn.ReLU(),
                           nn.Conv2d(8, 8, 3, groups=8, padding=2, dilation=2), nn.Flatten(),
                           nn.Linear(72, 4)).eval()
    x = sample_inputs((3, 8, 8), 32, seed=0)
    program, rep = compile_model(module, SMALL, x)
    assert {r["op"] for r in rep["layers"]} >= {"avgpool", "conv2d+relu[g=4:groups]"}
    assert np.abs(execute(program, x[:8]) - _float(module, x[:8])).max() < 0.05 * np.abs(
        _float(module, x[:8])).max()


def test_any_object_with_gemm_is_a_backend(compiled) -> None:
    """The runtime's FPGA driver plugs in like this: an object with gemm(calls) -> results."""
    from morphware.compiler import GoldenBackend

    _, program, _ = compiled["cnn_bn"]

    class Counting:
        def __init__(self) -> None:
            self.inner = GoldenBackend(program.params)
            self.commands = 0

        def gemm(self, calls):
            self.commands += len(calls)
            return self.inner.gemm(calls)

    be = Counting()
    x = sample_inputs(program.input_shape, 2, seed=10)
    assert np.array_equal(execute(program, x, be), execute(program, x))
    assert be.commands == sum(r["commands"] for r in cost_report(program, 2)["layers"])
    with pytest.raises(TypeError, match="gemm"):
        execute(program, x, backend=object())


def _branchy_models():
    import torch

    nn = torch.nn

    class ConvCat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(2, 4, 3, padding=1)
            self.d = nn.Conv2d(2, 4, 1)
            self.head = nn.Linear(8 * 8 * 8, 5)

        def forward(self, x):
            y = torch.cat([self.c(x), self.d(x)], dim=1)
            return self.head(torch.flatten(nn.functional.elu(y), 1))

    class DenseCat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.head = nn.Linear(16, 8), nn.Linear(16, 8), nn.Linear(16, 3)

        def forward(self, x):
            y = torch.cat([self.a(x), nn.functional.elu(self.b(x))], dim=1)
            return self.head(nn.functional.softplus(y))

    torch.manual_seed(0)
    return [(ConvCat().eval(), (2, 8, 8)), (DenseCat().eval(), (16,))]


@pytest.mark.parametrize("index", [0, 1])
def test_concat_and_float_activations_on_host(index: int) -> None:
    module, shape = _branchy_models()[index]
    x = sample_inputs(shape, 32, seed=12)
    program, _ = compile_model(module, SMALL, x)
    ops = {i["op"] for i in program.instructions}
    assert {"concat", "elu"} <= ops
    assert np.abs(execute(program, x[:8]) - _float(module, x[:8])).max() < 0.02
