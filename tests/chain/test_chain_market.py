"""Every transition and every rejection of the market, on eth-tester."""

from __future__ import annotations

import threading

import pytest
from chain_testlib import (
    MIN_STAKE,
    SLASH_BPS,
    TOKEN,
    WINDOW,
    Market,
    commit_bids,
    drawn,
    outcome,
    run_auction,
    run_to_validation,
    terms,
    validate,
)
from morphware.contracts import (
    ContractError,
    MarketClient,
    Outcome,
    Phase,
    Role,
    bid_commitment,
    public_key_of,
    to_fixed,
)

pytestmark = pytest.mark.chain


def assert_solvent(m: Market) -> None:
    assert m.deployer.token_balance(m.deployment.market) == m.liabilities()


def test_happy_path_pays_own_ask_and_empties_market(m: Market) -> None:
    req, (w0, w1, w2, w3, w4) = m.requesters[0], m.workers
    before = {c: c.token_balance() for c in m.everyone}
    job = req.post_job(terms())
    prices = {w0: 50 * TOKEN, w1: 40 * TOKEN, w2: 60 * TOKEN, w3: 45 * TOKEN, w4: 70 * TOKEN}
    worker = run_to_validation(m.ctl, req, job, prices)
    assert worker is w1
    st = req.job(job)
    assert (st.winner, st.price, st.phase) == (w1.address, 40 * TOKEN, Phase.COMMIT)
    vals = drawn(m, job)
    assert len(vals) == 3 and len(set(vals)) == 3
    validate(job, vals, [0.95, 0.91, 0.80])
    assert outcome(req, job) is Outcome.ACCEPTED
    assert req.events(name="JobClosed", job=job)[0].args["median"] == to_fixed(0.91)
    assert_solvent(m)
    for c in m.everyone:
        if c.balance():
            c.withdraw()
    assert m.deployer.token_balance(m.deployment.market) == sum(c.stake() for c in m.everyone)
    after = {c: c.token_balance() for c in m.everyone}
    assert after[w1] - before[w1] == 40 * TOKEN
    assert before[req] - after[req] == 40 * TOKEN + 3 * TOKEN
    for v in vals:
        assert after[v] - before[v] == TOKEN
    for w in (w0, w2, w3, w4):
        assert after[w] == before[w]


def test_single_revealed_bid_pays_its_ask(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {w: 30 * TOKEN})
    req.finalize(job)
    assert req.job(job).price == 30 * TOKEN
    assert req.job(job).phase is Phase.AWAITING_KEY


def test_tie_goes_to_lower_address(m: Market) -> None:
    req, a, b = m.requesters[0], m.workers[0], m.workers[1]
    low, high = sorted((a, b), key=lambda c: int(c.address, 16))
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {high: 30 * TOKEN, low: 30 * TOKEN})
    req.finalize(job)
    st = req.job(job)
    assert (st.winner, st.price) == (low.address, 30 * TOKEN)


def test_finalize_early_once_all_revealed_and_not_before(m: Market) -> None:
    req, (a, b) = m.requesters[0], m.workers[:2]
    job = req.post_job(terms())
    salts = commit_bids(job, {a: 10 * TOKEN, b: 20 * TOKEN})
    m.ctl.advance_time(WINDOW + 1)
    a.reveal_bid(job, 10 * TOKEN, salts[a])
    with pytest.raises(ContractError, match="deadline not passed"):
        req.finalize(job)
    b.reveal_bid(job, 20 * TOKEN, salts[b])
    req.finalize(job)
    assert req.job(job).price == 10 * TOKEN


def test_rejected_result_refunds_requester_and_slashes_worker(m: Market) -> None:
    req = m.requesters[0]
    start = req.balance()
    job = req.post_job(terms())
    worker = run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN, m.workers[1]: 50 * TOKEN})
    validate(job, drawn(m, job), [0.5, 0.95, 0.6])
    assert outcome(req, job) is Outcome.REJECTED
    # The escrow (103) was pulled from the token; the requester gets back the max price and the
    # worker's stake; the three fees went to the validators.
    assert req.balance() - start == 100 * TOKEN + 5 * TOKEN
    assert worker.balance() == 0
    assert_solvent(m)


