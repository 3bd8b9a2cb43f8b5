"""Property-based test: random sequences of every market action over several jobs.

After every step: tokens are conserved (total supply, which burns lower, = every holder's
balance) and the market's token balance equals what it owes (free balances + stakes + funds held
per job). At the end of each run, every deadline is let pass, an outsider moves every job to its
end, every silent validator is slashed, everyone unstakes, and every party withdraws what it is
owed: the market must be left holding nothing. Actions include cheating ones (silence in any
phase, false verdicts, declined verdicts, wrong reveals, bogus keys rejected by the worker).

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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import Phase as Stage
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from morphware.contracts import (
    DATA_UNUSABLE,
    DECLINED,
    MODEL_UNUSABLE,
    ContractError,
    MarketClient,
    Phase,
    Role,
    to_fixed,
)

MAX_JOBS = 3
VERDICT_KINDS = {"pass": 900_000, "fail": 100_000, "model": MODEL_UNUSABLE,
                 "data": DATA_UNUSABLE, "declined": DECLINED, "silent": -1}
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
        stake = max(p["stake"], p["n_val"] * p["fee"], 1)
        t = terms(n_validators=p["n_val"], max_price=p["max_price"] * TOKEN,
                  validator_fee=p["fee"] * TOKEN, bid_stake=stake * TOKEN,
                  lower_is_better=bool(p["lower"]), threshold=500_000)
        try:
            self.jobs.append(self.m.requesters[p["r"]].post_job(t))
        except (ContractError, ValueError):
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
            if mask & 2:
                self.attempt(worker.submit_result, job, b"\x33" * 32, "magnet:?xt=urn:btih:r")
            else:  # the data key did not open the data
                self.attempt(worker.reject_key, job)
        elif st_.phase is Phase.DRAWING:
            self.m.ctl.mine()
            self.m.ctl.mine()
            self.m.ctl.mine()
            self.attempt(self.m.outsider.draw, job)
        elif st_.phase is Phase.COMMIT:
            for i, addr in enumerate(self.drawn.get(job, [])):
                if mask >> i & 1:
                    validator = self.by_address(self.m.validators, addr)
                    verdict = [MODEL_UNUSABLE, DATA_UNUSABLE, DECLINED,
                               prices[i] * 8_000][prices[i] % 4]
                    self.do_commit_metric(job, validator, verdict)
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
    @rule(j=st.integers(0, MAX_JOBS),
          verdicts=st.lists(st.sampled_from(list(VERDICT_KINDS)), min_size=4, max_size=4),
          reveal_mask=st.integers(0, 15))
    def validate(self, j: int, verdicts: list[str], reveal_mask: int) -> None:
        """Drive one job honestly to its verdict commit (if it gets there: random runs seldom
        do), then each drawn validator commits a verdict of its kind (a passing or failing
        metric, a sentinel, DECLINED) or stays silent, and reveals it if its bit is set."""
        job = self.job(j)
        for _ in range(8):
            if self.m.deployer.job(job).phase in (Phase.COMMIT, Phase.REVEAL, Phase.CLOSED):
                break
            self.step_job(job, 31, [30] * 5, skip_wait=False)
        if self.m.deployer.job(job).phase is not Phase.COMMIT:
            return
        drawn = self.drawn.get(job, [])
        for addr, kind in zip(drawn, verdicts, strict=False):
            if kind != "silent":
                self.do_commit_metric(job, self.by_address(self.m.validators, addr),
                                      VERDICT_KINDS[kind])
        if self.m.deployer.job(job).phase is Phase.COMMIT:
            self.m.ctl.advance_time(WINDOW + 1)
        for i, addr in enumerate(drawn):
            if reveal_mask >> i & 1 and (job, addr) in self.metrics:
                fixed, salt = self.metrics[(job, addr)]
                self.attempt(self.by_address(self.m.validators, addr).reveal_metric, job, fixed,
                             salt)

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
    @rule(j=st.integers(0, MAX_JOBS), w=st.integers(0, 4))
    def reject_key(self, j: int, w: int) -> None:
        self.attempt(self.m.workers[w].reject_key, self.job(j))

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS))
    def draw(self, j: int) -> None:
        self.m.ctl.mine()
        self.attempt(self.m.outsider.draw, self.job(j))

    @precondition(lambda self: self.jobs)
    @rule(j=st.integers(0, MAX_JOBS), v=st.integers(0, 3), metric=st.integers(0, 1000),
          declined=st.booleans())
    def commit_metric(self, j: int, v: int, metric: int, declined: bool) -> None:
        """A metric, or DECLINED (the validator cannot evaluate in time)."""
        self.do_commit_metric(self.job(j), self.m.validators[v],
                              DECLINED if declined else metric * 1000)

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
        assert held == self.m.deployer.token.functions.totalSupply().call()
        market = self.m.deployer.token_balance(self.m.deployment.market)
        assert market == self.m.liabilities(len(self.jobs))

    # ------------------------------------------------------------ end of a run

    def drain(self) -> None:
        """Let every deadline pass; anyone closes every job; everyone unstakes and withdraws."""
        m = self.m
        for c in m.everyone:
            if c.account_info().roles:
                c.request_unstake()
        for _ in range(8):
            m.ctl.advance_time(3 * WINDOW)
            for job in self.jobs:
                if m.deployer.job(job).phase is not Phase.CLOSED:
                    m.outsider.advance(job)
        assert all(m.deployer.job(j).phase is Phase.CLOSED for j in self.jobs)
        assert all(m.deployer.job_held(j) == 0 for j in self.jobs)
        for job in self.jobs:  # a DECLINED reveal is no verdict: JobClosed does not count it
            (closed,) = m.deployer.events(name="JobClosed", job=job)
            verdicts = [v for v in m.deployer.metrics(job) if v != DECLINED]
            assert closed.args["n_metrics"] == len(verdicts)
        for job in self.jobs:  # a validator that stayed silent cannot leave before its slash
            for addr in self.drawn.get(job, []):
                self.attempt(m.outsider.slash_validator, job, addr)
        m.ctl.advance_time(COOLDOWN + 1)
        for c in m.everyone:
            if c.stake():
                c.unstake()
            if c.balance():
                c.withdraw()
        assert m.deployer.token_balance(m.deployment.market) == 0

    def teardown(self) -> None:
        verdicts = [v for j in self.jobs for v in self.m.deployer.metrics(j)]
        outcomes = [int(e.args["outcome"]) for j in self.jobs
                    for e in self.m.deployer.events(name="JobClosed", job=j)]
        print(f"stateful run: {self.ok} accepted actions, {len(self.jobs)} jobs, "
              f"phases {[self.m.deployer.job(j).phase.name for j in self.jobs]}, outcomes "
              f"{outcomes}, {len(verdicts)} verdicts revealed "
              f"({sum(v == DECLINED for v in verdicts)} DECLINED)")
        try:
            self.drain()
        finally:
            self.m.ctl.revert(self.snap)


MarketMachine.TestCase.settings = settings(
    max_examples=5, stateful_step_count=20, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMarketStateful = pytest.mark.chain(MarketMachine.TestCase)


# ------------------------------------------------------------------ deviators vs counterfactuals

REQUESTER_MOVES = ("honest", "no_key", "bogus_key", "no_test_keys", "shill_low", "shill_high")
WORKER_MOVES = ("honest", "no_reveal", "garbage", "no_result")
VALIDATOR_MOVES = ("honest", "silent", "no_reveal", "lie", "decline")
ASKS = (40, 60)  # the would-be winner and an honest competitor


class Run:
    """One job played from a snapshot with a strategy per party; payoffs in tokens.

    A requester values a model that passed validation at what it escrowed for it (max price +
    fees); everybody else values tokens only. Conservation and solvency are checked after every
    transaction of the run."""

    def __init__(self, m: Market, req_move: str, worker_move: str, val_move: str, liar: int) -> None:
        self.m, self.req_move, self.worker_move = m, req_move, worker_move
        self.val_move, self.liar = val_move, liar
        self.deviant_validator = ""
        self.slot = ""  # the validator drawn at position `liar` (draws differ between runs)
        self.reader = reader(m)
        self.holders = [c.address for c in m.everyone] + [m.deployment.token, m.deployment.market]

    def check(self) -> None:
        m = self.m
        held = self.reader.functions.total_of(m.deployment.token, self.holders).call()
        assert held == m.deployer.token.functions.totalSupply().call()
        assert m.deployer.token_balance(m.deployment.market) == m.liabilities()

    def play(self) -> dict[str, int]:
        m = self.m
        snap = m.ctl.snapshot()
        try:
            return self._play()
        finally:
            m.ctl.revert(snap)

    def _play(self) -> dict[str, int]:
        m, t = self.m, terms()
        req, honest_w, rival, shill = m.requesters[0], m.workers[0], m.workers[1], m.workers[4]
        start = {c.address: c.token_balance() + c.balance() + c.stake() for c in m.everyone}
        job = req.post_job(t)
        bids = {honest_w: ASKS[0] * TOKEN, rival: ASKS[1] * TOKEN}
        if self.req_move.startswith("shill"):  # the requester's sybil bids below or between
            bids[shill] = (30 if self.req_move == "shill_low" else 50) * TOKEN
        salts = {c: c.commit_bid(job, p) for c, p in bids.items()}
        self.check()
        m.ctl.advance_time(WINDOW + 1)
        for c, p in bids.items():
            if not (c is honest_w and self.worker_move == "no_reveal"):
                c.reveal_bid(job, p, salts[c])
        m.ctl.advance_time(WINDOW + 1)
        m.outsider.advance(job)
        self.check()
        st = req.job(job)
        winner = next(c for c in bids if c.address == st.winner)
        self._work(job, req, winner, shill)
        self.check()
        closed = req.events(name="JobClosed", job=job)[0]
        for v in m.deployer.validators_of(job):
            if m.deployer.validator_slot(job, v) not in (REVEALED_SLOT, SLASHED_SLOT):
                m.outsider.slash_validator(job, v)
        self.check()
        pay = {a: c.token_balance() + c.balance() + c.stake() - start[a]
               for a, c in ((c.address, c) for c in m.everyone)}
        if int(closed.args["outcome"]) == 4:  # ACCEPTED: the requester holds a validated model
            pay[req.address] += t.max_price + t.n_validators * t.validator_fee
        pay["requester+sybil"] = pay[req.address] + pay[shill.address]
        pay["deviant_validator"] = self.deviant_validator  # type: ignore[assignment]
        pay["slot"] = pay[self.slot] if self.slot else 0
        return pay

    def _work(self, job: int, req: MarketClient, winner: MarketClient, shill: MarketClient) -> None:
        m = self.m
        if self.req_move == "no_key":
            m.ctl.advance_time(WINDOW + 1)
            m.outsider.advance(job)
            return
        req.release_key(job, b"\x01" * 129)
        deviant = winner is m.workers[0] and self.worker_move in ("garbage", "no_result")
        if winner is shill or (deviant and self.worker_move == "no_result"):
            m.ctl.advance_time(WINDOW + 1)  # nobody delivers
            m.outsider.advance(job)
            return
        if self.req_move == "bogus_key" and not deviant:
            winner.reject_key(job)  # an honest worker cannot open the data: neutral end
            return
        garbage = deviant or self.req_move == "bogus_key"
        winner.submit_result(job, (b"\x66" if garbage else b"\x22") * 32, "magnet:?xt=urn:btih:r")
        while m.deployer.block_number() <= req.job(job).deadline:
            m.ctl.mine()
        m.outsider.draw(job)
        self.check()
        drawn = [self.by_address(a) for a in m.deployer.validators_of(job)]
        keys = self.req_move != "no_test_keys"
        if keys:
            req.release_test_keys(job, {v.address: b"k" for v in drawn})
        truth = DATA_UNUSABLE if not keys else MODEL_UNUSABLE if garbage else to_fixed(0.95)
        salts = {}
        if self.liar < len(drawn):
            self.slot = drawn[self.liar].address
            if self.val_move != "honest":
                self.deviant_validator = self.slot
        for i, v in enumerate(drawn):
            move = self.val_move if i == self.liar else "honest"
            if move == "silent":
                continue
            said = (MODEL_UNUSABLE if truth != MODEL_UNUSABLE else to_fixed(0.95)) \
                if move == "lie" else DECLINED if move == "decline" else truth
            salts[v] = (said, v.commit_metric(job, said), move)
        if req.job(job).phase is Phase.COMMIT:  # someone stayed silent: wait out the commits
            m.ctl.advance_time(WINDOW + 1)
        for v, (said, salt, move) in salts.items():
            if move != "no_reveal" and req.job(job).phase is not Phase.CLOSED:
                v.reveal_metric(job, said, salt)
        if req.job(job).phase is not Phase.CLOSED:
            m.ctl.advance_time(WINDOW + 1)
            m.outsider.advance(job)

    def by_address(self, address: str) -> MarketClient:
        return next(c for c in self.m.validators if c.address == address)


REVEALED_SLOT = (2).to_bytes(32, "big")
SLASHED_SLOT = (3).to_bytes(32, "big")


@pytest.mark.chain
@pytest.mark.slow
@settings(max_examples=8, deadline=None, derandomize=True,
          phases=[Stage.explicit, Stage.generate], suppress_health_check=[HealthCheck.too_slow])
@given(req_move=st.sampled_from(REQUESTER_MOVES), worker_move=st.sampled_from(WORKER_MOVES),
       val_move=st.sampled_from(VALIDATOR_MOVES), liar=st.integers(0, 2))
@example(req_move="honest", worker_move="honest", val_move="decline", liar=1)
@example(req_move="honest", worker_move="garbage", val_move="decline", liar=0)
def test_no_deviation_pays_and_no_honest_party_loses(req_move: str, worker_move: str,
                                                     val_move: str, liar: int) -> None:
    """Each party plays honestly or one deviation (at most one validator deviates: a colluding
    majority of drawn validators is a documented residual risk). Every deviator ends with no more
    than it would have had playing honestly against the same others; every honest party ends
    with at least what it put in."""
    m = shared_market()
    played = Run(m, req_move, worker_move, val_move, liar).play()
    req, w0 = m.requesters[0].address, m.workers[0].address
    honest_profile = {"req": req_move == "honest", "worker": worker_move == "honest",
                      "val": val_move == "honest"}
    if not honest_profile["req"]:
        cf = Run(m, "honest", worker_move, val_move, liar).play()
        assert played["requester+sybil"] <= cf["requester+sybil"], (req_move, played, cf)
    else:
        assert played[req] >= 0
    if not honest_profile["worker"]:
        cf = Run(m, req_move, "honest", val_move, liar).play()
        assert played[w0] <= cf[w0], (worker_move, played, cf)
    else:
        assert played[w0] >= 0
    if not honest_profile["val"]:
        cf = Run(m, req_move, worker_move, "honest", liar).play()
        assert played["slot"] <= cf["slot"], (val_move, played, cf)
    for v in m.validators:
        if v.address != played["deviant_validator"]:
            assert played[v.address] >= 0
    assert played[m.workers[1].address] >= 0  # the honest rival never loses
