"""Chains to run the market on: an in-process eth-tester chain and anvil on loopback, plus the
controls tests need on both (time travel, mining, snapshots)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .anvil import anvil_bin, install_command

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


@dataclass
class EmbeddedChain:
    """An eth-tester (py-evm) chain in this process and accounts funded with 1e6 ETH each.

    ``lock`` serialises transactions: several MarketClients (one per simulated node) can share
    ``w3`` from several threads."""

    w3: Any
    accounts: list[LocalAccount]
    lock: threading.RLock = field(default_factory=threading.RLock)


def embedded_chain(n_accounts: int = 10) -> EmbeddedChain:
    """A fresh eth-tester chain whose ``accounts`` are funded and have known private keys."""
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

    if n_accounts < 1:
        raise ValueError(f"n_accounts must be at least 1, got {n_accounts}")
    genesis = PyEVMBackend.generate_genesis_state(num_accounts=n_accounts)
    backend = PyEVMBackend(genesis_state=genesis)
    tester = EthereumTester(backend)
    w3 = Web3(EthereumTesterProvider(tester))
    accounts = [Account.from_key(k.to_bytes()) for k in backend.account_keys[:n_accounts]]
    return EmbeddedChain(w3=w3, accounts=accounts)


def anvil_accounts(n: int = 10) -> list[LocalAccount]:
    """Anvil's default dev accounts (from its well-known test mnemonic): public, never for value."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortInUseError(OSError):
    """Another process (often a stale anvil) already listens on the port asked for."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if someone listens on ``host:port``. SO_REUSEADDR: connections of a process that
    just stopped (TIME_WAIT) do not count, only a live listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the process that started it dies,
    so an anvil never outlives its devnet, however the devnet ends (even kill -9)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc Linux: the caller's own teardown still stops anvil
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_anvil(
    port: int = 0, n_accounts: int = 10, timeout: float = 15.0, block_time: float | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil on 127.0.0.1 (a free port when ``port`` is 0) and wait until it answers.

    ``block_time`` (seconds) mines a block at that interval, so the chain clock advances while
    idle, as on a real chain; None mines only on transactions. A busy ``port`` raises
    ``PortInUseError`` before anything starts (a stale anvil there would answer in its place).
    anvil is tied to this process: it gets SIGTERM if this process dies.

    Returns (process, url); the caller terminates the process. Its accounts are anvil_accounts()."""
    binary = anvil_bin()
    if binary is None:
        raise FileNotFoundError(
            f"anvil not found: run `{install_command()}` (or ensure_anvil() to install it), "
            "or set MORPHWARE_ANVIL to its path"
        )
    if port and port_in_use(port):
        raise PortInUseError(f"127.0.0.1:{port} is already in use")
    port = port or _free_port()
    cmd = [
        str(binary), "--host", "127.0.0.1", "--port", str(port), "--accounts", str(n_accounts),
        "--mnemonic", ANVIL_MNEMONIC, "--silent",
    ]
    if block_time is not None:
        if block_time <= 0:
            raise ValueError(f"block_time must be positive, got {block_time}")
        # mixed: a block per transaction at once (fast set-up) and one per interval when idle
        cmd += ["--block-time", f"{block_time:g}", "--mixed-mining"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509 - only prctl
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"anvil exited with code {proc.returncode}: {err.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise TimeoutError(f"anvil did not listen on 127.0.0.1:{port} within {timeout} s")


def is_embedded(w3: Any) -> bool:
    from web3 import EthereumTesterProvider

    return isinstance(w3.provider, EthereumTesterProvider)


class ChainControl:
    """Test-only chain controls that work on eth-tester and anvil alike."""

    def __init__(self, w3: Any) -> None:
        self.w3 = w3
        self._embedded = is_embedded(w3)

    def now(self) -> int:
        """Timestamp of the latest block (what the next transaction will roughly see)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> None:
        """Move chain time forward by ``seconds`` and mine a block."""
        if seconds < 0:
            raise ValueError(f"cannot travel back in time ({seconds} s)")
        if self._embedded:
            # eth-tester's time_travel(t) leaves the latest block at t - 1 (t is the pending one).
            tester = self.w3.provider.ethereum_tester
            tester.time_travel(self.now() + max(seconds, 1) + 1)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])

    def mine(self) -> None:
        if self._embedded:
            self.w3.provider.ethereum_tester.mine_blocks(1)
        else:
            self.w3.provider.make_request("evm_mine", [])

    def snapshot(self) -> Any:
        if self._embedded:
            return self.w3.provider.ethereum_tester.take_snapshot()
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: Any) -> None:
        if self._embedded:
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)
        else:
            self.w3.provider.make_request("evm_revert", [snapshot_id])