def test_lower_is_better_metric(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(metric="mse", threshold=to_fixed(0.1), lower_is_better=True))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    validate(job, drawn(m, job), [0.05, 0.2, 0.08])
    assert outcome(req, job) is Outcome.ACCEPTED


def test_even_number_of_metrics_uses_mean_of_middle_two(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=4, threshold=to_fixed(0.7)))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    vals = drawn(m, job)
    assert len(vals) == 4
    validate(job, vals, [0.2, 0.6, 0.8, 0.99])
    (closed,) = req.events(name="JobClosed", job=job)
    assert closed.args["median"] == to_fixed(0.7)
    assert Outcome(closed.args["outcome"]) is Outcome.ACCEPTED


# ------------------------------------------------------------------ rejections


def test_late_bid(m: Market) -> None:
    job = m.requesters[0].post_job(terms())
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="bidding closed"):
        m.workers[0].commit_bid(job, TOKEN)


def test_early_reveal(m: Market) -> None:
    job = m.requesters[0].post_job(terms())
    salt = m.workers[0].commit_bid(job, TOKEN)
    with pytest.raises(ContractError, match="bidding still open"):
        m.workers[0].reveal_bid(job, TOKEN, salt)


def test_late_reveal(m: Market) -> None:
    job = m.requesters[0].post_job(terms())
    salt = m.workers[0].commit_bid(job, TOKEN)
    m.ctl.advance_time(2 * WINDOW + 2)
    with pytest.raises(ContractError, match="reveal window closed"):
        m.workers[0].reveal_bid(job, TOKEN, salt)


def test_wrong_salt_and_wrong_price(m: Market) -> None:
    w = m.workers[0]
    job = m.requesters[0].post_job(terms())
    salt = w.commit_bid(job, TOKEN)
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="bid != commitment"):
        w.reveal_bid(job, TOKEN, b"\x00" * 32)
    with pytest.raises(ContractError, match="bid != commitment"):
        w.reveal_bid(job, 2 * TOKEN, salt)
    w.reveal_bid(job, TOKEN, salt)
    with pytest.raises(ContractError, match="no sealed bid"):
        w.reveal_bid(job, TOKEN, salt)


def test_reveal_by_another_address(m: Market) -> None:
    a, b = m.workers[:2]
    job = m.requesters[0].post_job(terms())
    salt = a.commit_bid(job, TOKEN)
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="no sealed bid"):
        b.reveal_bid(job, TOKEN, salt)


def test_price_above_max_cannot_be_revealed(m: Market) -> None:
    w = m.workers[0]
    job = m.requesters[0].post_job(terms())
    salt = w.commit_bid(job, 101 * TOKEN)
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="price above"):
        w.reveal_bid(job, 101 * TOKEN, salt)


def test_second_bid_replaces_first_without_locking_more(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms())
    before = w.token_balance() + w.balance()
    first = w.commit_bid(job, 10 * TOKEN)
    second = w.commit_bid(job, 20 * TOKEN)
    assert before - (w.token_balance() + w.balance()) == 5 * TOKEN
    assert req.job(job).n_bids == 1
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="!= commitment"):
        w.reveal_bid(job, 10 * TOKEN, first)
    w.reveal_bid(job, 20 * TOKEN, second)
    assert req.job(job).price == 20 * TOKEN
    assert_solvent(m)


def test_bidders_must_be_registered_workers_and_not_the_requester(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms())
    with pytest.raises(ContractError, match="not a worker"):
        m.outsider.commit_bid(job, TOKEN)
    with pytest.raises(ContractError, match="requester cannot bid"):
        req.commit_bid(job, TOKEN)
    with pytest.raises(ContractError, match="no such job"):
        m.workers[0].commit_bid(job + 1, TOKEN)


def test_release_key_rules(m: Market) -> None:
    req, other = m.requesters
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {m.workers[0]: 10 * TOKEN, m.workers[1]: 20 * TOKEN})
    with pytest.raises(ContractError, match="only the requester"):
        other.release_key(job, b"k")
    r = req.release_key(job, b"wrapped-key")  # finalizes on the way
    assert [e.name for e in r.events] == ["AuctionFinalized", "KeyReleased"]
    assert r.events[1].args["wrapped_key"] == b"wrapped-key"
    with pytest.raises(ContractError, match="not awaiting the key"):
        req.release_key(job, b"again")


