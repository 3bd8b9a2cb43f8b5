"""The ten ways a review found to profit from cheating the market, each replayed against the
contracts: every test here failed on the contracts before the incentive redesign (the exploit
worked, or the defence did not exist) and passes now. Numbers refer to the findings of issue 12;
docs/contracts.md has the table of deviations these tests prove."""

from __future__ import annotations

import pytest
from chain_testlib import (
    COOLDOWN,
    DRAW_DELAY,
    MIN_STAKE,
    MIN_WINDOW,
    SLASH_BPS,
    TOKEN,
    WINDOW,
    Market,
    deploy_tree_harness,
    draw_validators,
    drawn,
    outcome,
    run_auction,
    run_to_validation,
    terms,
)
from eth_utils import keccak
from morphware.contracts import (
    DATA_UNUSABLE,
    MODEL_UNUSABLE,
    ContractError,
    MarketClient,
    Outcome,
    Phase,
    Role,
    deploy,
    embedded_chain,
    to_fixed,
)

pytestmark = pytest.mark.chain


def worth(c: MarketClient) -> int:
    """Everything an account has: tokens, free market balance and stake."""
    return c.token_balance() + c.balance() + c.stake()


def supply(m: Market) -> int:
    return int(m.deployer.token.functions.totalSupply().call())


def reveal_all(job: int, vals: list[MarketClient], verdicts: list[int]) -> None:
    salts = [v.commit_metric(job, x) for v, x in zip(vals, verdicts, strict=True)]
    for v, x, s in zip(vals, verdicts, salts, strict=True):
        v.reveal_metric(job, x, s)


# 1 -------------------------------------------------------------------------------------------


def test_1_requester_cannot_shorten_windows_to_harvest_validator_stakes(m: Market) -> None:
    """Old: a 1-second metric-commit window let no validator act; every drawn validator was
    slashed to the requester. Now every window has the deployment's floor, and a slash is burned,
    so even a validator that does miss its duty enriches nobody."""
    req = m.requesters[0]
    for field in ("bid_window", "reveal_window", "key_window", "work_window", "commit_window",
                  "metric_reveal_window"):
        with pytest.raises(ContractError, match="window below min_window"):
            req._market("post_job", *_raw_terms(terms(**{field: 1})))
    job = req.post_job(terms(commit_window=MIN_WINDOW, metric_reveal_window=MIN_WINDOW))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    vals = drawn(m, job)
    m.ctl.advance_time(2 * MIN_WINDOW + 2)  # nobody acted at all
    m.outsider.advance(job)
    assert outcome(req, job) is Outcome.NO_VERDICT
    before = req.balance()
    for v in vals:
        m.outsider.slash_validator(job, v.address)
    assert req.balance() == before


def _raw_terms(t) -> list:  # type: ignore[no-untyped-def]
    """post_job arguments without the client's local checks (to see the contract refuse)."""
    return [t.manifest_hash, t.metric, t.threshold, t.lower_is_better, t.n_validators,
            t.max_price, t.validator_fee, t.bid_stake, t.windows(), "\n".join(t.artifacts)]


# 2 -------------------------------------------------------------------------------------------


def test_2_withholding_test_keys_pays_the_worker_and_no_validator_loses(m: Market) -> None:
    """Old: no test keys -> no reveals -> NO_VERDICT: requester refunded, worker unpaid,
    validators slashed. Now validators reveal DATA_UNUSABLE: the worker is paid, validators are
    paid, the requester pays for what it received."""
    req, w = m.requesters[0], m.workers[0]
    start = {c: worth(c) for c in (req, w, *m.validators)}
    job = req.post_job(terms())
    run_to_validation(m.ctl, req, job, {w: 40 * TOKEN})
    vals = drawn(m, job)
    reveal_all(job, vals, [DATA_UNUSABLE] * 3)  # the requester never released test keys
    assert outcome(req, job) is Outcome.DATA_FAULT
    assert worth(w) - start[w] == 40 * TOKEN
    assert start[req] - worth(req) == 40 * TOKEN + 3 * TOKEN
    for v in vals:
        assert worth(v) - start[v] == TOKEN and v.account_info().duties == 0


# 3 -------------------------------------------------------------------------------------------


