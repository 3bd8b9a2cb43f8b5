"""The whole ``fpga`` backend — catalog lookup, bitstream verification, ``PynqIO`` and the
driver — against a stand-in for the ``pynq`` package whose MMIO and DMAs are the RTL in
simulation (``SimIO``). Only pynq's Python API is replaced; every byte goes through the array.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from morphware.bitstreams.catalog import sha256_file
from morphware.runtime.backends.ops_fpga import FpgaBackend
from morphware.runtime.backends.program_common import parse_array
from morphware.runtime.model.evaluation import predict

from tests.support.sim_mmio import SimIO

pytestmark = [pytest.mark.rtl]
ARRAY = "4x4"


class _Buffer(np.ndarray):
    """What ``pynq.allocate`` returns: an ndarray with cache and lifetime methods."""

    def flush(self) -> None:
        pass

    def invalidate(self) -> None:
        pass

    def freebuffer(self) -> None:
        pass


def _fake_pynq(io: SimIO, ip: dict[str, str]) -> types.ModuleType:
    mod = types.ModuleType("pynq")
    mod.__spec__ = importlib.machinery.ModuleSpec("pynq", None)

    class Send:
        def __init__(self, channel: str) -> None:
            self.channel = channel

        def transfer(self, buf: np.ndarray) -> None:
            io.send(self.channel, np.asarray(buf, np.int64), buf.dtype.itemsize * 8)

        def wait(self) -> None:
            pass

    class Recv:
        buf: np.ndarray

        def transfer(self, buf: np.ndarray) -> None:
            self.buf = buf
            io.receive(buf.shape[0], buf.shape[1])

        def wait(self) -> None:
            self.buf[:] = io.collect(timeout_s=60)

    class Overlay:
        def __init__(self, path: str) -> None:
            assert Path(path).is_file()
            setattr(self, ip["array"], types.SimpleNamespace(mmio=io))
            for ch in ("a", "w"):
                setattr(self, ip[f"dma_{ch}"], types.SimpleNamespace(sendchannel=Send(ch)))
            setattr(self, ip["dma_o"], types.SimpleNamespace(recvchannel=Recv()))

    mod.Overlay = Overlay  # type: ignore[attr-defined]
    mod.allocate = lambda shape, dtype: np.zeros(shape, dtype).view(_Buffer)  # type: ignore[attr-defined]
    mod.Device = types.SimpleNamespace(devices=[types.SimpleNamespace(name="sim-pynq")])  # type: ignore[attr-defined]
    return mod


def _overlay(tmp: Path) -> Path:
    p = parse_array(ARRAY)
    files = {}
    for role, ext in (("bitstream", "bit"), ("hwh", "hwh")):
        f = tmp / f"sim.{ext}"
        f.write_bytes(f"simulated {role}".encode())
        files[role] = {"path": f.name, "sha256": sha256_file(f)}
    ip = {"array": "ws_top_0", "dma_a": "axi_dma_a", "dma_w": "axi_dma_w", "dma_o": "axi_dma_o"}
    doc = {"format": 1, "name": "sim-4x4", "board": "sim-board", "part": "none",
           "circuit": "ws_top", "params": p.to_dict(), "clock_mhz": 100, "files": files, "ip": ip}
    (tmp / "sim.json").write_text(json.dumps(doc))
    return tmp


@pytest.fixture()
def fpga(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FpgaBackend]:
    catalog = _overlay(tmp_path)
    monkeypatch.setenv("MORPHWARE_BITSTREAMS", str(catalog))
    monkeypatch.setenv("MORPHWARE_BOARD", "sim-board")
    with SimIO(parse_array(ARRAY), sim="icarus") as io:
        ip = json.loads((catalog / "sim.json").read_text())["ip"]
        monkeypatch.setitem(sys.modules, "pynq", _fake_pynq(io, ip))
        backend = FpgaBackend().with_array(ARRAY)
        assert isinstance(backend, FpgaBackend)
        yield backend


def test_fpga_backend_matches_golden(fpga: FpgaBackend, trained_digits, digits_data) -> None:  # type: ignore[no-untyped-def]
    ok, why = fpga.available()
    assert ok, why
    from morphware.runtime.model.safe_io import load_onnx

    x = np.load(digits_data[1])["x"]
    model = load_onnx(trained_digits[0].onnx_path)
    got = fpga.predict(model, x[:2], calib=x[:256])
    want, _ = predict(trained_digits[0].onnx_path, x[:2], backend="golden", calib=x[:256],
                      array=ARRAY)
    np.testing.assert_array_equal(got, want)


def test_tampered_bitstream_makes_fpga_unusable(fpga: FpgaBackend, tmp_path: Path) -> None:
    (tmp_path / "sim.bit").write_bytes(b"tampered")
    ok, why = fpga.available()
    assert not ok and "sha256" in why