def test_result_from_non_winner(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {m.workers[0]: 10 * TOKEN, m.workers[1]: 20 * TOKEN})
    req.release_key(job, b"k")
    loser = m.workers[1] if req.job(job).winner == m.workers[0].address else m.workers[0]
    with pytest.raises(ContractError, match="only the winning worker"):
        loser.submit_result(job, b"\x01" * 32, "magnet:x")
    with pytest.raises(ContractError, match="only the winning worker"):
        m.outsider.submit_result(job, b"\x01" * 32, "magnet:x")


def test_late_result(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    req.release_key(job, b"k")
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="work deadline passed"):
        m.workers[0].submit_result(job, b"\x01" * 32, "magnet:x")


def test_metric_from_non_selected_validator(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=2))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    chosen = set(m.deployer.validators_of(job))
    outsider_validator = next(v for v in m.validators if v.address not in chosen)
    with pytest.raises(ContractError, match="not a selected validator"):
        outsider_validator.commit_metric(job, to_fixed(0.9))
    with pytest.raises(ContractError, match="not a selected validator"):
        m.workers[0].commit_metric(job, to_fixed(0.9))
    with pytest.raises(ValueError, match="drawn validators"):
        req.release_test_keys(job, {outsider_validator.address: b"k"})
    keys = {v: v.encode() for v in chosen}
    with pytest.raises(ContractError, match="only the requester"):
        m.requesters[1].release_test_keys(job, keys)
    r = req.release_test_keys(job, keys)
    assert r.events[0].name == "TestKeysReleased"
    for v in chosen:
        assert req.test_key_for(job, v) == v.encode()
    assert req.test_key_for(job, outsider_validator.address) is None


def test_metric_reveal_rules(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=2))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    a, b = drawn(m, job)
    sa = a.commit_metric(job, to_fixed(0.9))
    with pytest.raises(ContractError, match="not in verdict reveal"):
        a.reveal_metric(job, to_fixed(0.9), sa)
    sb = b.commit_metric(job, to_fixed(0.95))  # all committed: reveal phase starts now
    with pytest.raises(ContractError, match="!= commitment"):
        a.reveal_metric(job, to_fixed(0.91), sa)
    a.reveal_metric(job, to_fixed(0.9), sa)
    with pytest.raises(ContractError, match="already revealed"):
        a.reveal_metric(job, to_fixed(0.9), sa)
    b.reveal_metric(job, to_fixed(0.95), sb)
    assert outcome(req, job) is Outcome.ACCEPTED
    assert sorted(req.metrics(job)) == [to_fixed(0.9), to_fixed(0.95)]


def test_double_settle(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=1))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    (v,) = drawn(m, job)
    v.commit_metric(job, to_fixed(0.95))
    m.ctl.advance_time(WINDOW + 1)
    req.settle(job)  # nobody revealed: no verdict
    assert outcome(req, job) is Outcome.NO_VERDICT
    with pytest.raises(ContractError, match="already closed"):
        req.settle(job)
    with pytest.raises(ContractError, match="already closed"):
        req.advance(job)


def test_settle_too_early(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=2))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    a, b = drawn(m, job)
    with pytest.raises(ContractError, match="deadline not passed"):
        req.settle(job)
    sa = a.commit_metric(job, to_fixed(0.9))
    b.commit_metric(job, to_fixed(0.9))
    a.reveal_metric(job, to_fixed(0.9), sa)
    with pytest.raises(ContractError, match="deadline not passed"):
        req.settle(job)


def test_withdraw_twice(m: Market) -> None:
    req = m.requesters[0]
    req.deposit(3 * TOKEN)
    req.withdraw(3 * TOKEN)
    with pytest.raises(ContractError, match="insufficient balance"):
        req.withdraw(3 * TOKEN)
    with pytest.raises(ContractError, match="nothing to withdraw"):
        req.withdraw()


