"""A drawn validator that cannot evaluate in time reveals DECLINED: it is paid nothing (its fee
goes back to the requester at settlement), it is never slashable (it revealed), and its reveal is
no vote; if every revealed verdict is DECLINED the job ends NO_VERDICT as if nobody had revealed."""

from __future__ import annotations

from dataclasses import replace

import pytest
from chain_testlib import (
    MIN_STAKE,
    SLASH_BPS,
    TOKEN,
    WINDOW,
    Market,
    drawn,
    outcome,
    run_to_validation,
    terms,
)
from morphware.contracts import (
    DATA_UNUSABLE,
    DECLINED,
    MAX_METRIC,
    MODEL_UNUSABLE,
    ContractError,
    MarketClient,
    Outcome,
    Phase,
    to_fixed,
)

pytestmark = pytest.mark.chain

ASK = 10 * TOKEN
STAKE = 5 * TOKEN  # terms()' bid stake
FEE = TOKEN


def _supply(m: Market) -> int:
    return m.deployer.token.functions.totalSupply().call()


def _solvent(m: Market) -> None:
    assert m.deployer.token_balance(m.deployment.market) == m.liabilities()


def _closed(req: MarketClient, job: int) -> dict:
    (e,) = req.events(name="JobClosed", job=job)
    return dict(e.args)


def _job(m: Market, **over: object) -> tuple[MarketClient, MarketClient, int, list[MarketClient]]:
    req = m.requesters[0]
    job = req.post_job(terms(**over))
    worker = run_to_validation(m.ctl, req, job, {m.workers[0]: ASK})
    return req, worker, job, drawn(m, job)


@pytest.mark.parametrize("decline_first", [True, False])
def test_declined_reveal_gets_no_fee_and_is_not_slashable(m: Market, decline_first: bool) -> None:
    req, worker, job, (a, b, c) = _job(m)
    supply = _supply(m)
    said = {a: to_fixed(0.95), b: to_fixed(0.93), c: DECLINED}
    salts = {v: v.commit_metric(job, x) for v, x in said.items()}
    assert req.job(job).phase is Phase.REVEAL  # all three committed
    order = [c, a, b] if decline_first else [a, b, c]
    for v in order:
        assert req.job(job).phase is Phase.REVEAL
        v.reveal_metric(job, said[v], salts[v])
        _solvent(m)
    # the last reveal settled the job, whichever it was: a decline is one commit fewer to wait for
    assert outcome(req, job) is Outcome.ACCEPTED
    closed = _closed(req, job)
    assert closed["n_metrics"] == 2 and closed["median"] == (to_fixed(0.95) + to_fixed(0.93)) // 2
    st = req.job(job)
    assert (st.n_metric_commits, st.n_metric_reveals) == (2, 2)
    assert (a.balance(), b.balance(), c.balance()) == (FEE, FEE, 0)
    assert req.balance() == 100 * TOKEN - ASK + FEE  # the decliner's fee came back
    assert worker.balance() == ASK + STAKE
    assert c.account_info().duties == 0 and c.stake() == MIN_STAKE
    with pytest.raises(ContractError, match="validator revealed"):
        m.outsider.slash_validator(job, c.address)
    assert c.address in c.pool()
    assert _supply(m) == supply  # nothing burned
    assert req.metrics(job)[order.index(c)] == DECLINED  # in the events, though not counted
    _solvent(m)


def test_declined_is_left_out_of_the_median(m: Market) -> None:
    # counted as a (huge) metric, DECLINED would make 0.95 the median and pass the job
    req, worker, job, (a, b, c) = _job(m)
    said = {a: to_fixed(0.95), b: DECLINED, c: to_fixed(0.80)}
    salts = {v: v.commit_metric(job, x) for v, x in said.items()}
    for v in (a, b, c):
        v.reveal_metric(job, said[v], salts[v])
    assert outcome(req, job) is Outcome.REJECTED
    closed = _closed(req, job)
    assert closed["n_metrics"] == 2 and closed["median"] == (to_fixed(0.95) + to_fixed(0.80)) // 2
    assert worker.balance() == 0
    assert req.balance() == 100 * TOKEN + STAKE + FEE  # price, the worker's stake, one fee
    assert (a.balance(), b.balance(), c.balance()) == (FEE, 0, FEE)
    _solvent(m)


