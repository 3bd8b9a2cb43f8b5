"""The end-to-end job against anvil over HTTP JSON-RPC, with locally signed transactions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from chain_testlib import (
    DRAW_DELAY,
    MIN_STAKE,
    MIN_WINDOW,
    TOKEN,
    client_of,
    run_to_validation,
    terms,
    validate,
)
from morphware.contracts import (
    ChainControl,
    ContractError,
    Deployment,
    MarketClient,
    Outcome,
    Role,
    anvil_accounts,
    anvil_bin,
    deploy,
    start_anvil,
)

pytestmark = [pytest.mark.chain, pytest.mark.integration]


@pytest.fixture(scope="module")
def anvil_url() -> Iterator[str]:
    if anvil_bin() is None:
        pytest.skip("anvil is not installed (npm install --prefix tools @foundry-rs/anvil)")
    proc, url = start_anvil()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_full_job_on_anvil(anvil_url: str, tmp_path) -> None:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    accounts = anvil_accounts(10)
    dep = deploy(w3, accounts[0], dev=True, min_stake=MIN_STAKE, min_window=MIN_WINDOW,
                 draw_delay=DRAW_DELAY)
    path = dep.save(tmp_path / "deployment.json")
    # Each node would load the deployment file and sign with its own key.
    clients = [
        MarketClient.connect(anvil_url, Deployment.load(path), a.key.hex()) for a in accounts[1:]
    ]
    req, workers, validators = clients[0], clients[1:4], clients[4:8]
    for c in clients[:8]:
        c.faucet(1_000 * TOKEN)
        c.approve()
    for w in workers:
        w.register(Role.WORKER, MIN_STAKE)
    for v in validators:
        v.register(Role.VALIDATOR, MIN_STAKE)

    ctl = ChainControl(clients[0].w3)
    job = req.post_job(terms())
    with pytest.raises(ContractError, match="bidding still open"):
        workers[0].reveal_bid(job, TOKEN, b"\x00" * 32)
    bids = {workers[0]: 40 * TOKEN, workers[1]: 30 * TOKEN, workers[2]: 55 * TOKEN}
    worker = run_to_validation(ctl, req, job, bids)
    assert worker is workers[1]
    drawn = [client_of(validators, a) for a in req.validators_of(job)]
    validate(job, drawn, [0.92, 0.97, 0.95])
    (closed,) = req.events(name="JobClosed", job=job)
    assert Outcome(closed.args["outcome"]) is Outcome.ACCEPTED
    assert worker.balance() == 30 * TOKEN + 5 * TOKEN  # paid its own ask, stake back
    for c in clients[:8]:
        if c.balance():
            c.withdraw()
    stakes = sum(c.stake() for c in clients)
    assert req.token_balance(dep.market) == stakes


def test_deadlines_follow_wall_clock_on_anvil_without_new_blocks(anvil_url: str) -> None:
    """A node acting after a deadline on an idle chain must not be judged by the last block's
    timestamp: transactions are checked against the pending block."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    accounts = anvil_accounts(10)
    dep = deploy(w3, accounts[0], dev=True, min_stake=MIN_STAKE, min_window=1)
    req, w = (MarketClient(w3, dep, a) for a in accounts[8:10])
    for c in (req, w):
        c.faucet(200 * TOKEN)
        c.approve()
    w.register(Role.WORKER | Role.VALIDATOR, MIN_STAKE)
    job = req.post_job(terms(bid_window=1, reveal_window=30, n_validators=1))
    salt = w.commit_bid(job, TOKEN)
    deadline = req.job(job).deadline
    for _ in range(50):  # bounded: at most ~5 s
        if req.now() > deadline:
            break
        time.sleep(0.1)
    assert w3.eth.get_block("latest")["timestamp"] <= deadline  # no block since the deadline
    w.reveal_bid(job, TOKEN, salt)
    assert req.job(job).n_bid_reveals == 1


def test_the_chain_id_is_asked_once_per_connection_over_http(anvil_url: str) -> None:
    """web3 asks eth_chainId before every call, gas estimate and transaction build; a client
    asks it once per connection (answered from memory after that)."""
    from morphware.contracts.rpc import count_rpc
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil_url))
    counter = count_rpc(w3)
    accounts = anvil_accounts(10)
    dep = deploy(w3, accounts[0], dev=True, min_stake=MIN_STAKE, min_window=MIN_WINDOW)
    c = MarketClient(w3, dep, accounts[9])
    for _ in range(3):
        c.faucet(TOKEN)
        c.token_balance()
    c.approve()
    assert c.job_count() >= 0
    assert counter.total(method="eth_chainId") == 1
    assert counter.total(method="eth_call") >= 4 and counter.total(method="eth_estimateGas") >= 4
