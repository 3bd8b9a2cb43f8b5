"""Shared pieces of the chain tests: a deployed market with clients by role, default job terms,
and helpers that drive a job through its phases (eth-tester or anvil alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morphware.contracts import (
    ChainControl,
    Deployment,
    JobTerms,
    MarketClient,
    Outcome,
    Phase,
    Role,
    deploy,
    embedded_chain,
    to_fixed,
)
from morphware.contracts.tx import send

TOKEN = 10**18
FUNDS = 10_000 * TOKEN
MIN_STAKE = 10 * TOKEN
COOLDOWN = 7 * 86_400
SLASH_BPS = 2_000
MIN_WINDOW = 60
DRAW_DELAY = 2
MIN_BID_STAKE = TOKEN


@dataclass
class Market:
    """A deployed market and clients by role: requesters, workers (registered as workers) and
    validators (registered as validators), plus an unregistered outsider."""

    w3: object
    deployment: Deployment
    ctl: ChainControl
    deployer: MarketClient
    requesters: list[MarketClient]
    workers: list[MarketClient]
    validators: list[MarketClient]
    outsider: MarketClient
    salts: dict[tuple[int, str], bytes] = field(default_factory=dict)

    @property
    def everyone(self) -> list[MarketClient]:
        return [self.deployer, *self.requesters, *self.workers, *self.validators, self.outsider]

    def liabilities(self, jobs: int | None = None) -> int:
        """What the market owes: free balances + stakes of every account + held job funds."""
        c = self.deployer
        n = c.job_count() if jobs is None else jobs
        owed = c.holdings([x.address for x in self.everyone])
        return owed + sum(c.job_held(j) for j in range(1, n + 1))


def terms(**over: object) -> JobTerms:
    """Default job terms for tests (100 tokens max, 1 token fee, 5 tokens bid stake)."""
    base = dict(
        manifest_hash=b"\x11" * 32, metric="accuracy", threshold=to_fixed(0.9),
        max_price=100 * TOKEN, validator_fee=TOKEN, bid_stake=5 * TOKEN, n_validators=3,
        bid_window=100, reveal_window=100, key_window=100, work_window=100, commit_window=100,
        metric_reveal_window=100, artifacts=("magnet:?xt=urn:btih:" + "a" * 40,),
    )
    base.update(over)
    return JobTerms(**base)  # type: ignore[arg-type]


def deploy_balance_reader(m: Market) -> Any:
    """Deploy the test-only balance_reader.vy (sums token balances in one call)."""
    import vyper

    src = Path(__file__).with_name("balance_reader.vy")
    out = vyper.compile_code(src.read_text(), output_formats=["abi", "bytecode"])
    factory = m.w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    receipt = send(m.w3, m.deployer.account, factory.constructor(), "deploy balance_reader")
    return m.w3.eth.contract(address=receipt["contractAddress"], abi=out["abi"])


_SHARED: list[Market] = []


def shared_market() -> Market:
    """One market per test process: the fixtures and the stateful test share it (each reverts to
    a snapshot afterwards), so the deployment cost is paid once."""
    if not _SHARED:
        _SHARED.append(build_market())
    return _SHARED[0]


def build_market(n_requesters: int = 2, n_workers: int = 5, n_validators: int = 4) -> Market:
    chain = embedded_chain(2 + n_requesters + n_workers + n_validators)
    dep = deploy(chain.w3, chain.accounts[0], dev=True, min_stake=MIN_STAKE, cooldown=COOLDOWN,
                 slash_bps=SLASH_BPS, min_window=MIN_WINDOW, min_bid_stake=MIN_BID_STAKE,
                 draw_delay=DRAW_DELAY)
    clients = [MarketClient(chain.w3, dep, a) for a in chain.accounts]
    for c in clients[1:]:
        c.faucet(FUNDS)
        c.approve()
    req = clients[1:1 + n_requesters]
    wrk = clients[1 + n_requesters:1 + n_requesters + n_workers]
    val = clients[1 + n_requesters + n_workers:-1]
    for w in wrk:
        w.register(Role.WORKER, MIN_STAKE)
    for v in val:
        v.register(Role.VALIDATOR, MIN_STAKE)
    return Market(chain.w3, dep, ChainControl(chain.w3), clients[0], req, wrk, val, clients[-1])

WINDOW = 100


def client_of(clients: list[MarketClient], address: str) -> MarketClient:
    return next(c for c in clients if c.address == address)


def outcome(c: MarketClient, job: int) -> Outcome:
    (closed,) = c.events(name="JobClosed", job=job)
    return Outcome(closed.args["outcome"])


def drawn(m: Market, job: int) -> list[MarketClient]:
    """The clients of the validators drawn for ``job``, in draw order."""
    return [client_of(m.everyone, a) for a in m.deployer.validators_of(job)]


def commit_bids(job: int, bids: dict[MarketClient, int]) -> dict[MarketClient, bytes]:
    return {c: c.commit_bid(job, price) for c, price in bids.items()}


def reveal_bids(job: int, bids: dict[MarketClient, int], salts: dict[MarketClient, bytes]) -> None:
    for c, price in bids.items():
        c.reveal_bid(job, price, salts[c])


def run_auction(ctl, requester: MarketClient, job: int, bids: dict[MarketClient, int]) -> None:
    """Seal, wait out bidding, reveal every bid."""
    salts = commit_bids(job, bids)
    ctl.advance_time(WINDOW + 1)
    reveal_bids(job, bids, salts)


def draw_validators(ctl, who: MarketClient, job: int) -> None:
    """Mine up to the job's seed block and draw its validators."""
    st = who.job(job)
    assert st.phase is Phase.DRAWING, st.phase
    while who.block_number() <= st.deadline:
        ctl.mine()
    who.draw(job)


