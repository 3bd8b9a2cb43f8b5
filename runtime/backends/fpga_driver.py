"""The FPGA driver: runs GEMM commands on the systolic array through its register map and DMA.

The driver speaks only to ``ArrayIO``, a register/DMA layer with two implementations:

* ``PynqIO`` — a PYNQ overlay: AXI4-Lite registers through ``pynq.MMIO`` (the overlay's IP) and
  three AXI DMAs (activations, weights+parameters, outputs) with ``pynq.allocate`` buffers;
* ``sim_mmio.SimIO`` — the same RTL top in a cocotb simulation, driven beat by beat, so the whole
  driver (register sequence, stream packing, polling, cycle counters) is tested without a board.

One command follows ``morphware.systolic.regmap``: configure M/KTILES/NTILES/FLAGS, arm the
output DMA, start both input DMAs, write START, poll STATUS until DONE (or ERROR), collect the
output beats, read CYCLES and STALLS.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
from morphware.systolic import regmap, streams
from morphware.systolic.cycle_model import tiles
from morphware.systolic.params import ArrayParams

if TYPE_CHECKING:
    from morphware.bitstreams.catalog import Manifest


class DriverError(RuntimeError):
    """The array reported an error, did not finish in time, or is not the expected circuit."""


class ArrayIO(ABC):
    """Register and DMA access to one array instance."""

    @abstractmethod
    def read(self, offset: int) -> int:
        """One 32-bit AXI4-Lite register read."""

    @abstractmethod
    def write(self, offset: int, value: int) -> None:
        """One 32-bit AXI4-Lite register write."""

    @abstractmethod
    def send(self, channel: str, beats: np.ndarray, lane_bits: int) -> None:
        """Start streaming ``beats`` (beats x lanes, signed lane values) into ``s_axis_<channel>``
        ("a" or "w"); returns without waiting for the transfer to finish."""

    @abstractmethod
    def receive(self, beats: int, lanes: int) -> None:
        """Arm the output stream to accept ``beats`` beats of ``lanes`` 32-bit lanes."""

    @abstractmethod
    def collect(self, timeout_s: float) -> np.ndarray:
        """Wait for all transfers; return the received beats (beats x lanes, int64)."""

    @abstractmethod
    def close(self) -> None:
        """Release the hardware (or stop the simulator)."""


class FpgaDriver:
    """The compiler's GEMM backend for an array behind an ``ArrayIO``: ``gemm(calls)``."""

    def __init__(self, io: ArrayIO, params: ArrayParams, timeout_s: float = 10.0,
                 poll_s: float = 0.0):
        self.io = io
        self.p = params
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.check_identity()

    def check_identity(self) -> None:
        """Refuse to run on a circuit of another shape than the Program was compiled for."""
        info = regmap.decode_info(self.io.read(regmap.INFO))
        depth = self.io.read(regmap.ACC_DEPTH)
        want = {"rows": self.p.rows, "cols": self.p.cols, "data_bits": self.p.data_bits,
                "acc_bits": self.p.acc_bits}
        if info != want:
            raise DriverError(f"the loaded array is {info['rows']}x{info['cols']} "
                              f"int{info['data_bits']} acc{info['acc_bits']}, but the Program "
                              f"needs {self.p.rows}x{self.p.cols} int{self.p.data_bits} "
                              f"acc{self.p.acc_bits}")
        if depth < self.p.acc_depth:
            raise DriverError(f"the loaded array holds {depth} accumulator rows, the Program "
                              f"uses up to {self.p.acc_depth}")

    def gemm(self, calls: list[Any]) -> list[Any]:
        """Run commands in order; each result has ``out``, ``cycles`` and ``stall_cycles``."""
        return [self.run_one(c) for c in calls]

    def run_one(self, c: Any) -> Any:
        from morphware.systolic.commands import GemmResult

        a, w = np.asarray(c.a, np.int64), np.asarray(c.w, np.int64)
        bias, mult, shift = (np.asarray(v, np.int64) for v in (c.bias, c.mult, c.shift))
        streams.check_call(a, w, bias, mult, shift, self.p)
        m, k = a.shape
        n = w.shape[1]
        kt, nt = tiles(k, n, self.p)
        if self.io.read(regmap.STATUS) & regmap.STATUS_BUSY:
            raise DriverError("the array is busy before START; a previous command never ended")
        for reg, value in ((regmap.M, m), (regmap.KTILES, kt), (regmap.NTILES, nt),
                           (regmap.FLAGS, regmap.flags(bool(c.relu), bool(c.raw)))):
            self.io.write(reg, value)
        self.io.receive(nt * m, self.p.cols)
        self.io.send("w", streams.weight_beats(w, bias, mult, shift, self.p), regmap.W_LANE_BITS)
        self.io.send("a", streams.activation_beats(a, n, self.p), self.p.data_bits)
        self.io.write(regmap.CTRL, regmap.CTRL_START)
        self._wait_done()
        beats = self.io.collect(self.timeout_s)
        cycles, stalls = self.io.read(regmap.CYCLES), self.io.read(regmap.STALLS)
        return GemmResult(streams.output_matrix(beats, m, n, self.p), cycles, stalls)

    def _wait_done(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = self.io.read(regmap.STATUS)
            if status & regmap.STATUS_ERROR:
                raise DriverError(f"the array rejected the command (STATUS={status:#x}): "
                                  "M, KTILES or NTILES out of range")
            if status & regmap.STATUS_DONE:
                return
            if time.monotonic() > deadline:
                raise DriverError(f"the array did not finish within {self.timeout_s} s "
                                  f"(STATUS={status:#x})")
            if self.poll_s:
                time.sleep(self.poll_s)

    def close(self) -> None:
        self.io.close()


def lane_dtype(lane_bits: int) -> str:
    return {8: "<i1", 16: "<i2", 32: "<i4"}[lane_bits]


class PynqIO(ArrayIO):
    """A PYNQ overlay. pynq is imported only here: it is absent on most machines."""

    def __init__(self, overlay: Any, ip: dict[str, str]):
        self.overlay = overlay
        self.mmio = getattr(overlay, ip["array"]).mmio
        self.dma = {ch: getattr(overlay, ip[f"dma_{ch}"]) for ch in ("a", "w", "o")}
        self._out: Any = None
        self._buffers: list[Any] = []

    @classmethod
    def load(cls, manifest: Manifest) -> PynqIO:
        """Download the manifest's (verified) bitstream and bind its IP blocks."""
        import pynq

        bit = manifest.file("bitstream")
        manifest.file("hwh")  # verified: pynq reads it from beside the .bit
        return cls(pynq.Overlay(str(bit)), manifest.ip)

    def read(self, offset: int) -> int:
        return int(self.mmio.read(offset))

    def write(self, offset: int, value: int) -> None:
        self.mmio.write(offset, int(value) & 0xFFFFFFFF)

    def send(self, channel: str, beats: np.ndarray, lane_bits: int) -> None:
        import pynq

        data = np.ascontiguousarray(beats.astype(np.int64).astype(lane_dtype(lane_bits)))
        buf = pynq.allocate(shape=data.shape, dtype=data.dtype)
        buf[:] = data
        buf.flush()
        self.dma[channel].sendchannel.transfer(buf)
        self._buffers.append(buf)

    def receive(self, beats: int, lanes: int) -> None:
        import pynq

        self._out = pynq.allocate(shape=(beats, lanes), dtype=np.int32)
        self.dma["o"].recvchannel.transfer(self._out)

    def collect(self, timeout_s: float) -> np.ndarray:
        for ch in ("a", "w"):
            self.dma[ch].sendchannel.wait()
        self.dma["o"].recvchannel.wait()
        self._out.invalidate()
        out = np.array(self._out, dtype=np.int64)
        for b in (*self._buffers, self._out):
            b.freebuffer()
        self._buffers, self._out = [], None
        return out

    def close(self) -> None:
        if hasattr(self.overlay, "free"):
            self.overlay.free()
