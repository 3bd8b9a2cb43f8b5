# pragma version ~=0.4.3
"""
@title Morphware job market
@notice Per job: post (escrow max price + validator fees) -> sealed bids -> reveal -> finalize
        (lowest ask wins, paid the second-lowest ask, or the max price if it was the only revealed
        bid) -> key release -> result -> validators drawn from the registry commit, then reveal
        their metric -> settle. Every phase has a deadline after which anyone can move the job on
        (`advance`), and every path credits each token to somebody's internal balance; tokens
        leave only through `withdraw`. See docs/contracts.md for the rules in prose.
@dev Jobs are packed into five storage words (see the _load/_store helpers) and artifact magnets,
     manifest hashes and wrapped keys live only in event data, to keep a job under 1 M gas.
"""

from ethereum.ercs import IERC20

import registry
initializes: registry

exports: (
    registry.token,
    registry.min_stake,
    registry.cooldown,
    registry.slash_bps,
    registry.pool,
    registry.deposit,
    registry.withdraw,
    registry.register,
    registry.request_unstake,
    registry.unstake,
    registry.account,
    registry.balance_of,
    registry.stake_of,
    registry.holdings,
    registry.pool_size,
)

BIDDING: constant(uint256) = 1
AWAITING_KEY: constant(uint256) = 2
WORKING: constant(uint256) = 3
COMMIT: constant(uint256) = 4
REVEAL: constant(uint256) = 5
CLOSED: constant(uint256) = 6

NO_BIDS: constant(uint256) = 1
KEY_TIMEOUT: constant(uint256) = 2
WORK_TIMEOUT: constant(uint256) = 3
ACCEPTED: constant(uint256) = 4
REJECTED: constant(uint256) = 5
NO_VERDICT: constant(uint256) = 6

MAX_VALIDATORS: constant(uint256) = 8
DRAW_ATTEMPTS: constant(uint256) = 64

# Markers in a selected validator's slot; anything else there is its metric commitment.
SELECTED: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000001
REVEALED: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000002
SLASHED: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000003

MASK3: constant(uint256) = 2**3 - 1
MASK4: constant(uint256) = 2**4 - 1
MASK20: constant(uint256) = 2**20 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK40: constant(uint256) = 2**40 - 1
MASK64: constant(uint256) = 2**64 - 1
MASK96: constant(uint256) = 2**96 - 1
MASK160: constant(uint256) = 2**160 - 1
MASK192: constant(uint256) = 2**192 - 1
MASK63: constant(uint256) = 2**63 - 1
# A worker's bid word (registry.bid_slot): overflow flag 1 | job 63 | low 192 bits of its
# commitment. Job 0 means free. The flag records that the worker once had to keep a sealed bid in
# the per-job map `_sealed` (its word was busy with a live bid of another job).
BID_OVERFLOW: constant(uint256) = 2**255
BID_FREE: constant(uint256) = 1


# Storage per job (each a single word; see _load_core/_store_core and the shifts below):
#   _core:    requester 160 | phase 3 | k 4 | lower_is_better 1 | metric commits 4 | metric
#             reveals 4 | deadline 40 | sealed bids 20 | revealed bids 20
#   _bidterms: bid_stake 96 | max_price 96 | reveal window 32 | key window 32
#   _terms:   validator fee 96 | threshold 64 | work window 32 | commit window 32 | metric reveal 32
#   _auction: leader 160 | its ask 96 (after finalize: the clearing price)
#   _metrics: revealed metrics, 4 x 64 bits per word; while bidding, word 0 holds the
#             second-lowest ask (the first metric overwrites it: a non-zero to non-zero write)
struct Core:
    requester: address
    phase: uint256
    k: uint256
    lower_is_better: bool
    n_vcommit: uint256
    n_vreveal: uint256
    deadline: uint256
    n_commits: uint256
    n_reveals: uint256