def run_to_validation(
    ctl, requester: MarketClient, job: int, bids: dict[MarketClient, int]
) -> MarketClient:
    """Auction, key release, result and draw; returns the worker. The job is then in COMMIT."""
    run_auction(ctl, requester, job, bids)
    requester.release_key(job, b"\x01" * 129)
    worker = min(bids, key=lambda c: (bids[c], int(c.address, 16)))
    worker.submit_result(job, b"\x22" * 32, "magnet:?xt=urn:btih:" + "b" * 40)
    draw_validators(ctl, worker, job)
    assert requester.job(job).phase in (Phase.COMMIT, Phase.CLOSED)
    return worker


def validate(job: int, validators: list[MarketClient], metrics: list[float]) -> None:
    """Each drawn validator commits, then reveals its metric (the last reveal settles)."""
    fixed = [to_fixed(x) for x in metrics]
    salts = [v.commit_metric(job, x) for v, x in zip(validators, fixed, strict=True)]
    for v, x, s in zip(validators, fixed, salts, strict=True):
        v.reveal_metric(job, x, s)


def deploy_tree_harness(m: Market) -> Any:
    """Deploy the test-only tree_harness.vy (the registry's draw tree behind plain calls)."""
    import vyper
    from morphware.contracts.compile import VYPER_DIR
    from vyper.cli.vyper_compile import get_search_paths
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.settings import Settings

    src = Path(__file__).with_name("tree_harness.vy")
    bundle = FilesystemInputBundle([VYPER_DIR, *get_search_paths()])
    out = vyper.compile_code(src.read_text(), contract_path=src, input_bundle=bundle,
                             output_formats=["abi", "bytecode"],
                             settings=Settings(evm_version="cancun"))
    factory = m.w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])
    receipt = send(m.w3, m.deployer.account, factory.constructor(m.deployment.token),
                   "deploy tree_harness")
    return m.w3.eth.contract(address=receipt["contractAddress"], abi=out["abi"])
