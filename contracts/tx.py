"""Signing and sending transactions from a local eth-account key, with revert reasons surfaced.

Works the same on eth-tester (in-process) and on any JSON-RPC node: transactions are signed here and
sent raw, so the node needs no unlocked accounts."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from eth_account.signers.local import LocalAccount

from .rpc import chain_id

_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()

GAS_HEADROOM = 1.25
RECEIPT_TIMEOUT_S = 120.0
RECEIPT_POLL_S = 0.25
EMBEDDED_GAS = 5_000_000


class ContractError(Exception):
    """A call the contract rejected; ``message`` is the contract's own reason string."""

    def __init__(self, message: str, function: str = "") -> None:
        self.message = message
        self.function = function
        super().__init__(f"{function}: {message}" if function else message)


def lock_for(w3: Any) -> threading.RLock:
    """One lock per Web3 instance: clients sharing a w3 never race on nonces or on eth-tester."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(w3)
        if lock is None:
            lock = _LOCKS[w3] = threading.RLock()
        return lock


def revert_reason(exc: Exception) -> str:
    """The contract's message out of a web3 ContractLogicError (or the exception text)."""
    msg = getattr(exc, "message", None) or str(exc)
    for prefix in ("execution reverted: ", "execution reverted:", "execution reverted"):
        if msg.startswith(prefix):
            return msg[len(prefix):].strip() or "reverted without a reason"
    return msg


def _gas_limit(w3: Any, call: Any, params: dict[str, Any]) -> int:
    """Estimated gas plus headroom. On eth-tester, estimation is a binary search over many
    executions, so a single eth_call checks for a revert instead and a fixed limit is used."""
    from .chain import is_embedded

    if is_embedded(w3):
        if hasattr(call, "call"):
            call.call(params, block_identifier="pending")
            return EMBEDDED_GAS
        return int(call.estimate_gas(params) * GAS_HEADROOM) + 10_000  # a constructor
    # Pending block: on an idle node its timestamp is the wall clock, not the last block's.
    return int(call.estimate_gas(params, block_identifier="pending") * GAS_HEADROOM) + 10_000


class _Nonces:
    """The next nonce of each local account on one chain, kept here so that an account can have
    several transactions in flight (one per nonce) instead of one per block. Re-read from the
    chain whenever a send fails, so a refused transaction never leaves a gap."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, w3: Any, address: str) -> int:
        if address not in self._next:
            self._next[address] = int(w3.eth.get_transaction_count(address, "pending"))
        nonce = self._next[address]
        self._next[address] = nonce + 1
        return nonce

    def forget(self, address: str) -> None:
        self._next.pop(address, None)


_NONCES: weakref.WeakKeyDictionary[Any, _Nonces] = weakref.WeakKeyDictionary()


def _nonces(w3: Any) -> _Nonces:
    with _LOCKS_GUARD:
        n = _NONCES.get(w3)
        if n is None:
            n = _NONCES[w3] = _Nonces()
        return n


def send(w3: Any, account: LocalAccount, call: Any, label: str, value: int = 0) -> Any:
    """Estimate, sign, send and wait for ``call`` (a ContractFunction or ContractConstructor).

    Returns the receipt. A revert (at estimation or on chain) raises ContractError. The chain
    lock is held only to estimate, take a nonce and send; the wait for the block that holds the
    transaction runs outside it, so other threads of this process (another job's step, another
    in-process node) send their transactions into the same block. On an embedded chain that
    mines every transaction at once the receipt is read under the lock right away."""
    from web3.exceptions import ContractLogicError, ContractPanicError

    from .chain import is_embedded

    rejected: tuple[type[Exception], ...] = (ContractLogicError, ContractPanicError)
    try:  # eth-tester raises its own exception type for reverts during estimation
        from eth_tester.exceptions import TransactionFailed

        rejected += (TransactionFailed,)
    except ImportError:
        pass
    embedded = is_embedded(w3)
    nonces = _nonces(w3)
    lock = lock_for(w3)
    with lock:
        # an embedded chain that batches keeps the transaction pending until its next block
        batching = embedded and bool(getattr(w3.provider.ethereum_tester, "batching", False))
        params: dict[str, Any] = {"from": account.address, "value": value,
                                  "chainId": chain_id(w3)}  # asked once per connection
        try:
            params["gas"] = _gas_limit(w3, call, params)
        except rejected as exc:
            raise ContractError(revert_reason(exc), label) from None
        for attempt in (1, 2):  # a second try after re-reading the nonce from the chain
            params["nonce"] = nonces.take(w3, account.address)
            tx = call.build_transaction(params)
            signed = account.sign_transaction(tx)
            try:
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
                if batching:
                    tester = w3.provider.ethereum_tester
                    seen, due = tester.head_changes, tester.due()
                break
            except Exception as exc:
                nonces.forget(account.address)  # e.g. this key was used elsewhere meanwhile
                if attempt == 2 or "nonce" not in str(exc).lower():
                    raise
        if embedded and not batching:  # mined at once; eth-tester must not be read concurrently
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    try:
        if batching:
            receipt = _wait_batched(w3, tx_hash, lock, seen, due)
        elif not embedded:
            receipt = w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S)
    except Exception:
        with lock:
            nonces.forget(account.address)
        raise
    if receipt["status"] != 1:
        if embedded:
            with lock:
                reason = _replayed_reason(w3, tx, receipt, tx_hash.hex())
        else:
            reason = _replayed_reason(w3, tx, receipt, tx_hash.hex())
        raise ContractError(reason, label)
    return receipt


LATE_S = 0.25
"""How long past its due time a waiting sender gives the block producer before it mines the
block itself (the producer cannot while the sender's caller holds the chain lock)."""


def _wait_batched(w3: Any, tx_hash: Any, lock: Any, seen: int, due: int) -> Any:
    """The receipt of a transaction sent into an embedded chain's pending block, once a block
    holds it. ``seen``: the chain's ``head_changes`` when it was sent; ``due``: the chain time
    its block is mined at. Waits for the block producer without the chain lock; if the block is
    not mined on time (the caller holds the chain lock, or the producer stopped) the sender
    mines it itself, at its due time still."""
    from eth_tester.exceptions import TransactionNotFound as NotInTester
    from web3.exceptions import TimeExhausted, TransactionNotFound

    tester = w3.provider.ethereum_tester
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeExhausted(f"transaction {tx_hash.to_0x_hex()} is not in a block after "
                                f"{RECEIPT_TIMEOUT_S:g} s")
        if not tester.wait_mined(seen, min(left, max(0.0, due - tester.clock()) + LATE_S)):
            with lock:
                if tester.clock() >= tester.due():  # overdue: the producer could not mine it
                    tester.mine_blocks(1)
        with lock:
            seen, due = tester.head_changes, tester.due()
            try:
                return w3.eth.get_transaction_receipt(tx_hash)  # not found while pending
            except TransactionNotFound:
                pass
            try:  # still pending, or gone with a revert to a snapshot?
                tester.get_transaction_by_hash(tx_hash.to_0x_hex())
            except NotInTester:
                raise TransactionNotFound(f"transaction {tx_hash.to_0x_hex()} was dropped from "
                                          "the pending block (a revert to a snapshot?)") from None


def _replayed_reason(w3: Any, tx: dict[str, Any], receipt: Any, tx_hash: str) -> str:
    """Why a mined transaction reverted: replay it as a call on its block to read the reason."""
    fields = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
    try:
        w3.eth.call(fields, receipt["blockNumber"])
    except Exception as exc:  # the replay reverting is the point
        return revert_reason(exc)
    return f"transaction {tx_hash} reverted on chain"
