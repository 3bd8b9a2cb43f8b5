"""A market on anvil for tests and benchmarks: a real-time chain (a block per second), workers and
validators as separate ``morphware node`` processes, and the requester as a node in this
process (it seeds what it submits, and a benchmark reads its store directly)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = 10**18
PASSWORD = "bench-anvil"


@dataclass
class AnvilMarket:
    w3: Any
    deployment: Any
    requester: Any  # the in-process requester Node
    names: dict[str, str]  # lower-case address -> node name
    folder: Path


def _spawn(tmp: Path, url: str, dep_file: Path, cast: list[tuple[str, str, list[str]]],
           accts: list[Any]) -> list[subprocess.Popen]:
    from morphware.runtime.node.keystore import create_keystore

    env = {**os.environ, "MORPHWARE_PASSWORD": PASSWORD}
    procs = []
    for (name, role, extra), acct in zip(cast, accts, strict=True):
        ks = tmp / f"{name}.json"
        create_keystore(ks, PASSWORD, bytes(acct.key), scrypt_n=2**10)
        log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "morphware.runtime.cli", "node", "--role", role, "--rpc", url,
             "--deployment", str(dep_file), "--keystore", str(ks), "--data-dir", str(tmp / name),
             "--peers-dir", str(tmp / "peers"), "--fund", "2000", "--poll", "0.2", *extra],
            env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


@contextmanager
def anvil_market(tmp: Path, workers: list[tuple[str, float] | tuple[str, float, list[str]]],
                 validators: list[str], *, requester_tokens: int, min_window: int = 10,
                 register_timeout: float = 600.0) -> Iterator[AnvilMarket]:
    """Start anvil, deploy, start the node processes (workers: (name, price per second[,
    more `morphware node` options])) and the requester; yield once every node is registered;
    stop everything on exit."""
    from morphware.contracts import MarketClient, anvil_accounts, deploy, start_anvil
    from morphware.runtime.node.daemon import NodeConfig
    from morphware.runtime.node.keystore import NodeKey
    from morphware.runtime.node.market_adapter import ContractsMarket
    from morphware.runtime.node.roles import build_node
    from web3 import Web3

    cast = [(w[0], "worker", ["--price-per-s", str(w[1]), "--train-backend", "cpu",
                              *(w[2] if len(w) > 2 else [])])  # type: ignore[misc]
            for w in workers] + [(n, "validator", ["--eval-backend", "cpu"])
                                    for n in validators]
    proc, url = start_anvil(n_accounts=len(cast) + 4)
    procs: list[subprocess.Popen] = []
    req = None
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        w3.provider.make_request("evm_setIntervalMining", [1])
        accts = anvil_accounts(len(cast) + 2)
        dep = deploy(w3, accts[0], dev=True, min_stake=TOKEN, min_window=min_window,
                     draw_delay=1)
        dep_file = dep.save(tmp / "deployment.json")
        procs = _spawn(tmp, url, dep_file, cast, accts[2:])
        market = ContractsMarket(MarketClient.connect(url, str(dep_file), accts[1].key.hex()))
        market.fund(requester_tokens)
        cfg = NodeConfig(roles=("requester",), data_dir=tmp / "requester",
                         peers_dir=tmp / "peers", poll_interval=0.2, name="requester",
                         action_threads=8)
        req = build_node(NodeKey(accts[1].address, bytes(accts[1].key)), market, cfg)
        req.store.set_meta("start_block", str(dep.block))
        req.start()
        names = {a.address.lower(): n for a, n in zip(
            accts[1:], ["requester", *(c[0] for c in cast)], strict=False)}
        client = MarketClient(w3, dep, accts[0])
        end = time.monotonic() + register_timeout
        while not all(int(client.account_info(a.address).roles) for a in accts[2:]):
            dead = [c[0] for c, p in zip(cast, procs, strict=True) if p.poll() is not None]
            if dead or time.monotonic() > end:
                tail = "".join((tmp / f"{n}.log").read_text()[-600:] for n in dead[:1])
                raise RuntimeError(f"node processes did not register ({', '.join(dead) or 'timed out'}"
                                   f"); logs in {tmp}; {tail}")
            time.sleep(1)
        yield AnvilMarket(w3, dep, req, names, tmp)
    finally:
        if req is not None:
            req.stop()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        proc.terminate()
        proc.wait(timeout=10)


def txs_per_block(w3: Any, first: int, last: int, names: dict[str, str]) -> dict[str, int]:
    """Per node: the most transactions it had in one block of [first, last]."""
    best: dict[str, int] = {}
    for n in range(first, last + 1):
        per: dict[str, int] = {}
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            who = names.get(str(tx["from"]).lower())
            if who:
                per[who] = per.get(who, 0) + 1
        for who, c in per.items():
            best[who] = max(best.get(who, 0), c)
    return best