def test_3_draw_uses_a_later_block_and_only_stake_registered_before_posting(m: Market) -> None:
    """Old: the seed was fixed in the block taking the result and sybils registered just before
    counted. Now the seed is the hash of a block mined draw_delay blocks after the result, and
    stake registered after the job was posted cannot be drawn for it."""
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms())
    sybils = [*m.workers[1:], m.outsider]
    for s in sybils:  # a heavy sybil ring joins after posting
        s.register(Role.VALIDATOR, 100 * TOKEN)
    run_auction(m.ctl, req, job, {w: 40 * TOKEN})
    req.release_key(job, b"k")
    r = w.submit_result(job, b"\x01" * 32, "magnet:?xt=urn:btih:r")
    st = req.job(job)
    assert st.phase is Phase.DRAWING and st.deadline == r.block_number + DRAW_DELAY
    assert req.validators_of(job) == []
    with pytest.raises(ContractError, match="draw block not mined yet"):
        w.draw(job)
    draw_validators(m.ctl, m.outsider, job)
    (ev,) = req.events(name="ValidatorsDrawn", job=job)
    seed_block = m.w3.eth.get_block(st.deadline)
    assert ev.args["seed"] == keccak(bytes(seed_block["hash"]) + job.to_bytes(32, "big"))
    picked = set(ev.args["validators"])
    assert len(picked) == 3
    assert picked <= {v.address for v in m.validators}
    assert not picked & {s.address for s in sybils}


@pytest.mark.slow
def test_3_draw_falls_back_when_the_seed_block_hash_expired(m: Market) -> None:
    req, w = m.requesters[0], m.workers[0]
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {w: 40 * TOKEN})
    req.release_key(job, b"k")
    w.submit_result(job, b"\x01" * 32, "magnet:?xt=urn:btih:r")
    target = req.job(job).deadline
    m.w3.provider.ethereum_tester.mine_blocks(300)
    head = req.block_number() + 1  # the block the draw lands in
    stand_in = target + (head - 1 - target) // 256 * 256
    w.draw(job)
    (ev,) = req.events(name="ValidatorsDrawn", job=job)
    h = bytes(m.w3.eth.get_block(stand_in)["hash"])
    assert ev.args["seed"] == keccak(h + job.to_bytes(32, "big"))
    assert len(ev.args["validators"]) == 3


def test_3_and_8_draw_is_exactly_stake_weighted_with_no_cap(m: Market) -> None:
    """The tree maps every point of [0, total stake) to the leaf owning it: each validator's
    chance is its stake over the total, sybils gain nothing over one account of the same stake,
    and there is no pool capacity to fill. Pruning a dead leaf removes only its own interval."""
    tree = deploy_tree_harness(m)
    weights = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    for i, wt in enumerate(weights):
        send_tx(m, tree.functions.push(m.workers[i % 5].address, wt))
    n = len(weights)
    total = tree.functions.prefix(n).call()
    assert total == sum(weights)
    owners = [tree.functions.search(n, r).call() for r in range(total)]
    assert [owners.count(i + 1) for i in range(n)] == weights
    # A job posted when only 6 leaves existed samples exactly those.
    six = tree.functions.prefix(6).call()
    assert [tree.functions.search(6, r).call() for r in range(six)] == \
        [i + 1 for i, wt in enumerate(weights[:6]) for _ in range(wt)]
    send_tx(m, tree.functions.prune(6))  # leaf 6 (weight 9) died
    assert tree.functions.prefix(n).call() == total - 9
    owners = [tree.functions.search(n, r).call() for r in range(total - 9)]
    assert 6 not in owners and [owners.count(i + 1) for i in range(n) if i != 5] == \
        [wt for i, wt in enumerate(weights) if i != 5]


def send_tx(m: Market, fn) -> None:  # type: ignore[no-untyped-def]
    from morphware.contracts.tx import send

    send(m.w3, m.deployer.account, fn, "tree harness")


# 4 -------------------------------------------------------------------------------------------


def test_4_an_undeliverable_result_loses_the_worker_its_stake(m: Market) -> None:
    """Old: a random result hash left validators nothing to reveal: NO_VERDICT returned the
    worker's stake and slashed the validators. Now they reveal MODEL_UNUSABLE: REJECTED."""
    req, w = m.requesters[0], m.workers[0]
    start = {c: worth(c) for c in (req, w, *m.validators)}
    job = req.post_job(terms())
    run_to_validation(m.ctl, req, job, {w: 40 * TOKEN})
    vals = drawn(m, job)
    reveal_all(job, vals, [MODEL_UNUSABLE] * 3)
    assert outcome(req, job) is Outcome.REJECTED
    assert start[w] - worth(w) == 5 * TOKEN  # its bid stake
    assert worth(req) - start[req] == 5 * TOKEN - 3 * TOKEN  # made whole for the fees
    for v in vals:
        assert worth(v) - start[v] == TOKEN


