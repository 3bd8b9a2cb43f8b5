"""Chains to run the market on: an in-process eth-tester chain and anvil on loopback, plus the
controls tests need on both (time travel, mining, snapshots)."""

from __future__ import annotations

import functools
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


_TESTER: type | None = None


def _block_period_tester() -> type:
    """EthereumTester that can run as a live chain. With ``batching`` on, a sent transaction
    is applied to the pending block and waits there, with every other transaction sent in the
    same block period, until the block is mined (by ``EmbeddedChain``'s block producer when its
    time comes, or by a test's ``mine``).

    Plain eth-tester mines one block per transaction and stamps each block at least one second
    after its parent, so a burst of transactions runs the chain clock ahead of the wall clock.
    Its own ``disable_auto_mine_transactions`` mode does not help: it keeps sent transactions
    outside the state until mining (a sender's second transaction then fails on its nonce, and
    ``pending`` reads miss them) and replays the latest block on every send. Here a sent
    transaction is part of the pending block's state at once, as on anvil or geth: ``pending``
    nonces and calls see it, so one account can have several transactions in one block.

    The chain's clock while batching is the wall clock plus ``offset`` (the lead that time
    travel, or blocks mined on request faster than one a second, gave it: the chain keeps it and
    ticks on at wall-clock pace). The pending block is stamped, when its first transaction
    arrives (or when it is mined empty), with the time it is due: ``period`` seconds after its
    parent, or the chain's clock if that is later; the producer mines it when the clock gets
    there. So transactions see the timestamp of the block they land in, and no block is stamped
    ahead of the chain's clock however many transactions arrive."""
    global _TESTER
    if _TESTER is not None:
        return _TESTER
    from eth_tester import EthereumTester
    from eth_utils import to_tuple

    send_now = EthereumTester.send_raw_transaction.__wrapped__  # without the auto-mining

    class BlockPeriodTester(EthereumTester):
        def __init__(self, backend: Any) -> None:
            super().__init__(backend)
            self.batching = False
            self.period = 1
            self.offset = 0.0
            self.changed = threading.Condition()
            self.head_changes = 0  # blocks mined and reverts so far (waiters compare it)

        # -- the chain's clock and the pending block
        def clock(self) -> float:
            return time.time() + self.offset

        def latest_timestamp(self) -> int:
            chain = self.backend.chain
            return int(chain.get_block_header_by_hash(chain.header.parent_hash).timestamp)

        def pending_transactions(self) -> int:
            return len(self.backend.chain.get_block().transactions)

        def due(self) -> int:
            """The timestamp the next block gets (and the chain time it is mined at)."""
            return max(self.latest_timestamp() + self.period, int(self.clock()))

        def _stamp(self) -> None:
            chain = self.backend.chain
            if chain.get_block().transactions:
                return  # stamped when its first transaction arrived
            stamp = max(self.due(), chain.header.timestamp)
            if stamp != chain.header.timestamp:
                chain.header = chain.header.copy(timestamp=stamp)

        def flush(self) -> None:
            """Mine the pending block now if it holds transactions."""
            if self.pending_transactions():
                self.mine_blocks(1)

        # -- eth-tester's API
        def send_raw_transaction(self, raw_transaction_hex: Any) -> Any:
            if not self.batching:
                return super().send_raw_transaction(raw_transaction_hex)
            self._stamp()
            try:
                return send_now(self, raw_transaction_hex)
            except Exception as exc:
                if "exceeds gas limit" not in str(exc) or not self.pending_transactions():
                    raise
            self.mine_blocks(1)  # the pending block is full: the transaction goes in the next
            return send_now(self, raw_transaction_hex)

        def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
            if self.batching:
                self._stamp()
            kw = {} if coinbase is None else {"coinbase": coinbase}
            hashes = super().mine_blocks(num_blocks, **kw)
            self._changed(len(hashes))
            return hashes

        def time_travel(self, to_timestamp: int) -> None:
            self.flush()  # what was sent before the jump is mined at the time it was sent
            super().time_travel(to_timestamp)
            self._changed(1)

        def revert_to_snapshot(self, snapshot_id: Any) -> None:
            super().revert_to_snapshot(snapshot_id)
            self._changed(1)  # wake waiters: what they wait for may be gone

        def _changed(self, n: int) -> None:
            if self.batching:  # a lead given on request (time travel, quick mining) is kept
                self.offset = max(self.offset, self.latest_timestamp() - time.time())
            with self.changed:
                self.head_changes += n
                self.changed.notify_all()

        @to_tuple
        def get_logs(self, from_block: Any = None, to_block: Any = None, address: Any = None,
                     topics: Any = None) -> Any:
            """eth-tester's ``get_logs``, with each block's receipts read once. eth-tester reads
            every transaction's receipt on its own: it scans back from the head for the
            transaction's block, then decodes all of that block's receipts, which is quadratic
            in a block of many transactions (and made log queries most of the chain's time)."""
            from eth_tester.backends.pyevm.serializers import serialize_transaction_receipt
            from eth_tester.utils.filters import Filter, check_if_log_matches

            self.validator.validate_inbound_filter_params(
                from_block=from_block, to_block=to_block, address=address, topics=topics)
            raw_from, raw_to, raw_address, raw_topics = \
                self.normalizer.normalize_inbound_filter_params(
                    from_block=from_block, to_block=to_block, address=address, topics=topics)
            params = {"from_block": raw_from, "to_block": raw_to, "addresses": raw_address,
                      "topics": raw_topics}
            log_filter = Filter(filter_params=params,
                                filter_fn=functools.partial(check_if_log_matches, **params))
            lower, upper = (
                b if isinstance(b, int) else self.get_block_by_number(b or "latest")["number"]
                for b in (raw_from, raw_to))
            chain = self.backend.chain
            pending = chain.header.block_number
            vm = None
            for number in range(lower, upper + 1):
                if number >= pending:
                    self.get_block_by_number(number)  # eth-tester's BlockNotFound
                block = chain.get_canonical_block_by_number(number)
                if not block.transactions:
                    continue
                receipts = block.get_receipts(chain.chaindb)
                vm = vm or chain.get_vm()
                for index, txn in enumerate(block.transactions):
                    raw = serialize_transaction_receipt(block, receipts, txn, index, False, vm)
                    self.validator.validate_outbound_receipt(raw)
                    for entry in self.normalizer.normalize_outbound_receipt(raw)["logs"]:
                        log_filter.add(self.normalizer.normalize_inbound_log_entry(entry))
            for item in log_filter.get_all():
                yield self.normalizer.normalize_outbound_log_entry(item)

        def wait_mined(self, seen: int, timeout: float) -> bool:
            """Wait (without the chain lock) for a block after ``head_changes`` was ``seen``."""
            with self.changed:
                return self.changed.wait_for(lambda: self.head_changes > seen, timeout)

    _TESTER = BlockPeriodTester
    return BlockPeriodTester


