"""cocotb side of ``sim_mmio.SimIO`` (runs inside the simulator; not collected by pytest).

Connects to the host's socket and serves one JSON request per line: AXI4-Lite ``read``/``write``,
``send`` (start an AXI4-Stream master on s_axis_a / s_axis_w), ``receive`` (arm the m_axis_o
slave), ``collect`` (run until every stream finished), ``idle`` and ``close``.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from morphware.systolic import streams
from morphware.systolic.cocotb_axi import AxiLite, handshake


class Array:
    """The DUT's buses, driven from requests."""

    def __init__(self, dut: Any):
        self.dut = dut
        self.clk = dut.aclk
        self.bus = AxiLite(dut)
        self.pending: list[Any] = []  # stream tasks not yet finished
        self.out: list[list[int]] = []
        self.out_expected = 0
        self.tlast_error = ""

    def idle_bus(self) -> None:
        d = self.dut
        self.bus.idle()
        for s in (d.s_axis_a_tvalid, d.s_axis_w_tvalid, d.m_axis_o_tready):
            s.value = 0

    async def stream_out(self, channel: str, words: list[int]) -> None:
        valid = getattr(self.dut, f"s_axis_{channel}_tvalid")
        data = getattr(self.dut, f"s_axis_{channel}_tdata")
        ready = getattr(self.dut, f"s_axis_{channel}_tready")
        for word in words:
            data.value = word
            valid.value = 1
            await handshake(self.clk, ready)
        valid.value = 0

    async def stream_in(self, beats: int, lanes: int) -> None:
        d = self.dut
        d.m_axis_o_tready.value = 1
        got = 0
        while got < beats:
            await ReadOnly()
            if d.m_axis_o_tvalid.value:
                got += 1
                word = f"{int(d.m_axis_o_tdata.value.to_unsigned()):x}"
                self.out.append(streams.from_hex_lines([word], lanes)[0].tolist())
                last = bool(d.m_axis_o_tlast.value)
                if last != (got == beats) and not self.tlast_error:
                    self.tlast_error = f"tlast={int(last)} on output beat {got} of {beats}"
            await RisingEdge(self.clk)
        d.m_axis_o_tready.value = 0

    async def collect(self, max_cycles: int) -> dict[str, Any]:
        for _ in range(max_cycles):
            if all(t.done() for t in self.pending):
                break
            await RisingEdge(self.clk)
        else:
            return {"error": f"streams did not finish within {max_cycles} cycles "
                             f"({len(self.out)}/{self.out_expected} output beats)"}
        for t in self.pending:
            t.result()  # re-raise a failed stream task
        self.pending = []
        if self.tlast_error:
            err, self.tlast_error = self.tlast_error, ""
            return {"error": err}
        beats, self.out = self.out, []
        return {"beats": beats}

    async def serve(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "read":
            return {"value": await self.bus.read(int(req["addr"]))}
        if op == "write":
            await self.bus.write(int(req["addr"]), int(req["value"]))
            return {}
        if op == "send":
            beats = np.asarray(req["beats"], np.int64).reshape(len(req["beats"]), -1)
            words = [int(h, 16) for h in streams.to_hex_lines(beats, int(req["lane_bits"]))]
            self.pending.append(cocotb.start_soon(self.stream_out(req["channel"], words)))
            return {}
        if op == "receive":
            self.out_expected = int(req["beats"])
            self.pending.append(cocotb.start_soon(self.stream_in(self.out_expected,
                                                                 int(req["lanes"]))))
            return {}
        if op == "collect":
            return await self.collect(int(req["max_cycles"]))
        if op == "idle":
            await ClockCycles(self.clk, int(req["cycles"]))
            return {}
        return {"error": f"unknown request {op!r}"}


@cocotb.test()
async def serve_host(dut: Any) -> None:
    """Reset the array, then serve the host's requests until it says close."""
    arr = Array(dut)
    arr.idle_bus()
    Clock(dut.aclk, 10, unit="ns").start()
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    dut.aresetn.value = 1
    await RisingEdge(dut.aclk)
    sock = socket.create_connection(("127.0.0.1", int(os.environ["MORPHWARE_SIMIO_PORT"])))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one small reply per request
    rfile = sock.makefile("r", encoding="ascii")
    try:
        while True:
            line = rfile.readline()
            if not line:
                return
            req = json.loads(line)
            if req.get("op") == "close":
                sock.sendall(b"{}\n")
                return
            try:
                reply = await arr.serve(req)
            except Exception as e:  # noqa: BLE001 - reported to the host, the sim stays up
                reply = {"error": f"{type(e).__name__}: {e}"}
            sock.sendall((json.dumps(reply) + "\n").encode("ascii"))
    finally:
        sock.close()