@pytest.mark.slow
def test_verdict_median_orders_model_fault_metrics_data_fault(m: Market) -> None:
    req = m.requesters[0]
    cases = [
        ([MODEL_UNUSABLE, to_fixed(0.95), to_fixed(0.97)], Outcome.ACCEPTED),
        ([MODEL_UNUSABLE, MODEL_UNUSABLE, to_fixed(0.97)], Outcome.REJECTED),
        ([DATA_UNUSABLE, to_fixed(0.5), to_fixed(0.6)], Outcome.REJECTED),
        ([DATA_UNUSABLE, DATA_UNUSABLE, MODEL_UNUSABLE], Outcome.DATA_FAULT),
        ([DATA_UNUSABLE, to_fixed(0.95), MODEL_UNUSABLE], Outcome.ACCEPTED),
    ]
    for verdicts, expected in cases:
        job = req.post_job(terms())
        run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
        reveal_all(job, drawn(m, job), verdicts)
        assert outcome(req, job) is expected, verdicts
    job = req.post_job(terms(n_validators=2))  # a split even count: the chain cannot tell
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    reveal_all(job, drawn(m, job), [DATA_UNUSABLE, MODEL_UNUSABLE])
    assert outcome(req, job) is Outcome.NO_VERDICT


# 5 -------------------------------------------------------------------------------------------


def test_5_a_bogus_data_key_ends_neutrally(m: Market) -> None:
    """Old: with a key that opens nothing the worker could only time out, and WORK_TIMEOUT paid
    the requester the worker's stake. Now the worker rejects the key: nobody gains or loses."""
    req, w = m.requesters[0], m.workers[0]
    start = {c: worth(c) for c in (req, w)}
    job = req.post_job(terms())
    run_auction(m.ctl, req, job, {w: 40 * TOKEN})
    req.release_key(job, b"garbage")
    with pytest.raises(ContractError, match="only the winning worker"):
        req.reject_key(job)
    w.reject_key(job)
    assert outcome(req, job) is Outcome.KEY_REJECTED
    assert (worth(req), worth(w)) == (start[req], start[w])


# 6 -------------------------------------------------------------------------------------------


def test_6_shill_bids_neither_lower_the_price_nor_come_free(m: Market) -> None:
    """Old (second price): a requester's ladder of sybil bids, opening only the one just above
    the lowest honest ask, cut the clearing price from 60 to 41 and cost nothing. Now the winner
    is paid its own ask, so no other bid moves its pay, and every shill left sealed is burned."""
    req = m.requesters[0]
    honest, high = m.workers[0], m.workers[1]
    shills = m.workers[2:]  # sybils the requester controls
    before_shills = sum(worth(s) for s in shills)
    job = req.post_job(terms())
    asks = {honest: 40 * TOKEN, high: 60 * TOKEN}
    salts = {c: c.commit_bid(job, p) for c, p in asks.items()}
    ladder = {s: p * TOKEN for s, p in zip(shills, (41, 50, 59), strict=True)}
    shill_salts = {s: s.commit_bid(job, p) for s, p in ladder.items()}
    m.ctl.advance_time(WINDOW + 1)
    for c, p in asks.items():
        c.reveal_bid(job, p, salts[c])
    shills[0].reveal_bid(job, ladder[shills[0]], shill_salts[shills[0]])  # only the 41 rung
    m.ctl.advance_time(WINDOW + 1)
    req.finalize(job)
    st = req.job(job)
    assert (st.winner, st.price) == (honest.address, 40 * TOKEN)
    assert before_shills - sum(worth(s) for s in shills) == 2 * 5 * TOKEN  # two rungs burned


# 7 -------------------------------------------------------------------------------------------


def test_7_a_one_second_reveal_window_is_refused(m: Market) -> None:
    req = m.requesters[0]
    with pytest.raises(ValueError, match="window"):
        req.post_job(terms(reveal_window=1))
    with pytest.raises(ContractError, match="window below min_window"):
        req._market("post_job", *_raw_terms(terms(reveal_window=MIN_WINDOW - 1)))


# 8 -------------------------------------------------------------------------------------------


