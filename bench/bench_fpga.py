"""ECP5 overlays and their host link.

1. Per shipped overlay (``bitstreams/overlays``, transport ``litex``): the build's wall time, the
   achieved Fmax, resources and bitstream size, as recorded in its manifest by the build itself
   (``morphware bitstream build``; placing and routing again here would take many minutes).
2. The host link, measured: the digits MLP's GEMMs through ``FpgaDriver`` -> ``LitexIO`` ->
   LiteX's ``RemoteClient`` -> ``RemoteServer`` -> the UART bridge of the board SoC simulated by
   Verilator (``SimBoard``), bit-exact against the golden model. Bytes/s and GEMMs/s here are the
   simulator's: one bridge byte per simulated cycle, the simulator's speed and loopback TCP.
3. The same job projected onto real links from its counted traffic: UART time = wire bytes x 10
   bits / baud plus one USB round trip per read request (the FTDI driver's latency timer, 1 ms
   when set low, 16 ms by default); Etherbone (1 Gb/s) = frame bytes / 125 MB/s plus one LAN
   round trip (0.2 ms) per read request, and per output word, because litex_server reads UDP
   targets one word at a time. The array's own time (cycles / clock) is added.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.report import Report, Table

ROOT = Path(__file__).resolve().parents[1]
ETH_FRAME_OVERHEAD = 8 + 14 + 20 + 8 + 16 + 4 + 12  # preamble, MAC, IP, UDP, EB headers, FCS, IFG


def _overlay_rows() -> list[dict]:
    from morphware.bitstreams.catalog import OVERLAYS, catalog

    rows = []
    for m in catalog([OVERLAYS]):
        if m.transport != "litex":
            continue
        r = m.resources
        rows.append({
            "overlay": m.name, "board": m.board, "array": f"{m.params.rows}x{m.params.cols}",
            "clock MHz": m.clock_mhz, "Fmax MHz": m.extra.get("fmax_mhz"),
            "LUT4": r.get("TRELLIS_COMB", 0), "FF": r.get("TRELLIS_FF", 0),
            "MULT18": r.get("MULT18X18D", 0), "DP16KD": r.get("DP16KD", 0),
            "bitstream KiB": round(m.extra.get("bitstream_bytes", 0) / 1024, 1),
            "build s": m.extra.get("build", {}).get("seconds"),
            "link": "UART" + ("+Etherbone" if m.link.get("etherbone") else ""),
        })
    return rows


def _digits_program(p, n: int):  # type: ignore[no-untyped-def]
    """The digits example MLP (untrained weights: the GEMM shapes are what matter here)."""
    import importlib.util

    import torch
    from morphware.compiler import compile_model

    spec = importlib.util.spec_from_file_location("digits_model",
                                                  ROOT / "examples" / "digits" / "model.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.build_model(hidden=64)
    x = np.load(ROOT / "examples" / "digits" / "data" / "test.npz")["x"].astype(np.float32)
    program, _ = compile_model(model, p, x[:128], example_input=torch.zeros(1, 64))
    return program, x[:n]


def _measure_link(rows: int, cols: int, batch: int) -> dict:
    from morphware.bitstreams.sim import SimBoard
    from morphware.compiler import execute
    from morphware.compiler.execute import run
    from morphware.runtime.backends.fpga_driver import FpgaDriver
    from morphware.runtime.backends.litex_io import LitexIO
    from morphware.systolic.params import ArrayParams

    p = ArrayParams(rows=rows, cols=cols)
    program, x = _digits_program(p, batch)
    with SimBoard(p, start_timeout_s=300) as board:
        io = LitexIO.connect(p, port=board.port)
        driver = FpgaDriver(io, p, timeout_s=600)
        commands = []

        class Counting:
            def gemm(self, calls):  # type: ignore[no-untyped-def]
                commands.extend(calls)
                return driver.gemm(calls)

        t = time.perf_counter()
        res = run(program, x, backend=Counting())
        wall = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(20):
            io.read(0x20)
        latency = (time.perf_counter() - t) / 20
        io.close()
    exact = bool(np.array_equal(res.output, execute(program, x, backend="golden")))
    return {"p": p, "wall": wall, "stats": io.stats, "gemms": len(commands), "exact": exact,
            "latency": latency, "cycles": res.total_cycles, "batch": batch}


def _project(m: dict, clock_mhz: float) -> list[dict]:
    s = m["stats"]
    compute = m["cycles"] / (clock_mhz * 1e6)
    rows = []
    for name, baud, lat in (("UART 115200, 16 ms latency timer", 115_200, 16e-3),
                            ("UART 1 Mbaud, 1 ms latency timer", 1_000_000, 1e-3),
                            ("UART 3 Mbaud, 1 ms latency timer", 3_000_000, 1e-3)):
        secs = s.uart_bytes * 10 / baud + s.reads * lat + compute
        rows.append({"link": name, "seconds/batch": secs,
                     "payload KB/s": s.payload_bytes / secs / 1e3,
                     "GEMMs/s": m["gemms"] / secs, "samples/s": m["batch"] / secs})
    frames = s.writes + 2 * s.reads + s.words_in
    eth_bytes = frames * ETH_FRAME_OVERHEAD + 4 * (s.words_out + 2 * s.words_in)
    secs = eth_bytes / 125e6 + (s.reads + s.words_in) * 0.2e-3 + compute
    rows.append({"link": "Etherbone 1 Gb/s via litex_server, 0.2 ms RTT", "seconds/batch": secs,
                 "payload KB/s": s.payload_bytes / secs / 1e3, "GEMMs/s": m["gemms"] / secs,
                 "samples/s": m["batch"] / secs})
    return rows


def run(quick: bool = False) -> Report:
    tables = [Table("shipped ECP5 overlays (figures from each build's manifest)", _overlay_rows(),
                    ["build s: wall time of synthesis + place and route + packing on the "
                     "machine that built it (YoWASP tools, single-threaded)"])]
    rows, cols, batch = (2, 2, 4) if quick else (4, 4, 16)
    m = _measure_link(rows, cols, batch)
    s = m["stats"]
    tables.append(Table(f"host link in the simulated SoC ({rows}x{cols}, digits MLP, batch "
                        f"{batch})", [{
                            "bit-exact": m["exact"], "wall s": m["wall"],
                            "payload bytes": s.payload_bytes, "UART wire bytes": s.uart_bytes,
                            "read requests": s.reads, "write requests": s.writes,
                            "payload KB/s": s.payload_bytes / m["wall"] / 1e3,
                            "samples/s": batch / m["wall"],
                            "GEMM commands": m["gemms"], "GEMMs/s": m["gemms"] / m["wall"],
                            "register read ms": m["latency"] * 1e3,
                            "array cycles": m["cycles"]}],
                        ["simulated: bytes move at the Verilator model's speed over loopback "
                         "TCP, so these are not a board's figures; see the projection"]))
    tables.append(Table("the same batch projected onto real links (array at 25 MHz)",
                        _project(m, 25.0),
                        ["from the counted requests and bytes of the measured run; the host "
                         "stays the same, only the wire changes"]))
    return Report("fpga", tables, meta={"quick": quick})