struct JobView:
    requester: address
    phase: uint256
    n_validators: uint256
    lower_is_better: bool
    deadline: uint256
    n_metric_commits: uint256
    n_metric_reveals: uint256
    max_price: uint256
    validator_fee: uint256
    threshold: uint256
    bid_stake: uint256
    reveal_window: uint256
    key_window: uint256
    work_window: uint256
    commit_window: uint256
    metric_reveal_window: uint256
    winner: address
    price: uint256
    second_price: uint256
    n_bids: uint256
    n_bid_reveals: uint256


event JobPosted:
    job: indexed(uint256)
    requester: indexed(address)
    manifest_hash: bytes32
    metric: String[32]
    threshold: uint256
    lower_is_better: bool
    n_validators: uint256
    max_price: uint256
    validator_fee: uint256
    bid_stake: uint256
    bid_deadline: uint256
    windows: uint256[5]
    artifacts: String[2048]

event BidCommitted:
    job: indexed(uint256)
    bidder: indexed(address)
    commitment: bytes32

event BidRevealed:
    job: indexed(uint256)
    bidder: indexed(address)
    price: uint256

event AuctionFinalized:
    job: indexed(uint256)
    winner: indexed(address)
    price: uint256
    key_deadline: uint256

event KeyReleased:
    job: indexed(uint256)
    worker: indexed(address)
    wrapped_key: Bytes[1024]
    work_deadline: uint256

event ResultSubmitted:
    job: indexed(uint256)
    worker: indexed(address)
    result_hash: bytes32
    magnet: String[1024]

event ValidatorsDrawn:
    job: indexed(uint256)
    validators: DynArray[address, MAX_VALIDATORS]
    commit_deadline: uint256

event TestKeysReleased:
    job: indexed(uint256)
    wrapped_keys: DynArray[Bytes[256], MAX_VALIDATORS]

event MetricCommitted:
    job: indexed(uint256)
    validator: indexed(address)
    commitment: bytes32

event MetricRevealed:
    job: indexed(uint256)
    validator: indexed(address)
    metric: uint256

event JobClosed:
    job: indexed(uint256)
    outcome: uint256
    median: uint256
    n_metrics: uint256

event ValidatorSlashed:
    job: indexed(uint256)
    validator: indexed(address)
    amount: uint256


# The next job id; set to 1 at deployment so that no job pays for creating this word.
_next_job: uint256

_core: HashMap[uint256, uint256]
_bidterms: HashMap[uint256, uint256]
_terms: HashMap[uint256, uint256]
_auction: HashMap[uint256, uint256]
_metrics: HashMap[uint256, uint256[2]]
_sealed: HashMap[uint256, HashMap[address, bytes32]]
_vslot: HashMap[uint256, HashMap[address, bytes32]]


@deploy
def __init__(token_: IERC20, min_stake_: uint256, cooldown_: uint256, slash_bps_: uint256):
    registry.__init__(token_, min_stake_, cooldown_, slash_bps_)
    self._next_job = 1


# ---------------------------------------------------------------- packing

@internal
@view
def _load_core(job: uint256) -> Core:
    w: uint256 = self._core[job]
    assert w != 0, "market: no such job"
    return Core(
        requester=convert(w & MASK160, address),
        phase=(w >> 160) & MASK3,
        k=(w >> 163) & MASK4,
        lower_is_better=(w >> 167) & 1 == 1,
        n_vcommit=(w >> 168) & MASK4,
        n_vreveal=(w >> 172) & MASK4,
        deadline=(w >> 176) & MASK40,
        n_commits=(w >> 216) & MASK20,
        n_reveals=w >> 236,
    )


@internal
def _store_core(job: uint256, c: Core):
    flag: uint256 = 0
    if c.lower_is_better:
        flag = 1
    self._core[job] = (
        convert(c.requester, uint256) | (c.phase << 160) | (c.k << 163) | (flag << 167)
        | (c.n_vcommit << 168) | (c.n_vreveal << 172) | (c.deadline << 176)
        | (c.n_commits << 216) | (c.n_reveals << 236)
    )


