"""The FPGA driver over LiteX's host link into LiteX's Verilator simulation of the board SoC.

``SimBoard`` runs the very SoC ``morphware bitstream build`` places on an ECP5 (``ArraySoC``:
UART bridge, stream FIFOs, ``ws_top``) with its UART on a TCP socket and LiteX's own
``RemoteServer`` on it; ``LitexIO`` talks to that server with LiteX's ``RemoteClient``. So every
GEMM here crosses the bridge protocol, the SoC's bus and FIFOs, and the RTL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from morphware.runtime.backends.fpga_driver import DriverError, FpgaDriver
from morphware.systolic import golden
from morphware.systolic.commands import GemmCall
from morphware.systolic.cycle_model import gemm_cycles
from morphware.systolic.params import ArrayParams

pytest.importorskip("litex")
from morphware.bitstreams.sim import SimBoard  # noqa: E402
from morphware.runtime.backends.litex_io import LitexIO  # noqa: E402

pytestmark = [pytest.mark.rtl, pytest.mark.integration]

P = ArrayParams(rows=2, cols=2, data_bits=8)  # acc_depth 256, as `--array 2x2` compiles


class Recording:
    """A GEMM backend that keeps every call and result it passes through."""

    def __init__(self, inner: FpgaDriver):
        self.inner = inner
        self.log: list[tuple[Any, Any]] = []

    def gemm(self, calls: list[Any]) -> list[Any]:
        results = self.inner.gemm(calls)
        self.log.extend(zip(calls, results, strict=True))
        return results


@pytest.fixture(scope="module")
def board() -> Iterator[SimBoard]:
    with SimBoard(P) as b:
        yield b


@pytest.fixture()
def io(board: SimBoard) -> Iterator[LitexIO]:
    link = LitexIO.connect(P, port=board.port)
    yield link
    link.close()


def _check(log: list[tuple[Any, Any]], p: ArrayParams) -> None:
    assert log
    for c, r in log:
        want = golden.gemm(c.a, c.w, c.bias, c.mult, c.shift, p, relu=c.relu, raw=c.raw)
        np.testing.assert_array_equal(r.out, want)
        assert r.cycles == gemm_cycles(c.a.shape[0], c.a.shape[1], c.w.shape[1], p)


def test_digits_gemms_bit_exact_over_bridge(io: LitexIO, digits_onnx: Path,
                                            digits_data: tuple[Path, Path]) -> None:
    from morphware.compiler import compile_model, execute

    x = np.load(digits_data[1])["x"]
    program, _ = compile_model(str(digits_onnx), P, x[:64])
    rec = Recording(FpgaDriver(io, P, timeout_s=120))
    got = execute(program, x[:3], backend=rec)
    np.testing.assert_array_equal(got, execute(program, x[:3], backend="golden"))
    _check(rec.log, P)
    assert io.stats.words_out > 0 and io.stats.words_in > 0


def test_output_fifo_backpressure_counts_stalls(io: LitexIO) -> None:
    """More output than the SoC's FIFO holds: the array waits for the host (STALLS), and
    CYCLES still equals the cycle model."""
    rng = np.random.default_rng(3)
    m, k, n = 16, 6, 80  # 40 N tiles x 16 rows x 2 words = 1280 output words > 512
    c = GemmCall(a=rng.integers(-128, 128, (m, k)), w=rng.integers(-128, 128, (k, n)),
                 bias=rng.integers(-99, 99, n), mult=rng.integers(1, 1 << 16, n),
                 shift=rng.integers(10, 20, n), relu=True, raw=False)
    r = FpgaDriver(io, P, timeout_s=120).gemm([c])[0]
    _check([(c, r)], P)
    assert r.stall_cycles > 0


def test_wrong_shape_refused(board: SimBoard) -> None:
    with pytest.raises(DriverError, match="bus words per beat"):
        LitexIO.connect(ArrayParams(rows=4, cols=4), port=board.port)
    io = LitexIO.connect(P, port=board.port)
    try:
        with pytest.raises(DriverError, match="accumulator rows"):
            FpgaDriver(io, ArrayParams(rows=2, cols=2, acc_depth=512))
    finally:
        io.close()


def test_fpga_backend_takes_litex_transport_from_manifest(
        board: SimBoard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        digits_onnx: Path, digits_data: tuple[Path, Path]) -> None:
    """An overlay whose manifest says transport=litex makes the fpga backend use LitexIO."""
    from morphware.bitstreams import link
    from morphware.bitstreams.catalog import sha256_file
    from morphware.runtime.backends.ops_fpga import FpgaBackend
    from morphware.runtime.model.evaluation import predict
    from morphware.runtime.model.safe_io import load_onnx

    bit = tmp_path / "sim.bit"
    bit.write_bytes(b"the simulated board needs no bitstream")
    doc = {"format": 1, "name": "sim-2x2", "board": "sim-ecp5", "part": "none",
           "circuit": "ws_top", "params": P.to_dict(), "clock_mhz": 25, "transport": "litex",
           "files": {"bitstream": {"path": bit.name, "sha256": sha256_file(bit)}},
           "link": {"base": link.ARRAY_ORIGIN, "uart_baud": 115200, "etherbone": None}}
    (tmp_path / "sim.json").write_text(json.dumps(doc))
    monkeypatch.setenv("MORPHWARE_BITSTREAMS", str(tmp_path))
    monkeypatch.setenv("MORPHWARE_BOARD", "sim-ecp5")
    monkeypatch.setenv("MORPHWARE_LITEX_SERVER", f"127.0.0.1:{board.port}")
    fpga = FpgaBackend().with_array("2x2")
    assert isinstance(fpga, FpgaBackend)
    ok, why = fpga.available()
    assert ok and "sim-2x2" in why, why
    x = np.load(digits_data[1])["x"]
    got = fpga.predict(load_onnx(digits_onnx), x[:2], calib=x[:64])
    want, _ = predict(digits_onnx, x[:2], backend="golden", calib=x[:64], array="2x2")
    np.testing.assert_array_equal(got, want)
    fpga._driver.close()
    monkeypatch.setenv("MORPHWARE_LITEX_SERVER", "127.0.0.1:1")
    ok, why = FpgaBackend().with_array("2x2").available()
    assert not ok and "litex_server" in why


@pytest.mark.slow
def test_trained_digits_on_shipped_shape(trained_digits, digits_data) -> None:  # type: ignore[no-untyped-def]
    """The shipped ECP5 shape (4x4 int8): the trained digits MLP through the bridge."""
    from morphware.compiler import compile_model, execute

    p = ArrayParams(rows=4, cols=4, data_bits=8)
    x = np.load(digits_data[1])["x"]
    program, _ = compile_model(str(trained_digits[0].onnx_path), p, x[:128])
    with SimBoard(p, start_timeout_s=120) as b:
        io = LitexIO.connect(p, port=b.port)
        rec = Recording(FpgaDriver(io, p, timeout_s=300))
        got = execute(program, x[:8], backend=rec)
        io.close()
    np.testing.assert_array_equal(got, execute(program, x[:8], backend="golden"))
    _check(rec.log, p)