def test_8_registration_has_no_capacity_and_draw_weight_follows_stake(m: Market) -> None:
    """Old: a fixed pool of 4096 that a whale could fill. Now validators are leaves of an
    append-only tree with no capacity: anyone can always join, and a top-up adds weight (for
    jobs posted later) in proportion to the stake added."""
    v = m.validators[0]
    n0, w0 = m.deployer._view("leaf_count"), m.deployer.pool_weight()
    v.register(Role.VALIDATOR, 30 * TOKEN)
    m.outsider.register(Role.VALIDATOR, MIN_STAKE)
    assert m.deployer._view("leaf_count") == n0 + 2
    assert m.deployer.pool_weight() == w0 + 30 * TOKEN + MIN_STAKE
    assert m.outsider.address in m.deployer.pool()


# 9 -------------------------------------------------------------------------------------------


def test_9_a_drawn_validator_cannot_unstake_before_its_duty_ends(m: Market) -> None:
    req = m.requesters[0]
    job = req.post_job(terms(n_validators=1))
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    (v,) = drawn(m, job)
    v.request_unstake()
    m.ctl.advance_time(COOLDOWN + 1)
    with pytest.raises(ContractError, match="open validation duties"):
        v.unstake()
    m.outsider.advance(job)  # the job settles without its verdict
    with pytest.raises(ContractError, match="open validation duties"):
        v.unstake()
    m.outsider.slash_validator(job, v.address)
    v.unstake()
    assert v.balance() == MIN_STAKE - MIN_STAKE * SLASH_BPS // 10_000


# 10 ------------------------------------------------------------------------------------------


def test_10_production_deployment_has_fixed_supply_and_no_admin() -> None:
    chain = embedded_chain(2)
    with pytest.raises(ValueError, match="initial_supply"):
        deploy(chain.w3, chain.accounts[0])  # production by default: needs its fixed supply
    dep = deploy(chain.w3, chain.accounts[0], initial_supply=10**9 * TOKEN)
    assert dep.params["dev"] is False
    owner = MarketClient(chain.w3, dep, chain.accounts[0])
    token = owner.token.functions
    assert token.totalSupply().call() == 10**9 * TOKEN
    assert token.balanceOf(owner.address).call() == 10**9 * TOKEN
    assert not token.is_minter(owner.address).call()
    assert int(token.owner().call(), 16) == 0
    names = {e.get("name") for e in dep.token_abi}
    assert not names & {"mint", "set_minter", "transfer_ownership", "renounce_ownership"}
    with pytest.raises(ContractError, match="no faucet"):
        owner.faucet(1)


def test_10_bid_stake_must_be_positive_and_cover_the_fees(m: Market) -> None:
    req = m.requesters[0]
    with pytest.raises(ContractError, match="bid_stake below minimum"):
        req._market("post_job", *_raw_terms(terms(bid_stake=0, validator_fee=0)))
    with pytest.raises(ContractError, match="bid_stake below the fees"):
        req._market("post_job", *_raw_terms(terms(bid_stake=2 * TOKEN, validator_fee=TOKEN)))


def test_10_withholding_a_reveal_after_seeing_others_is_slashed(m: Market) -> None:
    """A validator that committed, saw the others reveal and kept its verdict back loses
    slash_bps of its stake (burned) and its fee; revealing would have cost it nothing."""
    req = m.requesters[0]
    job = req.post_job(terms())
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    a, b, c = drawn(m, job)
    start = worth(c)
    salts = [v.commit_metric(job, to_fixed(0.95)) for v in (a, b, c)]
    a.reveal_metric(job, to_fixed(0.95), salts[0])
    b.reveal_metric(job, to_fixed(0.95), salts[1])
    m.ctl.advance_time(WINDOW + 1)
    m.outsider.advance(job)
    m.outsider.slash_validator(job, c.address)
    assert start - worth(c) == MIN_STAKE * SLASH_BPS // 10_000


def test_validators_only_slashed_for_their_own_silence(m: Market) -> None:
    """Validators that reveal any verdict, whatever the other parties did, keep their stake."""
    req = m.requesters[0]
    job = req.post_job(terms())
    run_to_validation(m.ctl, req, job, {m.workers[0]: 40 * TOKEN})
    vals = drawn(m, job)
    reveal_all(job, vals, [DATA_UNUSABLE, MODEL_UNUSABLE, to_fixed(0.1)])
    for v in vals:
        with pytest.raises(ContractError, match="validator revealed"):
            m.outsider.slash_validator(job, v.address)
