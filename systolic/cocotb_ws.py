"""cocotb test module run inside the simulator by ``sim.run_gemms`` (not collected by pytest).

It reads ``job.npz`` from the working directory, runs every command through ``ws_harness`` (AXI4-Lite
from Python, streams from hex files inside the HDL), and writes ``results.npz``. The AXI4-Lite
driver (``cocotb_axi``) and the output monitor here are the only Python that touches the simulation
per cycle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from morphware.systolic import regmap, streams
from morphware.systolic.cocotb_axi import AxiLite
from morphware.systolic.cycle_model import gemm_cycles, tiles
from morphware.systolic.params import ArrayParams


async def reset(dut: Any) -> None:
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    dut.aresetn.value = 1
    await RisingEdge(dut.aclk)


async def load_streams(dut: Any, a: np.ndarray, w: np.ndarray, bias: np.ndarray,
                       mult: np.ndarray, shift: np.ndarray, p: ArrayParams) -> None:
    """Write the command's beats where the harness reads them, and let it (re)open the files."""
    a_lines = streams.to_hex_lines(streams.activation_beats(a, w.shape[1], p), p.data_bits)
    w_lines = streams.to_hex_lines(streams.weight_beats(w, bias, mult, shift, p), 32)
    Path("a.hex").write_text("\n".join(a_lines) + "\n")
    Path("w.hex").write_text("\n".join(w_lines) + "\n")
    dut.load.value = 1
    await RisingEdge(dut.aclk)
    dut.load.value = 0
    await RisingEdge(dut.aclk)


async def configure_and_start(bus: AxiLite, m: int, k: int, n: int, flags: int,
                              p: ArrayParams) -> None:
    kt, nt = tiles(k, n, p)
    await bus.write(regmap.M, m)
    await bus.write(regmap.KTILES, kt)
    await bus.write(regmap.NTILES, nt)
    await bus.write(regmap.FLAGS, flags)
    await bus.write(regmap.CTRL, regmap.CTRL_START)


def read_outputs(m: int, n: int, p: ArrayParams) -> np.ndarray:
    """The monitor: o.hex lines are 'tlast hexdata'; check tlast sits on the last beat only."""
    lines = [ln.split() for ln in Path("o.hex").read_text().splitlines() if ln.strip()]
    lasts = [int(x[0]) for x in lines]
    if not lasts or lasts[-1] != 1 or any(lasts[:-1]):
        raise AssertionError(f"tlast must mark only the final output beat, got {lasts[-5:]}")
    beats = streams.from_hex_lines([x[1] for x in lines], p.cols)
    return streams.output_matrix(beats, m, n, p)


async def check_bad_configs(bus: AxiLite, p: ArrayParams) -> None:
    """START with M = 0, M > acc_depth or zero tiles must raise ERROR and leave the array idle."""
    good = {regmap.M: 1, regmap.KTILES: 1, regmap.NTILES: 1}
    for reg, bad in ((regmap.M, 0), (regmap.M, p.acc_depth + 1), (regmap.KTILES, 0),
                     (regmap.NTILES, 0)):
        for r, v in {**good, reg: bad}.items():
            await bus.write(r, v)
        await bus.write(regmap.CTRL, regmap.CTRL_START)
        status = await bus.read(regmap.STATUS)
        assert status == regmap.STATUS_ERROR, f"bad config {reg:#x}={bad}: STATUS {status:#x}"
    assert await bus.read(regmap.ACC_DEPTH) == p.acc_depth


@cocotb.test()
async def run_batch(dut: Any) -> None:
    job = dict(np.load("job.npz"))
    p = ArrayParams.from_dict({k: int(v) for k, v in zip(
        ("rows", "cols", "data_bits", "acc_bits", "acc_depth"), job["params"], strict=True)})
    gaps = job["gaps"]
    dut.a_gap.value = int(gaps[0])
    dut.w_gap.value = int(gaps[1])
    dut.o_stall.value = int(gaps[2])
    dut.load.value = 0
    bus = AxiLite(dut)
    bus.idle()
    Clock(dut.aclk, 10, unit="ns").start()
    await reset(dut)
    info = regmap.decode_info(await bus.read(regmap.INFO))
    expect = {"rows": p.rows, "cols": p.cols, "data_bits": p.data_bits, "acc_bits": p.acc_bits}
    assert info == expect, f"INFO register {info} != {expect}"
    if int(job.get("check_errors", 0)):
        await check_bad_configs(bus, p)
    outs: dict[str, np.ndarray] = {}
    cycles, stalls, walls = [], [], []
    for i in range(int(job["count"])):
        a, w = job[f"a{i}"], job[f"w{i}"]
        bias, mult, shift = job[f"bias{i}"], job[f"mult{i}"], job[f"shift{i}"]
        flags, interrupt = int(job[f"flags{i}"]), int(job[f"interrupt{i}"])
        m, k, n = a.shape[0], a.shape[1], w.shape[1]
        model = gemm_cycles(m, k, n, p)
        await load_streams(dut, a, w, bias, mult, shift, p)
        if interrupt > 0:  # start, pull reset in the middle of the run, then run it for real
            await configure_and_start(bus, m, k, n, flags, p)
            await ClockCycles(dut.aclk, interrupt)
            await reset(dut)
            await load_streams(dut, a, w, bias, mult, shift, p)
        await configure_and_start(bus, m, k, n, flags, p)
        budget = 40 * model + 2000
        t0 = time.perf_counter()
        await with_timeout(RisingEdge(dut.irq), budget * 10, "ns")
        walls.append(time.perf_counter() - t0)
        status = await bus.read(regmap.STATUS)
        assert status & regmap.STATUS_DONE and not status & regmap.STATUS_ERROR, hex(status)
        cycles.append(await bus.read(regmap.CYCLES))
        stalls.append(await bus.read(regmap.STALLS))
        outs[f"out{i}"] = read_outputs(m, n, p)
    np.savez("results.npz", cycles=np.array(cycles, dtype=np.int64),
             stalls=np.array(stalls, dtype=np.int64), walls=np.array(walls), **outs)
