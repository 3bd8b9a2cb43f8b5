"""The embedded chain as a live chain (``embedded_chain(block_time=1)``): transactions sent in
one block period share a block, every sender gets its receipt, the chain clock follows the wall
clock however many transactions arrive, and the test controls still move it. Plus the chain id,
asked once per connection instead of before every call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from chain_testlib import TOKEN
from morphware.contracts import ChainControl, MarketClient, deploy, embedded_chain
from morphware.contracts.chain import EmbeddedChain
from morphware.contracts.rpc import count_rpc

pytestmark = [pytest.mark.chain]


@pytest.fixture
def live() -> Iterator[tuple[EmbeddedChain, list[MarketClient]]]:
    chain = embedded_chain(6)
    dep = deploy(chain.w3, chain.accounts[0], dev=True)
    chain.produce_blocks(1)
    try:
        yield chain, [MarketClient(chain.w3, dep, a) for a in chain.accounts[1:]]
    finally:
        chain.close()


def _latest(chain: EmbeddedChain) -> tuple[int, int]:
    with chain.lock:
        block = chain.w3.eth.get_block("latest")
    return int(block["timestamp"]), int(block["number"])


def _fire(sends: list[tuple[float, MarketClient]]) -> tuple[list, list]:
    """Each (delay, client) sends a 1-token faucet transaction from its own thread at t0 +
    delay; returns (receipts, errors)."""
    t0 = time.monotonic()
    receipts, errors = [], []

    def one(delay: float, client: MarketClient) -> None:
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        try:
            receipts.append(client.faucet(TOKEN))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=one, args=s) for s in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return receipts, errors


def test_a_burst_from_several_threads_shares_blocks_and_the_clock_keeps_wall_time(live):
    chain, clients = live
    senders = clients[:4]
    _, first = _latest(chain)
    # 16 transactions in 2 s from 4 accounts, each from its own thread: up to 4 in flight per
    # account (consecutive nonces in one block)
    receipts, errors = _fire([(k * 2.0 / 16, senders[k % 4]) for k in range(16)])
    assert not errors, errors
    assert len(receipts) == 16 and len({r.tx_hash for r in receipts}) == 16
    stamp, last = _latest(chain)
    assert abs(stamp - time.time()) <= 2.0  # plain eth-tester: ~15 s ahead after this burst
    blocks = {r.block_number for r in receipts}
    assert len(blocks) <= 5 and last - first <= 5  # about one block a second, not one a tx
    for c in senders:
        assert c.token_balance() == 4 * TOKEN
        assert chain.w3.eth.get_transaction_count(c.address) == 4


def test_threads_of_one_account_get_distinct_nonces_in_one_block(live):
    chain, clients = live
    receipts, errors = _fire([(0.0, clients[0])] * 6)
    assert not errors, errors
    assert clients[0].token_balance() == 6 * TOKEN
    assert chain.w3.eth.get_transaction_count(clients[0].address) == 6
    assert len({r.block_number for r in receipts}) <= 2  # one, or two across a block boundary


def test_a_caller_holding_the_chain_lock_gets_its_block_at_once(live):
    chain, clients = live
    t0 = time.monotonic()
    with chain.lock:  # the producer cannot mine meanwhile: the sender mines its own block
        receipt = clients[0].faucet(TOKEN)
    assert receipt.block_number == _latest(chain)[1]
    assert time.monotonic() - t0 < 5


def test_controls_move_the_live_chain_and_it_ticks_on_at_wall_pace(live):
    chain, clients = live
    ctl = ChainControl(chain.w3)
    before = ctl.now()
    with chain.lock:
        ctl.advance_time(60)
    assert ctl.now() >= before + 60
    lead = ctl.now() - time.time()
    assert lead > 55
    clients[0].faucet(TOKEN)  # mined by the producer after the jump
    time.sleep(2.5)
    assert abs((ctl.now() - time.time()) - lead) <= 2.0  # kept its lead, no faster
    with chain.lock:
        n = chain.w3.eth.block_number
        ctl.mine()
        assert chain.w3.eth.block_number == n + 1
        snap = ctl.snapshot()
    clients[0].faucet(TOKEN)
    assert clients[0].token_balance() == 2 * TOKEN
    with chain.lock:
        ctl.revert(snap)
    assert clients[0].token_balance() == TOKEN
    clients[0].faucet(TOKEN)  # nonces recover after the revert
    assert clients[0].token_balance() == 2 * TOKEN


def test_close_mines_what_is_pending_and_returns_to_a_block_per_transaction(live):
    chain, clients = live
    chain.close()
    _, n = _latest(chain)
    receipt = clients[0].faucet(TOKEN)
    assert receipt.block_number == n + 1 == _latest(chain)[1]


def test_the_chain_id_is_asked_once_per_connection():
    from web3 import EthereumTesterProvider, Web3

    chain = embedded_chain(3)
    counter = count_rpc(chain.w3)
    dep = deploy(chain.w3, chain.accounts[0], dev=True)
    alice = MarketClient(chain.w3, dep, chain.accounts[1])
    for _ in range(3):
        alice.faucet(TOKEN)
        alice.token_balance()
    alice.approve()
    assert alice.job_count() == 0
    assert counter.total(method="eth_chainId") == 1
    assert counter.total() > 20

    # what web3 does on its own: the chain id again before every call and transaction build
    plain = Web3(EthereumTesterProvider(chain.w3.provider.ethereum_tester))
    plain_counter = count_rpc(plain)
    token = plain.eth.contract(address=dep.token, abi=dep.token_abi)
    for _ in range(3):
        token.functions.balanceOf(alice.address).call()
    assert plain_counter.total(method="eth_chainId") >= 3


def test_a_full_pending_block_is_mined_and_the_transaction_goes_into_the_next(live, monkeypatch):
    from morphware.contracts import tx

    chain, clients = live
    with chain.lock:
        limit = int(chain.w3.eth.get_block("pending")["gasLimit"])
    monkeypatch.setattr(tx, "EMBEDDED_GAS", limit - 10_000)  # two never fit in one block
    receipts, errors = _fire([(0.0, c) for c in clients[:3]])
    assert not errors, errors
    assert len({r.block_number for r in receipts}) == 3


def test_log_queries_read_each_block_once_and_answer_as_eth_tester_does(live):
    from eth_tester import EthereumTester

    chain, clients = live
    receipts, errors = _fire([(0.0, c) for c in clients] * 2)  # several transactions a block
    assert not errors, errors
    chain.close()
    tester, dep = chain.tester, clients[0].deployment
    head = chain.w3.eth.block_number
    for params in ({"from_block": 0, "to_block": head},
                   {"from_block": min(r.block_number for r in receipts), "to_block": "latest",
                    "address": dep.token},
                   {"from_block": 1, "to_block": head, "address": [dep.token, dep.market],
                    "topics": [None, "0x" + "00" * 32]}):
        ours = tester.get_logs(**params)
        assert ours and ours == EthereumTester.get_logs(tester, **params)
    assert len(tester.get_logs(from_block=0, to_block=head)) >= len(receipts)