def test_register_rejects_foreign_key_and_bad_input(m: Market) -> None:
    o = m.outsider
    with pytest.raises(ContractError, match="pubkey is not sender's"):
        o.register(Role.WORKER, MIN_STAKE, pubkey=public_key_of(m.workers[0].account))
    with pytest.raises(ContractError, match="not 64 bytes"):
        o.register(Role.WORKER, MIN_STAKE, pubkey=public_key_of(o.account)[:63])
    with pytest.raises(ContractError, match="roles not 1, 2 or 3"):
        o.register(4, MIN_STAKE)
    with pytest.raises(ContractError, match="stake below minimum"):
        o.register(Role.WORKER, MIN_STAKE - 1)
    o.register(Role.WORKER | Role.VALIDATOR, MIN_STAKE)
    assert o.pubkey_of(o.address) == public_key_of(o.account)
    assert o.address in o.pool()
    assert o.account_info().roles == Role.WORKER | Role.VALIDATOR


def test_unstake_after_cooldown(m: Market) -> None:
    v = m.validators[0]
    with pytest.raises(ContractError, match="no unstake requested"):
        v.unstake()
    v.request_unstake()
    assert v.address not in v.pool()
    with pytest.raises(ContractError, match="cool-down not over"):
        v.unstake()
    with pytest.raises(ContractError, match="unstaking in progress"):
        v.register(Role.VALIDATOR, MIN_STAKE)
    m.ctl.advance_time(v.account_info().unlock_at - m.ctl.now() + 1)
    v.unstake()
    assert (v.stake(), v.balance()) == (0, MIN_STAKE)


def test_post_job_validation(m: Market) -> None:
    req = m.requesters[0]
    with pytest.raises(ValueError, match="n_validators"):
        req.post_job(terms(n_validators=9))
    with pytest.raises(ValueError, match="window"):
        req.post_job(terms(work_window=0))
    with pytest.raises(ValueError, match="manifest_hash"):
        req.post_job(terms(manifest_hash=b"short"))
    with pytest.raises(ContractError, match="exceeds balance"):
        req.post_job(terms(max_price=10**9 * TOKEN))


def test_events_and_commitment_helper(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    t = terms(artifacts=("magnet:?xt=urn:btih:1", "magnet:?xt=urn:btih:2"))
    job = req.post_job(t)
    (posted,) = req.events(name="JobPosted", job=job)
    assert posted.args["artifacts"] == list(t.artifacts)
    assert posted.args["manifest_hash"] == t.manifest_hash
    assert posted.args["metric"] == "accuracy"
    salt = b"\x07" * 32
    w.commit_bid(job, 5, salt)
    (sealed,) = req.events(name="BidCommitted", job=job)
    assert sealed.args["commitment"] == bid_commitment(job, w.address, 5, salt)
    with pytest.raises(ValueError, match="no event named"):
        req.events(name="Nope")


# ------------------------------------------------------------------ timeouts


def test_no_bids_then_timeout_refunds_requester(m: Market) -> None:
    req = m.requesters[0]
    start = req.token_balance()
    job = req.post_job(terms())
    with pytest.raises(ContractError, match="deadline not passed"):
        req.advance(job)
    m.ctl.advance_time(2 * WINDOW + 1)
    m.outsider.advance(job)
    assert outcome(req, job) is Outcome.NO_BIDS
    req.withdraw()
    assert req.token_balance() == start


def test_unrevealed_bids_are_burned_not_paid_to_requester(m: Market) -> None:
    req = m.requesters[0]
    supply = m.deployer.token.functions.totalSupply().call()
    job = req.post_job(terms())
    commit_bids(job, {m.workers[0]: TOKEN, m.workers[1]: TOKEN})
    m.ctl.advance_time(2 * WINDOW + 1)
    m.outsider.advance(job)
    assert outcome(req, job) is Outcome.NO_BIDS
    assert req.balance() == 100 * TOKEN + 3 * TOKEN
    assert m.deployer.token.functions.totalSupply().call() == supply - 2 * 5 * TOKEN
    assert_solvent(m)


def test_key_never_released(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {w: 10 * TOKEN})
    m.outsider.finalize(job)
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="key window closed"):
        req.release_key(job, b"k")
    m.outsider.advance(job)
    assert outcome(req, job) is Outcome.KEY_TIMEOUT
    assert w.balance() == 5 * TOKEN  # stake back, no blame
    assert req.balance() == 103 * TOKEN


