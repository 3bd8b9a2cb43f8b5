"""A node on a chain with a long history: it reads the history once, in bounded ranges, and its
lookups and per-poll cost do not grow with the chain's age (anvil, JSON-RPC, real contracts).

The history is 2,100 blocks read with a 100-block log range (21 chunks): the same shape as a
public RPC's 2,000-block limit on a chain of 40,000 blocks, at a size anvil mines in seconds
(its mining slows down as its chain grows)."""

from __future__ import annotations

import logging

import pytest
from morphware.contracts import (
    ChainControl,
    JobTerms,
    MarketClient,
    Role,
    anvil_accounts,
    anvil_bin,
    deploy,
    start_anvil,
)
from morphware.runtime.node.daemon import NodeConfig
from morphware.runtime.node.keystore import NodeKey
from morphware.runtime.node.market_adapter import ContractsMarket
from morphware.runtime.node.roles import build_node

pytestmark = [pytest.mark.chain,
              pytest.mark.skipif(anvil_bin() is None, reason="anvil not installed (make setup)")]

TOKEN = 10**18
LOG_RANGE = 100
LONG = 10**6  # windows long enough that thousands of mined blocks never close one


def _grow_history(w3, filler: MarketClient, blocks: int, events: int) -> None:
    """``blocks`` blocks holding ``events`` market events of nobody's job (deposits)."""
    per = blocks // events
    for _ in range(events):
        filler.deposit(1)
        w3.provider.make_request("anvil_mine", [hex(per)])


def _job_with_draw(w3, req: MarketClient, worker: MarketClient) -> int:
    """Post a job and take it to the validator draw (the worker's result submitted)."""
    ctl = ChainControl(w3)
    terms = JobTerms(manifest_hash=b"\x11" * 32, metric="accuracy", threshold=500_000,
                     max_price=10 * TOKEN, validator_fee=TOKEN, bid_stake=TOKEN, n_validators=1,
                     bid_window=60, reveal_window=60, key_window=LONG, work_window=LONG,
                     commit_window=LONG, metric_reveal_window=LONG)
    job = req.post_job(terms)
    salt = worker.commit_bid(job, 5 * TOKEN)
    ctl.advance_time(61)
    worker.reveal_bid(job, 5 * TOKEN, salt)
    ctl.advance_time(61)
    req.release_key(job, b"wrapped")
    worker.submit_result(job, b"\x22" * 32, "magnet:?xt=urn:btih:" + "0" * 40)
    ctl.mine()  # the draw's seed block, then one to read its hash from
    ctl.mine()
    worker.draw(job)
    return job


def _poll_cost(node, counter) -> dict[str, int]:
    """Calls (by method) of one poll after one new block."""
    ChainControl(node.market.w3).mine()
    before = counter.by("method", node=node.name)
    node.poll_once()
    after = counter.by("method", node=node.name)
    return {m: n - before.get(m, 0) for m, n in after.items() if n != before.get(m, 0)}


def test_long_history_is_read_once_in_bounded_ranges_and_polls_stay_flat(tmp_path, caplog):
    proc, url = start_anvil()
    node = None
    try:
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(url))
        accts = anvil_accounts(5)
        dep = deploy(w3, accts[0], dev=True, min_stake=TOKEN, min_window=10, draw_delay=1)
        req, worker, filler = (MarketClient(w3, dep, a) for a in accts[1:4])
        for c in (req, worker, filler):
            c.faucet(1000 * TOKEN)
            c.approve()
        worker.register(Role.WORKER, 5 * TOKEN)
        market = ContractsMarket(MarketClient(w3, dep, accts[4]))
        market.fund(100 * TOKEN)
        cfg = NodeConfig(roles=("validator",), data_dir=tmp_path / "v", peers_dir=tmp_path / "p",
                         validator_stake=5 * TOKEN, log_range=LOG_RANGE, name="validator")
        node = build_node(NodeKey(accts[4].address, bytes(accts[4].key)), market, cfg)
        node.store.set_meta("start_block", str(dep.block))
        node.setup_roles()

        _grow_history(w3, filler, blocks=1500, events=15)
        job = _job_with_draw(w3, req, worker)
        counter = market.rpc
        with caplog.at_level(logging.INFO, logger="morphware.node"):
            node.poll_once()  # catch up on the whole history
        assert any("catching up" in r.getMessage() for r in caplog.records)
        assert node.store.last_block() == w3.eth.block_number
        assert 0 < counter.max_logs_range <= LOG_RANGE and counter.open_logs_queries == 0
        assert node.store.job(job, "validator").phase == "drawn"

        # lookups come from the index: no log query at all
        logs_before = counter.total(method="eth_getLogs")
        assert node.market.job(job).validators == (accts[4].address,)
        assert node.market.pubkey_of(worker.address) == node.index.pubkey(worker.address)
        assert counter.total(method="eth_getLogs") == logs_before

        short = _poll_cost(node, counter)
        _grow_history(w3, filler, blocks=600, events=6)
        node.poll_once()  # reads the new history, still in bounded ranges
        assert counter.max_logs_range <= LOG_RANGE and counter.open_logs_queries == 0
        long = _poll_cost(node, counter)
        assert long == short and long.get("eth_getLogs") == 1, (short, long)
        # nothing of the unrelated deposits is kept: only public keys and our job's draw
        assert node.store.count_index("drawn") == 1 and node.store.count_index("closed") == 0
    finally:
        if node is not None:
            node.stop()
        proc.terminate()
        proc.wait(timeout=10)
