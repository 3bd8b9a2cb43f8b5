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
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

LANE_MASK = {8: 0xFF, 16: 0xFFFF, 32: 0xFFFFFFFF}


def pack(beat: list[int], lane_bits: int) -> int:
    """Lane i in bits [i*w, (i+1)*w), two's complement."""
    mask = LANE_MASK[lane_bits]
    word = 0
    for i, v in enumerate(beat):
        word |= (int(v) & mask) << (i * lane_bits)
    return word


def unpack32(word: int, lanes: int) -> list[int]:
    out = []
    for i in range(lanes):
        v = (word >> (32 * i)) & 0xFFFFFFFF
        out.append(v - (1 << 32) if v & 0x80000000 else v)
    return out


class Array:
    """The DUT's buses, driven from requests."""

    def __init__(self, dut: Any):
        self.dut = dut
        self.clk = dut.aclk
        self.pending: list[Any] = []  # stream tasks not yet finished
        self.out: list[list[int]] = []
        self.out_expected = 0
        self.tlast_error = ""

    def idle_bus(self) -> None:
        d = self.dut
        for s in (d.s_axil_awvalid, d.s_axil_wvalid, d.s_axil_arvalid, d.s_axis_a_tvalid,
                  d.s_axis_w_tvalid, d.m_axis_o_tready):
            s.value = 0
        d.s_axil_bready.value = 1
        d.s_axil_rready.value = 1
        d.s_axil_wstrb.value = 0xF

    async def handshake(self, ready: Any) -> None:
        """Hold the current valid until ``ready`` is sampled high at a rising edge."""
        while True:
            await ReadOnly()
            fire = bool(ready.value)
            await RisingEdge(self.clk)
            if fire:
                return

    async def wait_high(self, sig: Any) -> None:
        while True:
            await ReadOnly()
            high = bool(sig.value)
            await RisingEdge(self.clk)
            if high:
                return

    async def write(self, addr: int, value: int) -> None:
        d = self.dut
        d.s_axil_awaddr.value = addr
        d.s_axil_wdata.value = value
        d.s_axil_awvalid.value = 1
        d.s_axil_wvalid.value = 1
        await self.handshake(d.s_axil_awready)
        d.s_axil_awvalid.value = 0
        d.s_axil_wvalid.value = 0
        await self.wait_high(d.s_axil_bvalid)

    async def read(self, addr: int) -> int:
        d = self.dut
        d.s_axil_araddr.value = addr
        d.s_axil_arvalid.value = 1
        await self.handshake(d.s_axil_arready)
        d.s_axil_arvalid.value = 0
        while True:
            await ReadOnly()
            if d.s_axil_rvalid.value:
                value = int(d.s_axil_rdata.value.to_unsigned())
                await RisingEdge(self.clk)
                return value
            await RisingEdge(self.clk)

    async def stream_out(self, channel: str, words: list[int]) -> None:
        valid = getattr(self.dut, f"s_axis_{channel}_tvalid")
        data = getattr(self.dut, f"s_axis_{channel}_tdata")
        ready = getattr(self.dut, f"s_axis_{channel}_tready")
        for word in words:
            data.value = word
            valid.value = 1
            await self.handshake(ready)
        valid.value = 0

    async def stream_in(self, beats: int, lanes: int) -> None:
        d = self.dut
        d.m_axis_o_tready.value = 1
        got = 0
        while got < beats:
            await ReadOnly()
            if d.m_axis_o_tvalid.value:
                got += 1
                self.out.append(unpack32(int(d.m_axis_o_tdata.value.to_unsigned()), lanes))
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
            return {"value": await self.read(int(req["addr"]))}
        if op == "write":
            await self.write(int(req["addr"]), int(req["value"]))
            return {}
        if op == "send":
            words = [pack(b, int(req["lane_bits"])) for b in req["beats"]]
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
