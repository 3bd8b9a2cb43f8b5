"""The FPGA driver through its simulated register/DMA layer (``SimIO``: the RTL top in cocotb).

Icarus is used: it builds in about a second, and these commands are small.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from morphware.runtime.backends.fpga_driver import DriverError, FpgaDriver
from morphware.systolic import golden, regmap, streams
from morphware.systolic.commands import GemmCall
from morphware.systolic.cycle_model import gemm_cycles, tiles
from morphware.systolic.params import ArrayParams

from tests.support.sim_mmio import SimIO

pytestmark = [pytest.mark.rtl]

P = ArrayParams(rows=4, cols=4, data_bits=8, acc_depth=32)


@pytest.fixture(scope="module")
def io() -> Iterator[SimIO]:
    with SimIO(P, sim="icarus") as sim_io:
        yield sim_io


def _call(rng: np.random.Generator, m: int, k: int, n: int, relu: bool = False,
          raw: bool = False) -> GemmCall:
    return GemmCall(a=rng.integers(-128, 128, (m, k)), w=rng.integers(-128, 128, (k, n)),
                    bias=rng.integers(-5000, 5000, n), mult=rng.integers(1, 1 << 16, n),
                    shift=rng.integers(12, 24, n), relu=relu, raw=raw)


def test_commands_bit_exact_with_cycle_model(io: SimIO) -> None:
    rng = np.random.default_rng(7)
    driver = FpgaDriver(io, P)
    calls = [_call(rng, 1, 3, 2), _call(rng, 6, 9, 7, relu=True), _call(rng, 32, 4, 4),
             _call(rng, 5, 13, 10, raw=True)]
    for c, r in zip(calls, driver.gemm(calls), strict=True):
        want = golden.gemm(c.a, c.w, c.bias, c.mult, c.shift, P, relu=c.relu, raw=c.raw)
        np.testing.assert_array_equal(r.out, want)
        assert r.cycles == gemm_cycles(c.a.shape[0], c.a.shape[1], c.w.shape[1], P)
        assert r.stall_cycles >= 0


def test_identity_mismatch_refused(io: SimIO) -> None:
    with pytest.raises(DriverError, match=r"loaded array is 4x4 int8.*needs 8x8"):
        FpgaDriver(io, ArrayParams(rows=8, cols=8))
    with pytest.raises(DriverError, match="accumulator rows"):
        FpgaDriver(io, ArrayParams(rows=4, cols=4, acc_depth=64))


def test_bad_configuration_sets_error(io: SimIO) -> None:
    driver = FpgaDriver(io, P)
    io.write(regmap.M, P.acc_depth + 1)  # deeper than the accumulator
    io.write(regmap.KTILES, 1)
    io.write(regmap.NTILES, 1)
    io.write(regmap.CTRL, regmap.CTRL_START)
    with pytest.raises(DriverError, match="rejected the command"):
        driver._wait_done()
    # the array stays usable
    c = _call(np.random.default_rng(1), 2, 4, 4)
    r = driver.gemm([c])[0]
    np.testing.assert_array_equal(r.out, golden.gemm(c.a, c.w, c.bias, c.mult, c.shift, P))


def test_output_backpressure_counts_stalls(io: SimIO) -> None:
    """The host arms the output DMA late: the array stalls, CYCLES still equals the model."""
    c = _call(np.random.default_rng(2), 20, 8, 8, relu=True)
    m, k = c.a.shape
    n = c.w.shape[1]
    kt, nt = tiles(k, n, P)
    for reg, v in ((regmap.M, m), (regmap.KTILES, kt), (regmap.NTILES, nt),
                   (regmap.FLAGS, regmap.flags(True, False))):
        io.write(reg, v)
    io.send("w", streams.weight_beats(c.w, c.bias, c.mult, c.shift, P), 32)
    io.send("a", streams.activation_beats(c.a, n, P), P.data_bits)
    io.write(regmap.CTRL, regmap.CTRL_START)
    io.idle_cycles(200)
    io.receive(nt * m, P.cols)
    beats = io.collect(timeout_s=5)
    assert io.read(regmap.STATUS) & regmap.STATUS_DONE
    assert io.read(regmap.STALLS) > 0
    assert io.read(regmap.CYCLES) == gemm_cycles(m, k, n, P)
    want = golden.gemm(c.a, c.w, c.bias, c.mult, c.shift, P, relu=True)
    np.testing.assert_array_equal(streams.output_matrix(beats, m, n, P), want)


def test_compiled_program_through_driver(trained_digits, digits_data) -> None:  # type: ignore[no-untyped-def]
    """A whole compiled Program (the trained digits MLP) on the driver equals the golden run."""
    from morphware.compiler import compile_model, execute

    p = P
    x = np.load(digits_data[1])["x"]
    program, _ = compile_model(str(trained_digits[0].onnx_path), p, x[:128])
    with SimIO(p, sim="icarus") as sim_io:
        fpga = execute(program, x[:2], backend=FpgaDriver(sim_io, p, timeout_s=120))
    np.testing.assert_array_equal(fpga, execute(program, x[:2], backend="golden"))
