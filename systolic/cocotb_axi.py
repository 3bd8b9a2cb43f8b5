"""The one AXI4-Lite master and AXI4-Stream handshake used to drive ``ws_top`` from cocotb.

Both the verification suite (``cocotb_ws``) and the simulated register/DMA layer behind the FPGA
driver's tests drive the same ports; they share this driver so a protocol fix lands once.
"""

from __future__ import annotations

from typing import Any

from cocotb.triggers import ReadOnly, RisingEdge


async def handshake(clk: Any, ready: Any) -> None:
    """Hold the current ``valid`` until ``ready`` is sampled high at a rising edge."""
    while True:
        await ReadOnly()
        fire = bool(ready.value)
        await RisingEdge(clk)
        if fire:
            return


class AxiLite:
    """Minimal AXI4-Lite master (one outstanding transaction, full write strobes)."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.clk = dut.aclk

    def idle(self) -> None:
        d = self.dut
        for s in (d.s_axil_awvalid, d.s_axil_wvalid, d.s_axil_arvalid):
            s.value = 0
        d.s_axil_bready.value = 1
        d.s_axil_rready.value = 1
        d.s_axil_awaddr.value = 0
        d.s_axil_araddr.value = 0
        d.s_axil_wdata.value = 0
        if hasattr(d, "s_axil_wstrb"):  # the verification harness ties it off itself
            d.s_axil_wstrb.value = 0xF

    async def write(self, addr: int, data: int) -> None:
        d = self.dut
        d.s_axil_awaddr.value = addr
        d.s_axil_wdata.value = data & 0xFFFFFFFF
        d.s_axil_awvalid.value = 1
        d.s_axil_wvalid.value = 1
        await handshake(self.clk, d.s_axil_awready)
        d.s_axil_awvalid.value = 0
        d.s_axil_wvalid.value = 0
        while True:
            await ReadOnly()
            done = bool(d.s_axil_bvalid.value)
            await RisingEdge(self.clk)
            if done:
                return

    async def read(self, addr: int) -> int:
        d = self.dut
        d.s_axil_araddr.value = addr
        d.s_axil_arvalid.value = 1
        await handshake(self.clk, d.s_axil_arready)
        d.s_axil_arvalid.value = 0
        while True:
            await ReadOnly()
            if d.s_axil_rvalid.value:
                value = int(d.s_axil_rdata.value.to_unsigned())
                await RisingEdge(self.clk)
                return value
            await RisingEdge(self.clk)
