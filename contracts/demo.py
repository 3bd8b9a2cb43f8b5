"""A scripted job through every phase of the market: used by ``morphware devnet --embedded``
as a self-check of a fresh deployment, and as a worked example of the client API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .chain import ChainControl, embedded_chain
from .client import JobTerms, MarketClient, Outcome, Role, to_fixed
from .deploy import Deployment, deploy

TOKEN = 10**18


@dataclass
class DemoResult:
    deployment: Deployment
    job: int
    outcome: Outcome
    price: int
    gas: int


def demo_job(
    requester: MarketClient,
    workers: list[MarketClient],
    validators: list[MarketClient],
    ctl: ChainControl,
    log: Callable[[str], None] = print,
) -> tuple[int, Outcome, int, int]:
    """Post, bid, reveal, release the key, submit, validate, settle, withdraw.

    Accounts must be funded, have approved the market, and be registered. Returns
    (job id, outcome, clearing price, total gas)."""
    gas = 0

    def spent(c: MarketClient) -> None:
        nonlocal gas
        gas += c.last_receipt.gas_used if c.last_receipt else 0

    terms = JobTerms(
        manifest_hash=b"\x42" * 32, metric="accuracy", threshold=to_fixed(0.9),
        max_price=100 * TOKEN, validator_fee=TOKEN, bid_stake=5 * TOKEN,
        n_validators=min(3, len(validators)), artifacts=("magnet:?xt=urn:btih:" + "0" * 40,),
    )
    job = requester.post_job(terms)
    spent(requester)
    log(f"job {job} posted by {requester.address}: max {terms.max_price / TOKEN:g} MWT")
    asks = {w: (40 + 7 * i) * TOKEN for i, w in enumerate(workers)}
    salts = {}
    for w, ask in asks.items():
        salts[w] = w.commit_bid(job, ask)
        spent(w)
    log(f"{len(asks)} sealed bids")
    ctl.advance_time(terms.bid_window + 1)
    for w, ask in asks.items():
        w.reveal_bid(job, ask, salts[w])
        spent(w)
    requester.release_key(job, b"\x00" * 129)
    spent(requester)
    state = requester.job(job)
    log(f"winner {state.winner} at {state.price / TOKEN:g} MWT; key released")
    worker = next(w for w in workers if w.address == state.winner)
    worker.submit_result(job, b"\x24" * 32, "magnet:?xt=urn:btih:" + "1" * 40)
    spent(worker)
    while worker.block_number() <= requester.job(job).deadline:  # the draw's seed block
        ctl.mine()
    worker.draw(job)
    spent(worker)
    drawn = [v for v in validators if v.address in requester.validators_of(job)]
    log(f"result submitted; validators drawn: {[v.address for v in drawn]}")
    metric = to_fixed(0.95)
    vsalts = {}
    for v in drawn:
        vsalts[v] = v.commit_metric(job, metric)
        spent(v)
    for v in drawn:
        v.reveal_metric(job, metric, vsalts[v])
        spent(v)
    (closed,) = requester.events(name="JobClosed", job=job)
    outcome = Outcome(closed.args["outcome"])
    log(f"settled: {outcome.name}, median {closed.args['median'] / 10**6:g}")
    for c in [requester, *workers, *drawn]:
        if c.balance():
            c.withdraw()
            spent(c)
    log(f"everyone withdrew; market holds {requester.token_balance(requester.deployment.market) / TOKEN:g} "
        f"MWT (stakes); job gas {gas:,}")
    return job, outcome, state.price, gas


def embedded_demo(log: Callable[[str], None] = print) -> DemoResult:
    """Deploy on a fresh in-process chain, register 5 workers and 3 validators, run demo_job."""
    chain = embedded_chain(10)
    dep = deploy(chain.w3, chain.accounts[0], dev=True, min_window=60, draw_delay=2)
    clients = [MarketClient(chain.w3, dep, a) for a in chain.accounts[1:]]
    for c in clients:
        c.faucet(1_000 * TOKEN)
        c.approve()
    requester, workers, validators = clients[0], clients[1:6], clients[6:9]
    for w in workers:
        w.register(Role.WORKER, dep.params["min_stake"])
    for v in validators:
        v.register(Role.VALIDATOR, dep.params["min_stake"])
    log(f"deployed token {dep.token} and market {dep.market} on eth-tester (chain {dep.chain_id})")
    job, outcome, price, gas = demo_job(requester, workers, validators, ChainControl(chain.w3), log)
    return DemoResult(dep, job, outcome, price, gas)