def test_declined_is_left_out_of_the_median_lower_is_better(m: Market) -> None:
    # counted as a metric, DECLINED would be the worst loss and reject the job
    req, worker, job, (a, b, c) = _job(m, lower_is_better=True, threshold=to_fixed(0.5))
    said = {a: to_fixed(0.2), b: DECLINED, c: DECLINED}
    salts = {v: v.commit_metric(job, x) for v, x in said.items()}
    for v in (b, c, a):
        v.reveal_metric(job, said[v], salts[v])
    assert outcome(req, job) is Outcome.ACCEPTED
    assert _closed(req, job)["n_metrics"] == 1 and _closed(req, job)["median"] == to_fixed(0.2)
    assert req.balance() == 100 * TOKEN - ASK + 2 * FEE
    assert (a.balance(), b.balance(), c.balance()) == (FEE, 0, 0)
    _solvent(m)


@pytest.mark.parametrize(("others", "lower", "expected"), [
    # both remaining verdicts reject the worker: it is rejected (not a neutral end)
    (["model", 0.5], False, Outcome.REJECTED),
    (["model", 0.7], True, Outcome.REJECTED),  # a loss above the 0.5 maximum
    # both pay the worker: it is paid
    ([0.95, "data"], False, Outcome.ACCEPTED),
    # a real split: the chain cannot tell who is at fault
    (["model", 0.95], False, Outcome.NO_VERDICT),
    (["model", 0.2], True, Outcome.NO_VERDICT),
    ([0.5, "data"], False, Outcome.NO_VERDICT),
    (["model", "data"], False, Outcome.NO_VERDICT),
])
def test_a_decline_cannot_turn_an_agreeing_pair_into_no_verdict(
        m: Market, others: list, lower: bool, expected: Outcome) -> None:
    """A decline leaves an even count. Where the two remaining verdicts are of different kinds
    but say the same for the worker (both reject it, or both pay it), they decide: otherwise a
    validator colluding with the at-fault party could decline to turn its loss into a neutral
    end, which no verdict it could reveal would do."""
    sentinel = {"model": MODEL_UNUSABLE, "data": DATA_UNUSABLE}
    said_by = [sentinel[x] if isinstance(x, str) else to_fixed(x) for x in others]
    req, worker, job, (a, b, c) = _job(m, lower_is_better=lower, threshold=to_fixed(0.5 if lower
                                                                                   else 0.9))
    said = {a: said_by[0], b: said_by[1], c: DECLINED}
    salts = {v: v.commit_metric(job, x) for v, x in said.items()}
    for v in (a, b, c):
        v.reveal_metric(job, said[v], salts[v])
    assert outcome(req, job) is expected
    metrics = [x for x in said_by if x < MAX_METRIC]
    if expected is not Outcome.NO_VERDICT and metrics:
        assert _closed(req, job)["median"] == metrics[0]  # the metric decides, not the sentinel
    paid = expected in (Outcome.ACCEPTED, Outcome.DATA_FAULT)
    assert worker.balance() == (ASK + STAKE if paid else 0 if expected is Outcome.REJECTED
                                else STAKE)
    _solvent(m)