def test_result_never_submitted_slashes_worker(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {w: 10 * TOKEN})
    req.release_key(job, b"k")
    m.ctl.advance_time(WINDOW + 1)
    m.outsider.advance(job)
    assert outcome(req, job) is Outcome.WORK_TIMEOUT
    assert w.balance() == 0
    assert req.balance() == 103 * TOKEN + 5 * TOKEN


def test_no_validator_acts(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms(n_validators=2))
    run_to_validation(m.ctl, req, job, {w: 10 * TOKEN})
    m.ctl.advance_time(WINDOW + 1)
    m.outsider.advance(job)  # commit window over: now the (empty) reveal phase
    assert req.job(job).phase is Phase.REVEAL
    m.ctl.advance_time(WINDOW + 1)
    m.outsider.advance(job)
    assert outcome(req, job) is Outcome.NO_VERDICT
    assert w.balance() == 5 * TOKEN
    assert req.balance() == 100 * TOKEN + 2 * TOKEN
    assert_solvent(m)


def test_non_revealing_validator_is_slashed(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms())
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    a, b, c = drawn(m, job)
    salts = [v.commit_metric(job, to_fixed(0.95)) for v in (a, b, c)]
    a.reveal_metric(job, to_fixed(0.95), salts[0])
    b.reveal_metric(job, to_fixed(0.95), salts[1])
    with pytest.raises(ContractError, match="job not settled"):
        req.slash_validator(job, c.address)
    m.ctl.advance_time(WINDOW + 1)
    req.settle(job)
    assert outcome(req, job) is Outcome.ACCEPTED
    before = req.balance()
    supply = m.deployer.token.functions.totalSupply().call()
    assert c.account_info().duties == 1 and a.account_info().duties == 0
    with pytest.raises(ContractError, match="validator revealed"):
        m.outsider.slash_validator(job, a.address)
    m.outsider.slash_validator(job, c.address)
    cut = MIN_STAKE * SLASH_BPS // 10_000
    assert req.balance() == before  # burned: the requester gains nothing from a slash
    assert m.deployer.token.functions.totalSupply().call() == supply - cut
    assert c.stake() == MIN_STAKE - cut
    assert c.account_info().duties == 0
    assert c.address not in c.pool()  # out until it registers again
    assert (c.balance(), a.balance(), b.balance()) == (0, TOKEN, TOKEN)
    with pytest.raises(ContractError, match="already slashed"):
        m.outsider.slash_validator(job, c.address)
    assert_solvent(m)


def test_too_few_validators_refunds_unused_fees(m: Market) -> None:
    req = m.requesters[0]
    with pytest.raises(ContractError, match="too few validators"):
        req.post_job(terms(n_validators=8, bid_stake=10 * TOKEN))  # only 4 registered
    job = req.post_job(terms(n_validators=4, bid_stake=5 * TOKEN))
    m.validators[0].request_unstake()  # leaves before the draw: 3 can be drawn
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    assert req.job(job).n_validators == 3
    assert m.validators[0].address not in req.validators_of(job)
    assert req.balance() == 90 * TOKEN + TOKEN  # max price - ask, and one unused fee
    assert_solvent(m)