# ---------------------------------------------------------------- helpers

@internal
@pure
def _bid_commitment(job: uint256, bidder: address, price: uint256, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(job, bidder, price, salt))


@internal
@view
def _finalizable(c: Core, bidterms: uint256) -> bool:
    """Past the reveal window, or past bidding with every sealed bid already revealed."""
    if block.timestamp > c.deadline + ((bidterms >> 192) & MASK32):
        return True
    return block.timestamp > c.deadline and c.n_commits == c.n_reveals


@internal
def _close(job: uint256, c: Core, outcome: uint256, median: uint256, n_metrics: uint256):
    c.phase = CLOSED
    self._store_core(job, c)
    log JobClosed(job=job, outcome=outcome, median=median, n_metrics=n_metrics)


@internal
def _finalize(job: uint256, c: Core, bidterms: uint256) -> Core:
    bid_stake: uint256 = bidterms & MASK96
    max_price: uint256 = (bidterms >> 96) & MASK96
    # Sealed bids never revealed forfeit their stake to the requester.
    forfeit: uint256 = (c.n_commits - c.n_reveals) * bid_stake
    if c.n_reveals == 0:
        fee: uint256 = self._terms[job] & MASK96
        registry._credit(c.requester, forfeit + max_price + c.k * fee)
        log AuctionFinalized(job=job, winner=empty(address), price=0, key_deadline=0)
        self._close(job, c, NO_BIDS, 0, 0)
        c.phase = CLOSED
        return c
    a: uint256 = self._auction[job]
    best: address = convert(a & MASK160, address)
    price: uint256 = max_price
    if c.n_reveals >= 2:
        # Left in place: the first revealed metric overwrites this (already non-zero) word.
        price = self._metrics[job][0]
    registry._credit(c.requester, forfeit + max_price - price)
    if price != a >> 160:
        self._auction[job] = (a & MASK160) | (price << 160)
    c.phase = AWAITING_KEY
    c.deadline = block.timestamp + (bidterms >> 224)
    self._store_core(job, c)
    log AuctionFinalized(job=job, winner=best, price=price, key_deadline=c.deadline)
    return c


@internal
def _sync_validation(job: uint256, c: Core) -> Core:
    """A commit phase whose deadline passed is the reveal phase (no transaction needed for it)."""
    if c.phase == COMMIT and block.timestamp > c.deadline:
        c.phase = REVEAL
        c.deadline = c.deadline + (self._terms[job] >> 224)
    return c


@internal
def _draw(job: uint256, worker: address, requester: address, k: uint256) -> DynArray[address, MAX_VALIDATORS]:
    """Draw up to k distinct pool members, excluding the job's worker and requester.

    The seed is block.prevrandao: the block proposer can bias it, and the worker chooses the block
    it submits in; see docs/contracts.md for what that allows."""
    picked: DynArray[address, MAX_VALIDATORS] = []
    n: uint256 = len(registry.pool)
    if n == 0:
        return picked
    seed: bytes32 = keccak256(abi_encode(block.prevrandao, job))
    for i: uint256 in range(DRAW_ATTEMPTS):
        if len(picked) == k:
            break
        v: address = registry.pool[convert(keccak256(abi_encode(seed, i)), uint256) % n]
        if v == worker or v == requester or v in picked:
            continue
        picked.append(v)
    return picked