def test_all_declined_ends_no_verdict_like_nobody_revealed(m: Market) -> None:
    req, worker, job, vals = _job(m)
    supply = _supply(m)
    salts = {v: v.commit_metric(job, DECLINED) for v in vals}
    for v in vals:
        assert req.job(job).phase is Phase.REVEAL
        v.reveal_metric(job, DECLINED, salts[v])
    assert outcome(req, job) is Outcome.NO_VERDICT  # settled by the last reveal
    closed = _closed(req, job)
    assert (closed["median"], closed["n_metrics"]) == (0, 0)
    assert req.balance() == 100 * TOKEN + 3 * FEE  # whole escrow back: price and every fee
    assert worker.balance() == STAKE
    for v in vals:
        assert v.balance() == 0 and v.stake() == MIN_STAKE and v.account_info().duties == 0
        with pytest.raises(ContractError, match="validator revealed"):
            m.outsider.slash_validator(job, v.address)
    assert _supply(m) == supply
    assert req.job_held(job) == 0
    _solvent(m)


def test_only_a_reveal_ends_the_duty_even_of_a_decline(m: Market) -> None:
    """One validator never commits, one commits DECLINED but never reveals it, one reveals
    DECLINED: no verdict counts, so the job ends NO_VERDICT after the deadlines; the two that did
    not reveal are slashed, the one that declined is not, and every fee goes back."""
    req, worker, job, (a, b, c) = _job(m)
    b.commit_metric(job, DECLINED)
    sc = c.commit_metric(job, DECLINED)
    m.ctl.advance_time(WINDOW + 1)  # a never commits: reveal phase at the commit deadline
    c.reveal_metric(job, DECLINED, sc)
    assert req.job(job).phase is Phase.REVEAL  # b's committed verdict is still awaited
    with pytest.raises(ContractError, match="deadline not passed"):
        req.settle(job)
    m.ctl.advance_time(WINDOW + 1)
    req.settle(job)
    assert outcome(req, job) is Outcome.NO_VERDICT
    assert req.balance() == 100 * TOKEN + 3 * FEE and worker.balance() == STAKE
    supply = _supply(m)
    cut = MIN_STAKE * SLASH_BPS // 10_000
    for v in (a, b):  # committing DECLINED is not enough: only a reveal ends the duty
        m.outsider.slash_validator(job, v.address)
        assert v.stake() == MIN_STAKE - cut
    with pytest.raises(ContractError, match="validator revealed"):
        m.outsider.slash_validator(job, c.address)
    assert c.stake() == MIN_STAKE and c.balance() == 0
    assert _supply(m) == supply - 2 * cut
    _solvent(m)


def test_decline_beside_a_silent_validator_and_a_verdict(m: Market) -> None:
    req, worker, job, (a, b, c) = _job(m)
    sa = a.commit_metric(job, to_fixed(0.95))
    sb = b.commit_metric(job, DECLINED)
    m.ctl.advance_time(WINDOW + 1)  # c is silent
    b.reveal_metric(job, DECLINED, sb)
    a.reveal_metric(job, to_fixed(0.95), sa)  # completes the committed set: settles
    assert outcome(req, job) is Outcome.ACCEPTED
    assert _closed(req, job)["n_metrics"] == 1
    assert req.balance() == 100 * TOKEN - ASK + 2 * FEE  # the decliner's and the silent one's
    assert worker.balance() == ASK + STAKE
    assert (a.balance(), b.balance(), c.balance()) == (FEE, 0, 0)
    m.outsider.slash_validator(job, c.address)
    with pytest.raises(ContractError, match="validator revealed"):
        m.outsider.slash_validator(job, b.address)
    _solvent(m)


def test_declined_sits_between_the_metrics_and_the_sentinels(m: Market) -> None:
    assert MAX_METRIC == DECLINED - 1 == 2**64 - 4
    with pytest.raises(ValueError, match="beyond the largest"):
        to_fixed((MAX_METRIC + 4096) / 10**6)
    with pytest.raises(ValueError, match="above the largest metric"):
        replace(terms(), threshold=DECLINED).check()
    req, t = m.requesters[0], terms()

    def post(threshold: int) -> None:  # past the client's own check: the contract's
        req._market("post_job", t.manifest_hash, t.metric, threshold, False, t.n_validators,
                    t.max_price, t.validator_fee, t.bid_stake, t.windows(), "")

    with pytest.raises(ContractError, match="threshold too large"):
        post(DECLINED)
    post(MAX_METRIC)
