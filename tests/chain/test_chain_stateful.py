"""Property-based test: random sequences of every market action over several jobs.

After every step: tokens are conserved (total supply = every holder's balance) and the market's
token balance equals what it owes (free balances + stakes + funds held per job). At the end of each
run, every deadline is let pass, an outsider moves every job to its end, everyone unstakes, and
every party withdraws what it is owed: the market must be left holding nothing.

Two kinds of rules: ``progress`` does the next honest step of a job (so runs reach late phases),
the others are arbitrary actions by arbitrary parties, which the contract may refuse."""

from __future__ import annotations

from typing import Any

import pytest
from chain_testlib import (
    COOLDOWN,
    MIN_STAKE,
    TOKEN,
    WINDOW,
    Market,
    deploy_balance_reader,
    shared_market,
    terms,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from morphware.contracts import ContractError, MarketClient, Phase, Role

MAX_JOBS = 3
_READER: list[Any] = []


def reader(m: Market) -> Any:
    if not _READER:
        _READER.append(deploy_balance_reader(m))
    return _READER[0]


job_params = st.fixed_dictionaries({
    "r": st.integers(0, 1), "n_val": st.integers(1, 4), "max_price": st.integers(1, 100),
    "fee": st.integers(0, 3), "stake": st.integers(0, 10), "lower": st.booleans(),
})


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m: Market = shared_market()
        self.reader = reader(self.m)
        self.snap = self.m.ctl.snapshot()
        self.jobs: list[int] = []
        self.bids: dict[tuple[int, str], tuple[int, bytes]] = {}
        self.metrics: dict[tuple[int, str], tuple[int, bytes]] = {}
        self.drawn: dict[int, list[str]] = {}
        self.holders = [c.address for c in self.m.everyone] + [self.m.deployment.market]
        self.supply = self.m.deployer.token.functions.totalSupply().call()
        self.ok = 0

    # ------------------------------------------------------------ helpers

    def attempt(self, fn: Any, *args: Any) -> bool:
        """Run one action; the contract may legitimately refuse it (that is part of the test)."""
        try:
            receipt = fn(*args)
        except ContractError:
            return False
        self.ok += 1
        for e in getattr(receipt, "events", []):
            if e.name == "ValidatorsDrawn":
                self.drawn[e.job] = list(e.args["validators"])
        return True

    def job(self, i: int) -> int:
        return self.jobs[i % len(self.jobs)]

    def by_address(self, clients: list[MarketClient], address: str) -> MarketClient:
        return next(c for c in clients if c.address == address)

    def do_post(self, p: dict[str, int]) -> None:
        t = terms(n_validators=p["n_val"], max_price=p["max_price"] * TOKEN,
                  validator_fee=p["fee"] * TOKEN, bid_stake=p["stake"] * TOKEN,
                  lower_is_better=bool(p["lower"]), threshold=500_000)
        try:
            self.jobs.append(self.m.requesters[p["r"]].post_job(t))
        except ContractError:
            return
        self.ok += 1

    def do_commit_bid(self, job: int, w: int, price: int) -> None:
        worker = self.m.workers[w]
        salt = bytes([w + 1]) * 32
        if self.attempt(worker.commit_bid, job, price, salt):
            self.bids[(job, worker.address)] = (price, salt)

    def do_commit_metric(self, job: int, validator: MarketClient, fixed: int) -> None:
        salt = bytes([self.m.validators.index(validator) + 9]) * 32
        if self.attempt(validator.commit_metric, job, fixed, salt):
            self.metrics[(job, validator.address)] = (fixed, salt)

    # ------------------------------------------------------------ rules

    @initialize(first=job_params, second=job_params)
    def open_jobs(self, first: dict[str, int], second: dict[str, int]) -> None:
        assert self.m.deployer.job_count() == 0
        self.do_post(first)
        self.do_post(second)

    @precondition(lambda self: len(self.jobs) < MAX_JOBS)
    @rule(p=job_params)
    def post(self, p: dict[str, int]) -> None:
        self.do_post(p)

    def step_job(self, job: int, mask: int, prices: list[int], skip_wait: bool) -> None:
        """Do a job's whole current phase honestly, except that the parties whose bit is clear in
        ``mask`` stay silent; if that did not end the phase (and not ``skip_wait``), let its
        deadline pass and advance the job."""
        st_ = self.m.deployer.job(job)
        now = self.m.ctl.now()
        if st_.phase is Phase.BIDDING and now < st_.deadline:
            for w, price in enumerate(prices):
                if mask >> w & 1:  # asks spread over 0..max price (some above it)
                    self.do_commit_bid(job, w, price * st_.max_price // 100)
        elif st_.phase is Phase.BIDDING:
            sealed = [(k, v) for k, v in sorted(self.bids.items()) if k[0] == job]
            for i, ((_, addr), (price, salt)) in enumerate(sealed):
                if mask >> i & 1:
                    self.attempt(self.by_address(self.m.workers, addr).reveal_bid, job, price, salt)
            self.attempt(self.m.outsider.finalize, job)
        elif st_.phase is Phase.AWAITING_KEY and mask & 1:
            self.attempt(self.by_address(self.m.requesters, st_.requester).release_key, job, b"k")
        elif st_.phase is Phase.WORKING and mask & 1:
            worker = self.by_address(self.m.workers, st_.winner)
            self.attempt(worker.submit_result, job, b"\x33" * 32, "magnet:?xt=urn:btih:r")
        elif st_.phase is Phase.COMMIT:
            for i, addr in enumerate(self.drawn.get(job, [])):
                if mask >> i & 1:
                    validator = self.by_address(self.m.validators, addr)
                    self.do_commit_metric(job, validator, prices[i] * 8_000)
        elif st_.phase is Phase.REVEAL:
            sealed = [(k, v) for k, v in sorted(self.metrics.items()) if k[0] == job]
            for i, ((_, addr), (fixed, salt)) in enumerate(sealed):
                if mask >> i & 1:
                    validator = self.by_address(self.m.validators, addr)
                    self.attempt(validator.reveal_metric, job, fixed, salt)
        if not skip_wait and self.m.deployer.job(job).phase is st_.phase:
            # Nobody moved the job on: let its deadline pass and have an outsider advance it.
            self.m.ctl.advance_time(WINDOW + 1)
            self.attempt(self.m.outsider.advance, job)

    progress_args = dict(
        j=st.integers(0, MAX_JOBS), mask=st.integers(0, 31),
        prices=st.lists(st.integers(0, 120), min_size=5, max_size=5), skip_wait=st.booleans(),
    )

    @precondition(lambda self: self.jobs)
    @rule(**progress_args)
    def progress(self, j: int, mask: int, prices: list[int], skip_wait: bool) -> None:
        self.step_job(self.job(j), mask, prices, skip_wait)

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), masks=st.lists(st.sampled_from([31, 31, 30, 15, 7, 1, 0]),
          min_size=8, max_size=8), prices=progress_args["prices"])
    def run_to_end(self, j: int, masks: list[int], prices: list[int]) -> None:
        """Drive one job phase after phase to its end (mostly honest parties, some dropouts)."""
        job = self.job(j)
        for mask in masks:
            if self.m.deployer.job(job).phase is Phase.CLOSED:
                break
            self.step_job(job, mask, prices, skip_wait=False)

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), w=st.integers(0, 4), price=st.integers(0, 120))
    def commit_bid(self, j: int, w: int, price: int) -> None:
        self.do_commit_bid(self.job(j), w, price * TOKEN)

    @precondition(lambda self: self.bids)
    @rule(k=st.integers(0, 50), honest=st.booleans(), imposter=st.booleans())
    def reveal_bid(self, k: int, honest: bool, imposter: bool) -> None:
        (job, addr), (price, salt) = sorted(self.bids.items())[k % len(self.bids)]
        worker = self.by_address(self.m.workers, addr)
        if imposter:
            worker = self.m.workers[(self.m.workers.index(worker) + 1) % len(self.m.workers)]
        self.attempt(worker.reveal_bid, job, price if honest else price + 1, salt)

    @rule(seconds=st.sampled_from([20, WINDOW // 2, WINDOW + 1, 3 * WINDOW]))
    def time_passes(self, seconds: int) -> None:
        self.m.ctl.advance_time(seconds)

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), how=st.sampled_from(["advance", "finalize", "settle"]))
    def outsider_moves(self, j: int, how: str) -> None:
        self.attempt(getattr(self.m.outsider, how), self.job(j))

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), r=st.integers(0, 1))
    def release_key(self, j: int, r: int) -> None:
        self.attempt(self.m.requesters[r].release_key, self.job(j), b"\x05" * 129)

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), w=st.integers(0, 4))
    def submit_result(self, j: int, w: int) -> None:
        self.attempt(self.m.workers[w].submit_result, self.job(j), b"\x33" * 32, "magnet:r")

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), v=st.integers(0, 3), metric=st.integers(0, 1000))
    def commit_metric(self, j: int, v: int, metric: int) -> None:
        self.do_commit_metric(self.job(j), self.m.validators[v], metric * 1000)

    @precondition(lambda self: self.metrics)
    @rule(k=st.integers(0, 50), honest=st.booleans())
    def reveal_metric(self, k: int, honest: bool) -> None:
        (job, addr), (fixed, salt) = sorted(self.metrics.items())[k % len(self.metrics)]
        validator = self.by_address(self.m.validators, addr)
        self.attempt(validator.reveal_metric, job, fixed if honest else fixed + 1, salt)

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), v=st.integers(0, 3))
    def slash_validator(self, j: int, v: int) -> None:
        self.attempt(self.m.outsider.slash_validator, self.job(j), self.m.validators[v].address)

    @rule(who=st.integers(0, 11), share=st.sampled_from([1, 2, 4]))
    def withdraw(self, who: int, share: int) -> None:
        c = self.m.everyone[who % len(self.m.everyone)]
        amount = c.balance() // share
        if amount:
            assert self.attempt(c.withdraw, amount)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 50))
    def deposit(self, who: int, amount: int) -> None:
        self.attempt(self.m.requesters[who].deposit, amount * TOKEN)

    @rule(v=st.integers(0, 3), leave=st.booleans())
    def validator_membership(self, v: int, leave: bool) -> None:
        c = self.m.validators[v]
        if leave:
            self.attempt(c.request_unstake)
        else:
            self.attempt(c.register, Role.VALIDATOR, MIN_STAKE)

    # ------------------------------------------------------------ invariants

    @invariant()
    def tokens_conserved_and_market_solvent(self) -> None:
        held = self.reader.functions.total_of(self.m.deployment.token, self.holders).call()
        assert held == self.supply
        market = self.m.deployer.token_balance(self.m.deployment.market)
        assert market == self.m.liabilities(len(self.jobs))

    # ------------------------------------------------------------ end of a run

    def drain(self) -> None:
        """Let every deadline pass; anyone closes every job; everyone unstakes and withdraws."""
        m = self.m
        for c in m.everyone:
            if c.account_info().roles:
                c.request_unstake()
        for _ in range(6):
            m.ctl.advance_time(3 * WINDOW)
            for job in self.jobs:
                if m.deployer.job(job).phase is not Phase.CLOSED:
                    m.outsider.advance(job)
        assert all(m.deployer.job(j).phase is Phase.CLOSED for j in self.jobs)
        assert all(m.deployer.job_held(j) == 0 for j in self.jobs)
        m.ctl.advance_time(COOLDOWN + 1)
        for c in m.everyone:
            if c.stake():
                c.unstake()
            if c.balance():
                c.withdraw()
        assert m.deployer.token_balance(m.deployment.market) == 0

    def teardown(self) -> None:
        print(f"stateful run: {self.ok} accepted actions, {len(self.jobs)} jobs, "
              f"phases {[self.m.deployer.job(j).phase.name for j in self.jobs]}")
        try:
            self.drain()
        finally:
            self.m.ctl.revert(self.snap)


MarketMachine.TestCase.settings = settings(
    max_examples=5, stateful_step_count=20, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMarketStateful = pytest.mark.chain(MarketMachine.TestCase)
