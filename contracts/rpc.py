"""Counting JSON-RPC calls by who made them and why, so that a regression in chain traffic shows.

A node's chain traffic is what limits how many jobs a market can carry: every call is a round
trip to an RPC provider (often rate-limited), and on the embedded chain every call holds the one
lock all in-process nodes share. ``count_rpc(w3)`` puts a counting middleware on a Web3 instance;
every request through it is counted under the labels the calling thread set with
``rpc_labels(...)`` (the node daemon sets node, role, job and phase), and every ``eth_getLogs``
records the block range it asked for, so a test can check that no query is unbounded.

The counter sits innermost (next to the provider), so it counts what reaches the chain.
``cache_chain_id(w3)`` answers ``eth_chainId`` from memory after the first answer: web3 asks it
before every ``eth_call``, gas estimate and transaction build (its chain-id validation), which
made it ~40 % of a node's calls, though a connection's chain never changes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LABELS = ("node", "role", "job", "phase")

_local = threading.local()


def current_labels() -> dict[str, str]:
    """The labels the calling thread counts its calls under (a copy)."""
    return dict(getattr(_local, "labels", {}))


@contextmanager
def rpc_labels(**labels: Any) -> Iterator[None]:
    """Count this thread's calls under ``labels`` (merged over the current ones) inside the
    block. Unknown label names are a programming error and raise ValueError."""
    bad = sorted(set(labels) - set(LABELS))
    if bad:
        raise ValueError(f"unknown RPC label(s) {bad}; known: {LABELS}")
    before = current_labels()
    _local.labels = {**before, **{k: str(v) for k, v in labels.items()}}
    try:
        yield
    finally:
        _local.labels = before


def with_labels(labels: dict[str, str], fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` wrapped to run under ``labels`` (for work handed to another thread)."""

    def run() -> Any:
        with rpc_labels(**labels):
            return fn()

    return run


def _block_number(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.startswith("0x"):
        return int(value, 16)
    return None  # "latest", "pending", ...: unbounded as far as the caller said


class RpcCounter:
    """Thread-safe tallies: calls per (node, role, job, phase, method), and ``eth_getLogs``
    ranges (the largest, and how many queries named no explicit end)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, ...]] = Counter()
        self.max_logs_range = 0
        self.open_logs_queries = 0

    def record(self, method: str, params: Any) -> None:
        labels = getattr(_local, "labels", {})
        key = (*(labels.get(k, "") for k in LABELS), str(method))
        span = None
        if method == "eth_getLogs" and params:
            flt = params[0] if isinstance(params, list | tuple) else params
            lo, hi = _block_number(flt.get("fromBlock")), _block_number(flt.get("toBlock"))
            span = (hi - lo + 1) if lo is not None and hi is not None else None
        with self._lock:
            self.calls[key] += 1
            if method == "eth_getLogs":
                if span is None:
                    self.open_logs_queries += 1
                else:
                    self.max_logs_range = max(self.max_logs_range, span)

    def total(self, **where: Any) -> int:
        """Calls whose labels (and ``method``) equal ``where``'s values."""
        names = (*LABELS, "method")
        idx = {names.index(k): str(v) for k, v in where.items()}
        with self._lock:
            return sum(n for key, n in self.calls.items()
                       if all(key[i] == v for i, v in idx.items()))

    def by(self, label: str, **where: Any) -> dict[str, int]:
        """Calls grouped by one label (or ``method``), filtered like ``total``."""
        names = (*LABELS, "method")
        pos = names.index(label)
        idx = {names.index(k): str(v) for k, v in where.items()}
        out: Counter[str] = Counter()
        with self._lock:
            for key, n in self.calls.items():
                if all(key[i] == v for i, v in idx.items()):
                    out[key[pos]] += n
        return dict(out)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy: calls as rows of labels + method + count, and the range figures."""
        names = (*LABELS, "method")
        with self._lock:
            rows = [{**dict(zip(names, key, strict=True)), "n": n}
                    for key, n in sorted(self.calls.items())]
            return {"calls": rows, "max_logs_range": self.max_logs_range,
                    "open_logs_queries": self.open_logs_queries}


def _middleware(counter: RpcCounter) -> Callable[[Any], Any]:
    from web3.middleware.base import Web3Middleware

    class Counting(Web3Middleware):
        def wrap_make_request(self, make_request: Any) -> Any:
            def middleware(method: Any, params: Any) -> Any:
                counter.record(str(method), params)
                return make_request(method, params)

            return middleware

    return Counting


_COUNTERS_GUARD = threading.Lock()


def count_rpc(w3: Any) -> RpcCounter:
    """The counter of ``w3``'s requests, installed on first use (one per Web3 instance),
    innermost: what other middleware answers itself (the cached chain id) is not counted."""
    with _COUNTERS_GUARD:
        counter = getattr(w3, "_morphware_rpc_counter", None)
        if counter is None:
            counter = RpcCounter()
            w3.middleware_onion.inject(_middleware(counter), name="morphware_rpc_counter",
                                       layer=0)
            w3._morphware_rpc_counter = counter
        return counter


class _ChainIdMemo:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.response: Any = None


def _chain_id_middleware(memo: _ChainIdMemo) -> Callable[[Any], Any]:
    from web3.middleware.base import Web3Middleware

    class ChainIdCache(Web3Middleware):
        def wrap_make_request(self, make_request: Any) -> Any:
            def middleware(method: Any, params: Any) -> Any:
                if str(method) != "eth_chainId":
                    return make_request(method, params)
                cached = memo.response
                if cached is not None:
                    return cached
                response = make_request(method, params)
                if isinstance(response, dict) and response.get("result") is not None \
                        and "error" not in response:
                    with memo.lock:
                        memo.response = response
                return response

            return middleware

    return ChainIdCache


def cache_chain_id(w3: Any) -> None:
    """Answer ``w3``'s ``eth_chainId`` from memory once the chain has answered it (a connection
    stays on one chain; a new Web3 asks again). Idempotent."""
    with _COUNTERS_GUARD:
        if getattr(w3, "_morphware_chain_id_memo", None) is None:
            memo = _ChainIdMemo()
            w3.middleware_onion.add(_chain_id_middleware(memo), name="morphware_chain_id_cache")
            w3._morphware_chain_id_memo = memo


def chain_id(w3: Any) -> int:
    """``w3``'s chain id, asked of the chain once per connection (see ``cache_chain_id``)."""
    cache_chain_id(w3)
    return int(w3.eth.chain_id)