@dataclass
class EmbeddedChain:
    """An eth-tester (py-evm) chain in this process and accounts funded with 1e6 ETH each.

    ``lock`` (the same as ``tx.lock_for(w3)``) serialises every use of the chain: several
    MarketClients (one per simulated node) can share ``w3`` from several threads, and eth-tester
    is not thread-safe.

    By default every transaction is mined at once in a block of its own (deterministic, what the
    contract tests want). ``produce_blocks(block_time)`` turns it into a live chain: transactions
    wait in the pending block, a block is mined every ``block_time`` seconds with whatever is
    pending (or empty), and the chain clock follows the wall clock however many transactions
    arrive. ``close()`` stops the block producer."""

    w3: Any
    accounts: list[LocalAccount]
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _producer: threading.Thread | None = field(default=None, repr=False)

    @property
    def lock(self) -> Any:
        from .tx import lock_for

        return lock_for(self.w3)  # looked up each time: a caller may swap it (bench timing)

    @property
    def tester(self) -> Any:
        return self.w3.provider.ethereum_tester

    @property
    def batching(self) -> bool:
        return bool(getattr(self.tester, "batching", False))

    def produce_blocks(self, block_time: int = 1) -> None:
        """Batch transactions per block and mine a block every ``block_time`` seconds of chain
        time (whole seconds) from a daemon thread, with what is pending or empty. A sender waits
        for the block its transaction is in."""
        if int(block_time) != block_time or block_time < 1:
            raise ValueError(f"block_time must be a whole number of seconds >= 1 (block "
                             f"timestamps are whole seconds), got {block_time}")
        if self._producer is not None:
            raise RuntimeError("this chain already produces blocks")
        tester = self.tester
        with self.lock:
            tester.period = int(block_time)
            tester.offset = 0.0  # from now on the chain's clock is the wall clock
            tester.batching = True
        self._stop.clear()
        self._producer = threading.Thread(target=self._produce, daemon=True,
                                          name="block-producer")
        self._producer.start()

    def _produce(self) -> None:
        tester = self.tester
        while True:
            with self.lock:
                wait = tester.due() - tester.clock()
                if wait <= 0:
                    tester.mine_blocks(1)
                    continue
            if self._stop.wait(wait):
                return

    def close(self) -> None:
        """Stop the block producer; what is still pending is mined and later transactions are
        mined at once again."""
        self._stop.set()
        if self._producer is not None:
            self._producer.join(timeout=10)
            self._producer = None
        with self.lock:
            tester = self.tester
            if getattr(tester, "batching", False):
                tester.flush()
                tester.batching = False