def test_clients_share_one_chain_from_threads(m: Market) -> None:
    job = m.requesters[0].post_job(terms())
    errors: list[Exception] = []

    def bid(c: MarketClient, price: int) -> None:
        try:
            c.commit_bid(job, price)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=bid, args=(w, (i + 1) * TOKEN)) for i, w in enumerate(m.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert m.requesters[0].job(job).n_bids == len(m.workers)


def test_now_is_the_pending_block_time_after_time_travel(m: Market) -> None:
    before = m.ctl.now()  # the latest block (the pending one may already be ahead)
    m.ctl.advance_time(500)
    # eth-tester's pending block may carry the latest block's time or one second more.
    assert m.deployer.now() >= m.ctl.now() >= before + 499
    assert m.deployer.block_number() >= 1


def test_event_poller_returns_each_event_once(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    poller = req.poller(req.block_number() + 1)
    assert poller.poll() == []
    job = req.post_job(terms())
    w.commit_bid(job, TOKEN)
    assert [e.name for e in poller.poll()] == ["JobPosted", "BidCommitted"]
    assert poller.poll() == []
    w.commit_bid(job, 2 * TOKEN)
    (again,) = poller.poll()
    assert (again.name, again.job, again.args["bidder"]) == ("BidCommitted", job, w.address)
    only_bids = req.poller(name="BidCommitted", job=job)
    assert len(only_bids.poll()) == 2


def test_validator_may_replace_its_sealed_metric_before_the_deadline(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=2))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 10 * TOKEN})
    a, b = drawn(m, job)
    first = a.commit_metric(job, to_fixed(0.2))
    second = a.commit_metric(job, to_fixed(0.97))
    assert req.job(job).n_metric_commits == 1
    sb = b.commit_metric(job, to_fixed(0.95))
    with pytest.raises(ContractError, match="!= commitment"):
        a.reveal_metric(job, to_fixed(0.2), first)
    a.reveal_metric(job, to_fixed(0.97), second)
    b.reveal_metric(job, to_fixed(0.95), sb)
    assert outcome(req, job) is Outcome.ACCEPTED


def test_deposit_requires_an_amount(m: Market) -> None:
    with pytest.raises(ContractError, match="nothing to deposit"):
        m.requesters[0].deposit(0)


def test_concurrent_sealed_bids_of_one_worker(m: Market) -> None:
    """A worker's reusable bid word holds one live sealed bid; a bid on a second job in bidding
    at the same time goes to the per-job map. Both can be replaced, revealed once and only with
    the right salt; once the first job's auction is over the word is reused."""
    req, w, other = m.requesters[0], m.workers[0], m.workers[1]
    a, b = req.post_job(terms()), req.post_job(terms())
    before = w.token_balance() + w.balance()
    w.commit_bid(a, 10 * TOKEN)  # in the word
    w.commit_bid(b, 20 * TOKEN)  # the word is busy with a live bid: the per-job map
    salt_b = w.commit_bid(b, 25 * TOKEN)  # replaces in the map
    salt_a = w.commit_bid(a, 15 * TOKEN)  # replaces in the word
    assert before - (w.token_balance() + w.balance()) == 10 * TOKEN
    assert req.job(a).n_bids == 1 and req.job(b).n_bids == 1
    other_salt = other.commit_bid(b, 30 * TOKEN)
    m.ctl.advance_time(WINDOW + 1)
    for job, price, salt in ((a, 15 * TOKEN, salt_a), (b, 25 * TOKEN, salt_b)):
        with pytest.raises(ContractError, match="!= commitment"):
            w.reveal_bid(job, price, b"\x07" * 32)
        w.reveal_bid(job, price, salt)
        with pytest.raises(ContractError, match="no sealed bid"):
            w.reveal_bid(job, price, salt)
    other.reveal_bid(b, 30 * TOKEN, other_salt)
    assert req.job(a).winner == w.address and req.job(a).price == 15 * TOKEN
    assert req.job(b).winner == w.address and req.job(b).price == 25 * TOKEN
    assert_solvent(m)
    # A sealed bid never revealed: once its auction is finalized the word is free again.
    c = req.post_job(terms())
    w.commit_bid(c, 10 * TOKEN)
    m.ctl.advance_time(2 * WINDOW + 2)
    req.finalize(c)
    d = req.post_job(terms())
    salt_d = w.commit_bid(d, 12 * TOKEN)
    salt_d2 = other.commit_bid(d, 13 * TOKEN)
    m.ctl.advance_time(WINDOW + 1)
    with pytest.raises(ContractError, match="auction finalized"):
        w.reveal_bid(c, 10 * TOKEN, salt_d)
    w.reveal_bid(d, 12 * TOKEN, salt_d)
    other.reveal_bid(d, 13 * TOKEN, salt_d2)
    assert req.job(d).winner == w.address
    assert req.job(c).phase == Phase.CLOSED
    assert_solvent(m)
