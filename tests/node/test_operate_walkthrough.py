"""docs/operate.md, run as written: every shell command of its walk-through, in order, from a
fresh folder: a devnet, six keys, funding, a requester, two workers and three validators as
separate `morphware` processes, one job submitted with --wait and paid, then status.

Seven processes that each load torch: several minutes on 2 cores, so it is marked slow
(`PYTEST_ARGS='-m slow' make test`). The only change to the documented commands is the port (a free one instead of 8545). Waiting
is done as the page tells a reader to (for the devnet's "running" line, for each node's
"registered"); `export` lines set the environment of the commands after them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from morphware.contracts import anvil_bin
from morphware.contracts.chain import _free_port, port_in_use
from morphware.runtime.demo import EXAMPLE_JOB

pytestmark = [pytest.mark.chain, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(anvil_bin() is None, reason="anvil not installed (make setup)")]

DOC = Path(__file__).resolve().parents[2] / "docs" / "operate.md"
SECTION = "## From nothing to a paid job"
STEP_TIMEOUT_S = 240


def documented_commands(doc: Path = DOC) -> list[str]:
    """The shell lines of the walk-through section's ```bash blocks, in order."""
    text = doc.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end > 0 else None]
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        lines += [ln.strip() for ln in block.splitlines()
                  if ln.strip() and not ln.strip().startswith("#")]
    return lines


def _wait_for(path: Path, needle: str, procs: list[subprocess.Popen], what: str) -> None:
    end = time.monotonic() + STEP_TIMEOUT_S
    while time.monotonic() < end:
        if path.is_file() and needle in path.read_text(errors="replace"):
            return
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"exited early: {dead}\n{_logs(path.parent)}"
        time.sleep(0.5)
    pytest.fail(f"{what}: no {needle!r} in {path.name} within {STEP_TIMEOUT_S} s\n"
                f"{_logs(path.parent)}")


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                     for p in sorted(folder.glob("net-*.log")))


def _node_log(cmd: str) -> tuple[str, str] | None:
    """(log file, what to wait for) of a `morphware node ... > LOG` line."""
    m = re.search(r"morphware node --role (\w+).*> (\S+)", cmd)
    if m is None:
        return None
    return m.group(2), ("node 0x" if m.group(1) == "requester" else "registered")


def test_the_documented_walkthrough_reaches_a_paid_job(tmp_path):
    commands = documented_commands()
    assert any(c.startswith("morphware submit") for c in commands), commands
    port = _free_port()
    shutil.copytree(EXAMPLE_JOB.parent, tmp_path / "examples" / "digits",
                    ignore=shutil.ignore_patterns("package", "out", "__pycache__"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    procs: list[subprocess.Popen] = []
    nodes_waiting: list[tuple[str, str]] = []
    outputs: dict[str, subprocess.CompletedProcess] = {}
    try:
        for raw in commands:
            cmd = raw.replace("8545", str(port))
            if cmd.startswith("export "):
                name, _, value = cmd.removeprefix("export ").partition("=")
                env[name] = shlex.split(value)[0]
                continue
            if cmd.endswith("&"):
                procs.append(subprocess.Popen(["bash", "-c", cmd[:-1]], cwd=tmp_path, env=env,
                                              start_new_session=True))
                if cmd.startswith("morphware devnet "):
                    _wait_for(tmp_path / "net-devnet.log", "running; Ctrl-C to stop", procs,
                              "devnet")
                if (node := _node_log(cmd)) is not None:
                    nodes_waiting.append(node)
                continue
            for log, needle in nodes_waiting:  # the page: wait until every node is up
                _wait_for(tmp_path / log, needle, procs, log)
            nodes_waiting.clear()
            outputs[cmd] = _run(cmd, tmp_path, env)
        submit = next(r for c, r in outputs.items() if c.startswith("morphware submit"))
        assert "outcome: accepted" in submit.stdout, submit.stdout + _logs(tmp_path)
        worker = next(r for c, r in outputs.items() if "status 1 --data-dir net/worker-a" in c)
        assert re.search(r"earned: [1-9][0-9.]* MWT", worker.stdout), worker.stdout
        assert (tmp_path / "net" / "requester" / "results" / "1" / "model.onnx").is_file()
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    # SIGTERM took the devnet's anvil down with it: the port is free again
    end = time.monotonic() + 10
    while port_in_use(port) and time.monotonic() < end:
        time.sleep(0.2)
    assert not port_in_use(port), "anvil outlived its devnet"


def _run(cmd: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """One foreground command; `submit` is retried while the requester's first poll (its
    heartbeat) is still to come."""
    end = time.monotonic() + 60
    while True:
        r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=900)
        starting = "is not running" in r.stderr or "no node state" in r.stderr
        if r.returncode == 0 or not (cmd.startswith("morphware submit") and starting) \
                or time.monotonic() > end:
            break
        time.sleep(1.0)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}\n{_logs(cwd)}"
    assert "Traceback" not in r.stderr, r.stderr
    return r