def embedded_chain(n_accounts: int = 10, block_time: int | None = None) -> EmbeddedChain:
    """A fresh eth-tester chain whose ``accounts`` are funded and have known private keys.
    ``block_time`` (seconds): start its block producer (see ``EmbeddedChain``); None mines
    every transaction at once."""
    from eth_tester import PyEVMBackend
    from web3 import EthereumTesterProvider, Web3

    if n_accounts < 1:
        raise ValueError(f"n_accounts must be at least 1, got {n_accounts}")
    genesis = PyEVMBackend.generate_genesis_state(num_accounts=n_accounts)
    backend = PyEVMBackend(genesis_state=genesis)
    tester = _block_period_tester()(backend)
    w3 = Web3(EthereumTesterProvider(tester))
    accounts = [Account.from_key(k.to_bytes()) for k in backend.account_keys[:n_accounts]]
    chain = EmbeddedChain(w3=w3, accounts=accounts)
    if block_time is not None:
        chain.produce_blocks(block_time)
    return chain


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
            tester = self.w3.provider.ethereum_tester
            if hasattr(tester, "flush"):
                tester.flush()  # what is pending was sent before the jump
            # eth-tester's time_travel(t) leaves the latest block at t - 1 (t is the pending one).
            target = self.now() + max(seconds, 1) + 1
            if target <= int(tester.get_block_by_number("pending")["timestamp"]):
                tester.mine_blocks(1)  # the wall clock already took the chain that far
            else:
                tester.time_travel(target)
        else:
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])

    def mine(self) -> None:
        """Mine a block now (on an embedded chain that batches: with what is pending)."""
        if self._embedded:
            self.w3.provider.ethereum_tester.mine_blocks(1)
        else:
            self.w3.provider.make_request("evm_mine", [])

    def snapshot(self) -> Any:
        """A snapshot of the chain (what is pending is mined first, so it is in it)."""
        if self._embedded:
            tester = self.w3.provider.ethereum_tester
            if hasattr(tester, "flush"):
                tester.flush()
            return tester.take_snapshot()
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snapshot_id: Any) -> None:
        if self._embedded:
            self.w3.provider.ethereum_tester.revert_to_snapshot(snapshot_id)
        else:
            self.w3.provider.make_request("evm_revert", [snapshot_id])