@internal
@pure
def _median(values: DynArray[uint256, MAX_VALIDATORS]) -> uint256:
    s: DynArray[uint256, MAX_VALIDATORS] = values
    n: uint256 = len(s)
    for i: uint256 in range(1, MAX_VALIDATORS):
        if i >= n:
            break
        x: uint256 = s[i]
        j: uint256 = i
        for _: uint256 in range(MAX_VALIDATORS):
            if j == 0 or s[j - 1] <= x:
                break
            s[j] = s[j - 1]
            j -= 1
        s[j] = x
    return (s[(n - 1) // 2] + s[n // 2]) // 2


@internal
@view
def _metric_list(job: uint256, n: uint256) -> DynArray[uint256, MAX_VALIDATORS]:
    out: DynArray[uint256, MAX_VALIDATORS] = []
    if n == 0:
        return out
    w: uint256 = self._metrics[job][0]
    for i: uint256 in range(MAX_VALIDATORS):
        if i >= n:
            break
        if i == 4:
            w = self._metrics[job][1]
        out.append((w >> (64 * (i % 4))) & MASK64)
    return out


@internal
def _settle(job: uint256, c: Core, terms: uint256):
    fee: uint256 = terms & MASK96
    stake: uint256 = self._bidterms[job] & MASK96
    a: uint256 = self._auction[job]
    best: address = convert(a & MASK160, address)
    price: uint256 = a >> 160
    # Fees of validators that did not reveal go back to the requester.
    refund: uint256 = (c.k - c.n_vreveal) * fee
    if c.n_vreveal == 0:
        registry._credit(c.requester, refund + price)
        registry._credit(best, stake)
        self._close(job, c, NO_VERDICT, 0, 0)
        return
    median: uint256 = self._median(self._metric_list(job, c.n_vreveal))
    threshold: uint256 = (terms >> 96) & MASK64
    passed: bool = median >= threshold
    if c.lower_is_better:
        passed = median <= threshold
    if passed:
        registry._credit(c.requester, refund)
        registry._credit(best, price + stake)
        self._close(job, c, ACCEPTED, median, c.n_vreveal)
    else:
        registry._credit(c.requester, refund + price + stake)
        self._close(job, c, REJECTED, median, c.n_vreveal)


# ---------------------------------------------------------------- requester

@external
def post_job(
    manifest_hash: bytes32,
    metric: String[32],
    threshold: uint256,
    lower_is_better: bool,
    n_validators: uint256,
    max_price: uint256,
    validator_fee: uint256,
    bid_stake: uint256,
    windows: uint256[6],
    artifacts: String[2048],
) -> uint256:
    """
    @notice Open a job and escrow max_price + n_validators * validator_fee from the caller's free
            balance (any shortfall is pulled through the token allowance).
    @param threshold Fixed-point metric threshold (the node uses 1e6 = 1.0): a minimum, or a
           maximum when lower_is_better (e.g. mse).
    @param windows Seconds: (bid, reveal, key, work, metric commit, metric reveal).
    @param artifacts Artifact magnets (kept only in the event).
    @return The new job id (ids start at 1).
    """
    assert max_price > 0, "market: max_price must be positive"
    assert max_price <= MASK96 and validator_fee <= MASK96 and bid_stake <= MASK96, "market: amount too large"
    assert n_validators >= 1 and n_validators <= MAX_VALIDATORS, "market: n_validators must be 1..8"
    assert threshold <= MASK64, "market: threshold too large"
    for w: uint256 in windows:
        assert w >= 1 and w <= MASK32, "market: every window must be 1..2**32-1 seconds"
    registry._take(msg.sender, max_price + n_validators * validator_fee)
    job: uint256 = self._next_job
    self._next_job = job + 1
    c: Core = Core(
        requester=msg.sender, phase=BIDDING, k=n_validators, lower_is_better=lower_is_better,
        n_vcommit=0, n_vreveal=0, deadline=block.timestamp + windows[0], n_commits=0, n_reveals=0,
    )
    self._store_core(job, c)
    self._bidterms[job] = bid_stake | (max_price << 96) | (windows[1] << 192) | (windows[2] << 224)
    self._terms[job] = (
        validator_fee | (threshold << 96) | (windows[3] << 160) | (windows[4] << 192) | (windows[5] << 224)
    )
    log JobPosted(
        job=job, requester=msg.sender, manifest_hash=manifest_hash, metric=metric,
        threshold=threshold, lower_is_better=lower_is_better, n_validators=n_validators,
        max_price=max_price, validator_fee=validator_fee, bid_stake=bid_stake,
        bid_deadline=c.deadline, windows=[windows[1], windows[2], windows[3], windows[4], windows[5]],
        artifacts=artifacts,
    )
    return job


@external
def release_key(job: uint256, wrapped_key: Bytes[1024]):
    """
    @notice Requester only: publish the data key wrapped for the winner and start the work window.
            Finalizes the auction first when that is due.
    """
    c: Core = self._load_core(job)
    if c.phase == BIDDING:
        bidterms: uint256 = self._bidterms[job]
        assert self._finalizable(c, bidterms), "market: auction not over"
        c = self._finalize(job, c, bidterms)
    assert msg.sender == c.requester, "market: only the requester"
    assert c.phase == AWAITING_KEY, "market: job not awaiting the key"
    assert block.timestamp <= c.deadline, "market: key window closed"
    c.phase = WORKING
    c.deadline = block.timestamp + ((self._terms[job] >> 160) & MASK32)
    self._store_core(job, c)
    worker: address = convert(self._auction[job] & MASK160, address)
    log KeyReleased(job=job, worker=worker, wrapped_key=wrapped_key, work_deadline=c.deadline)


@external
def release_test_keys(job: uint256, wrapped_keys: DynArray[Bytes[256], MAX_VALIDATORS]):
    """
    @notice Requester only, during validation: publish the test-set key wrapped for each drawn
            validator, in the order of the ValidatorsDrawn event (one transaction for all).
    """
    c: Core = self._load_core(job)
    assert msg.sender == c.requester, "market: only the requester"
    assert c.phase == COMMIT or c.phase == REVEAL, "market: job not in validation"
    assert len(wrapped_keys) == c.k, "market: need one wrapped key per drawn validator"
    log TestKeysReleased(job=job, wrapped_keys=wrapped_keys)


# ---------------------------------------------------------------- bidders

@internal
@view
def _bid_word_free(word: uint256) -> bool:
    """The bid word holds no bid that can still be revealed."""
    other: uint256 = (word >> 192) & MASK63
    if other == 0:
        return True
    return (self._core[other] >> 160) & MASK3 != BIDDING


@external
def commit_bid(job: uint256, commitment: bytes32):
    """
    @notice Seal a bid: commitment = keccak256(abi_encode(job, bidder, price, salt)). Locks the
            job's bid stake once; a later commit replaces the sealed bid and locks nothing more.
    """
    c: Core = self._load_core(job)
    assert c.phase == BIDDING, "market: job not open for bids"
    assert block.timestamp <= c.deadline, "market: bidding closed"
    assert commitment != empty(bytes32), "market: empty commitment"
    assert msg.sender != c.requester, "market: requester cannot bid"
    word: uint256 = registry._bid_slot(msg.sender)
    flag: uint256 = word & BID_OVERFLOW
    mine: uint256 = flag | (job << 192) | (convert(commitment, uint256) & MASK192)
    if (word >> 192) & MASK63 == job:
        # Replaces this bidder's sealed bid, kept in its bid word.
        registry._require_worker(msg.sender)
        registry._set_bid_slot(msg.sender, mine)
    elif flag != 0 and self._sealed[job][msg.sender] != empty(bytes32):
        # Replaces this bidder's sealed bid, kept in the per-job map.
        registry._require_worker(msg.sender)
        self._sealed[job][msg.sender] = commitment
    else:
        assert c.n_commits < MASK20, "market: too many bids"
        registry._require_worker_and_take(msg.sender, self._bidterms[job] & MASK96)
        c.n_commits += 1
        self._store_core(job, c)
        if self._bid_word_free(word):
            registry._set_bid_slot(msg.sender, mine)
        else:
            self._sealed[job][msg.sender] = commitment
            if flag == 0:
                registry._set_bid_slot(msg.sender, word | BID_OVERFLOW)
    log BidCommitted(job=job, bidder=msg.sender, commitment=commitment)


@external
def reveal_bid(job: uint256, price: uint256, salt: bytes32):
    """@notice Open a sealed bid. Bids that cannot win get their stake back at once."""
    c: Core = self._load_core(job)
    bidterms: uint256 = self._bidterms[job]
    assert c.phase == BIDDING, "market: auction already finalized"
    assert block.timestamp > c.deadline, "market: bidding still open"
    assert block.timestamp <= c.deadline + ((bidterms >> 192) & MASK32), "market: reveal window closed"
    computed: bytes32 = self._bid_commitment(job, msg.sender, price, salt)
    word: uint256 = registry._bid_slot(msg.sender)
    if (word >> 192) & MASK63 == job:
        assert word & MASK192 == convert(computed, uint256) & MASK192, "market: bid does not match commitment"
        registry._set_bid_slot(msg.sender, (word & BID_OVERFLOW) | BID_FREE)
    else:
        sealed: bytes32 = empty(bytes32)
        if word & BID_OVERFLOW != 0:
            sealed = self._sealed[job][msg.sender]
        assert sealed != empty(bytes32), "market: no sealed bid"
        assert computed == sealed, "market: bid does not match commitment"
        self._sealed[job][msg.sender] = empty(bytes32)
    assert price <= (bidterms >> 96) & MASK96, "market: price above the job's maximum"
    if c.n_reveals == 0:
        self._auction[job] = convert(msg.sender, uint256) | (price << 160)
    else:
        a: uint256 = self._auction[job]
        best: address = convert(a & MASK160, address)
        best_price: uint256 = a >> 160
        if price < best_price or (price == best_price and convert(msg.sender, uint256) < a & MASK160):
            # The new bid wins (ties go to the lower address); the old leader's ask becomes the second.
            registry._credit(best, bidterms & MASK96)
            self._metrics[job][0] = best_price
            self._auction[job] = convert(msg.sender, uint256) | (price << 160)
        else:
            registry._credit(msg.sender, bidterms & MASK96)
            if c.n_reveals == 1:
                self._metrics[job][0] = price
            elif price < self._metrics[job][0]:
                self._metrics[job][0] = price
    c.n_reveals += 1
    self._store_core(job, c)
    log BidRevealed(job=job, bidder=msg.sender, price=price)


@external
def finalize(job: uint256):
    """@notice Anyone, once the reveal window is over (or every sealed bid is revealed)."""
    c: Core = self._load_core(job)
    assert c.phase == BIDDING, "market: job not in bidding"
    bidterms: uint256 = self._bidterms[job]
    assert self._finalizable(c, bidterms), "market: auction not over"
    self._finalize(job, c, bidterms)


# ---------------------------------------------------------------- worker

@external
def submit_result(job: uint256, result_hash: bytes32, magnet: String[1024]):
    """@notice Winner only, before the work deadline; draws the validators."""
    c: Core = self._load_core(job)
    assert c.phase == WORKING, "market: job not awaiting a result"
    worker: address = convert(self._auction[job] & MASK160, address)
    assert msg.sender == worker, "market: only the winning worker"
    assert block.timestamp <= c.deadline, "market: work deadline passed"
    assert result_hash != empty(bytes32), "market: empty result hash"
    log ResultSubmitted(job=job, worker=worker, result_hash=result_hash, magnet=magnet)
    picked: DynArray[address, MAX_VALIDATORS] = self._draw(job, worker, c.requester, c.k)
    m: uint256 = len(picked)
    terms: uint256 = self._terms[job]
    if m < c.k:
        registry._credit(c.requester, (c.k - m) * (terms & MASK96))
    c.k = m
    if m == 0:
        log ValidatorsDrawn(job=job, validators=picked, commit_deadline=0)
        self._settle(job, c, terms)
        return
    for v: address in picked:
        self._vslot[job][v] = SELECTED
    c.phase = COMMIT
    c.deadline = block.timestamp + ((terms >> 192) & MASK32)
    self._store_core(job, c)
    log ValidatorsDrawn(job=job, validators=picked, commit_deadline=c.deadline)


# ---------------------------------------------------------------- validators

@external
def commit_metric(job: uint256, commitment: bytes32):
    """@notice A drawn validator seals its metric: keccak256(abi_encode(job, validator, metric, salt))."""
    c: Core = self._load_core(job)
    assert c.phase == COMMIT, "market: job not in the metric commit phase"
    assert block.timestamp <= c.deadline, "market: commit window closed"
    slot: bytes32 = self._vslot[job][msg.sender]
    assert slot != empty(bytes32), "market: not a selected validator"
    assert convert(commitment, uint256) > 3, "market: invalid commitment"
    self._vslot[job][msg.sender] = commitment
    if slot == SELECTED:
        c.n_vcommit += 1
        if c.n_vcommit == c.k:
            c.phase = REVEAL
            c.deadline = block.timestamp + (self._terms[job] >> 224)
        self._store_core(job, c)
    log MetricCommitted(job=job, validator=msg.sender, commitment=commitment)


@external
def reveal_metric(job: uint256, metric: uint256, salt: bytes32):
    """@notice Open the sealed metric; pays this validator's fee. The last reveal settles the job."""
    c: Core = self._sync_validation(job, self._load_core(job))
    assert c.phase == REVEAL, "market: job not in the metric reveal phase"
    assert block.timestamp <= c.deadline, "market: reveal window closed"
    slot: bytes32 = self._vslot[job][msg.sender]
    assert slot != empty(bytes32), "market: not a selected validator"
    assert slot != SELECTED, "market: no metric committed"
    assert slot != REVEALED, "market: metric already revealed"
    assert keccak256(abi_encode(job, msg.sender, metric, salt)) == slot, "market: metric does not match commitment"
    assert metric <= MASK64, "market: metric out of range"
    self._vslot[job][msg.sender] = REVEALED
    i: uint256 = c.n_vreveal
    w: uint256 = 0
    if i % 4 != 0:
        w = self._metrics[job][i // 4]
    self._metrics[job][i // 4] = w | (metric << (64 * (i % 4)))
    c.n_vreveal = i + 1
    terms: uint256 = self._terms[job]
    registry._credit(msg.sender, terms & MASK96)
    log MetricRevealed(job=job, validator=msg.sender, metric=metric)
    if c.n_vreveal == c.n_vcommit:
        self._settle(job, c, terms)
    else:
        self._store_core(job, c)


# ---------------------------------------------------------------- anyone

@external
def settle(job: uint256):
    """@notice Anyone, after the metric reveal window (or once every committed metric is revealed)."""
    c: Core = self._sync_validation(job, self._load_core(job))
    assert c.phase != CLOSED, "market: job already closed"
    assert c.phase == REVEAL, "market: job not in the metric reveal phase"
    assert block.timestamp > c.deadline or c.n_vreveal == c.n_vcommit, "market: reveal window still open"
    self._settle(job, c, self._terms[job])


@external
def advance(job: uint256):
    """@notice Anyone: move a job whose current deadline has passed to its next phase."""
    c: Core = self._load_core(job)
    assert c.phase != CLOSED, "market: job already closed"
    if c.phase == BIDDING:
        bidterms: uint256 = self._bidterms[job]
        assert self._finalizable(c, bidterms), "market: deadline not passed"
        self._finalize(job, c, bidterms)
        return
    assert block.timestamp > c.deadline, "market: deadline not passed"
    if c.phase == AWAITING_KEY or c.phase == WORKING:
        fee: uint256 = self._terms[job] & MASK96
        stake: uint256 = self._bidterms[job] & MASK96
        a: uint256 = self._auction[job]
        if c.phase == AWAITING_KEY:
            # The requester never released the key: the worker is not at fault.
            registry._credit(c.requester, (a >> 160) + c.k * fee)
            registry._credit(convert(a & MASK160, address), stake)
            self._close(job, c, KEY_TIMEOUT, 0, 0)
        else:
            # No result in time: the worker's bid stake goes to the requester.
            registry._credit(c.requester, (a >> 160) + c.k * fee + stake)
            self._close(job, c, WORK_TIMEOUT, 0, 0)
        return
    c = self._sync_validation(job, c)
    if c.phase == REVEAL and block.timestamp <= c.deadline:
        self._store_core(job, c)
        return
    self._settle(job, c, self._terms[job])


@external
def slash_validator(job: uint256, validator: address):
    """@notice Anyone, after settlement: a drawn validator that never revealed loses slash_bps of
            its stake to the requester (its fee was already refunded at settlement)."""
    c: Core = self._load_core(job)
    assert c.phase == CLOSED, "market: job not settled"
    slot: bytes32 = self._vslot[job][validator]
    assert slot != empty(bytes32), "market: not a selected validator"
    assert slot != REVEALED, "market: validator revealed its metric"
    assert slot != SLASHED, "market: validator already slashed"
    self._vslot[job][validator] = SLASHED
    amount: uint256 = registry._slash(validator, c.requester)
    log ValidatorSlashed(job=job, validator=validator, amount=amount)


# ---------------------------------------------------------------- views

@external
@view
def job_count() -> uint256:
    return self._next_job - 1


@external
@view
def job(job: uint256) -> JobView:
    c: Core = self._load_core(job)
    x: uint256 = self._bidterms[job]
    t: uint256 = self._terms[job]
    a: uint256 = self._auction[job]
    second: uint256 = 0
    if c.phase == BIDDING:
        second = self._metrics[job][0]
    return JobView(
        requester=c.requester, phase=c.phase, n_validators=c.k, lower_is_better=c.lower_is_better,
        deadline=c.deadline, n_metric_commits=c.n_vcommit, n_metric_reveals=c.n_vreveal,
        max_price=(x >> 96) & MASK96, validator_fee=t & MASK96, threshold=(t >> 96) & MASK64,
        bid_stake=x & MASK96, reveal_window=(x >> 192) & MASK32, key_window=x >> 224,
        work_window=(t >> 160) & MASK32, commit_window=(t >> 192) & MASK32,
        metric_reveal_window=t >> 224, winner=convert(a & MASK160, address), price=a >> 160,
        second_price=second, n_bids=c.n_commits, n_bid_reveals=c.n_reveals,
    )


@external
@view
def job_held(job: uint256) -> uint256:
    """@notice Tokens the contract holds for this job (escrow + locked bid stakes), from its state."""
    c: Core = self._load_core(job)
    x: uint256 = self._bidterms[job]
    stake: uint256 = x & MASK96
    fee: uint256 = self._terms[job] & MASK96
    price: uint256 = self._auction[job] >> 160
    if c.phase == BIDDING:
        held: uint256 = ((x >> 96) & MASK96) + c.k * fee + (c.n_commits - c.n_reveals) * stake
        if c.n_reveals > 0:
            held += stake
        return held
    if c.phase == AWAITING_KEY or c.phase == WORKING:
        return price + c.k * fee + stake
    if c.phase == COMMIT or c.phase == REVEAL:
        return price + (c.k - c.n_vreveal) * fee + stake
    return 0


@external
@view
def sealed_bid(job: uint256, bidder: address) -> bytes32:
    """@notice The bidder's sealed commitment (only its low 192 bits when kept in its bid word)."""
    word: uint256 = registry._bid_slot(bidder)
    if (word >> 192) & MASK63 == job:
        return convert(word & MASK192, bytes32)
    return self._sealed[job][bidder]


@external
@view
def validator_slot(job: uint256, validator: address) -> bytes32:
    """@notice 0: not drawn; 1: drawn; 2: revealed; 3: slashed; otherwise its commitment."""
    return self._vslot[job][validator]


@external
@view
def metrics(job: uint256) -> DynArray[uint256, MAX_VALIDATORS]:
    return self._metric_list(job, self._load_core(job).n_vreveal)


@external
@pure
def bid_commitment(job: uint256, bidder: address, price: uint256, salt: bytes32) -> bytes32:
    return self._bid_commitment(job, bidder, price, salt)
