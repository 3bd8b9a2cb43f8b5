# pragma version ~=0.4.3
"""
@title Morphware job market
@notice Per job: post (escrow max price + validator fees) -> sealed bids -> reveal -> finalize
        (lowest ask wins and is paid its own ask) -> key release -> result -> validator draw
        (seeded by the hash of a block mined after the result, stake-weighted over validators
        registered before the job was posted) -> drawn validators commit, then reveal a verdict
        (a metric, or "model unusable", or "test data unusable"; or "declined", which is paid
        nothing and not counted) -> settle by the median verdict.
        Every phase has a deadline of at least `min_window` seconds after which anyone can move
        the job on (`advance`), and every path credits each token to somebody's internal balance
        or burns it; tokens leave only through `withdraw`. See docs/contracts.md for the rules in
        prose and the table of deviations and what each costs.
@dev Jobs are packed into five storage words (see the _load/_store helpers) and artifact magnets,
     manifest hashes and wrapped keys live only in event data.
"""

from ethereum.ercs import IERC20

import registry
initializes: registry

exports: (
    registry.token,
    registry.min_stake,
    registry.cooldown,
    registry.slash_bps,
    registry.leaf_count,
    registry.pool_weight,
    registry.deposit,
    registry.withdraw,
    registry.register,
    registry.request_unstake,
    registry.unstake,
    registry.account,
    registry.balance_of,
    registry.stake_of,
    registry.pool_size,
)

BIDDING: constant(uint256) = 1
AWAITING_KEY: constant(uint256) = 2
WORKING: constant(uint256) = 3
COMMIT: constant(uint256) = 4
REVEAL: constant(uint256) = 5
CLOSED: constant(uint256) = 6
DRAWING: constant(uint256) = 7

NO_BIDS: constant(uint256) = 1
KEY_TIMEOUT: constant(uint256) = 2
WORK_TIMEOUT: constant(uint256) = 3
ACCEPTED: constant(uint256) = 4
REJECTED: constant(uint256) = 5
NO_VERDICT: constant(uint256) = 6
DATA_FAULT: constant(uint256) = 7
KEY_REJECTED: constant(uint256) = 8

# Verdicts a validator can reveal besides a metric (metrics are at most MAX_METRIC). DECLINED is
# no verdict: the validator could not evaluate in time and says so; it is not paid, not slashed,
# and not counted in the median.
MODEL_UNUSABLE: constant(uint256) = 2**64 - 1
DATA_UNUSABLE: constant(uint256) = 2**64 - 2
DECLINED: constant(uint256) = 2**64 - 3
MAX_METRIC: constant(uint256) = 2**64 - 4

MAX_VALIDATORS: constant(uint256) = 8
DRAW_ATTEMPTS: constant(uint256) = 64
BLOCKHASH_WINDOW: constant(uint256) = 256

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
#   _core:    requester 160 | phase 3 | k 4 | lower_is_better 1 | metric commits 4 (less those
#             revealed DECLINED) | metric reveals 4 (verdicts that count: not DECLINED) |
#             deadline 40 (while DRAWING: the block whose hash seeds the draw) |
#             sealed bids 20 | revealed bids 20
#   _bidterms: bid_stake 96 | max_price 96 | reveal window 32 | key window 32
#   _terms:   validator fee 96 | threshold 64 | work window 32 | commit window 32 | metric reveal 32
#   _auction: leader 160 | its ask 96 (after finalize: the price, which is the winner's ask)
#   _metrics: revealed verdicts, 4 x 64 bits per word; until the first verdict, word 0 holds the
#             number of draw leaves that existed when the job was posted (the draw's range)
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

event BidStakesBurned:
    job: indexed(uint256)
    n_bids: uint256
    amount: uint256

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
    draw_block: uint256

event ValidatorsDrawn:
    job: indexed(uint256)
    validators: DynArray[address, MAX_VALIDATORS]
    commit_deadline: uint256
    seed: bytes32

event TestKeysReleased:
    job: indexed(uint256)
    wrapped_keys: Bytes[2064]

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


# Floors every job must respect, fixed at deployment: the shortest window (seconds) any phase
# may have, the smallest bid stake, and how many blocks after the result the draw's seed block is.
min_window: public(immutable(uint256))
min_bid_stake: public(immutable(uint256))
draw_delay: public(immutable(uint256))

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
def __init__(
    token_: IERC20, min_stake_: uint256, cooldown_: uint256, slash_bps_: uint256,
    min_window_: uint256, min_bid_stake_: uint256, draw_delay_: uint256,
):
    assert min_window_ >= 1 and min_window_ <= MASK32, "market: min_window must be 1..2**32-1 seconds"
    assert min_bid_stake_ >= 1 and min_bid_stake_ <= MASK96, "market: min_bid_stake must be positive"
    assert draw_delay_ >= 1 and draw_delay_ <= 128, "market: draw_delay must be 1..128 blocks"
    registry.__init__(token_, min_stake_, cooldown_, slash_bps_)
    min_window = min_window_
    min_bid_stake = min_bid_stake_
    draw_delay = draw_delay_
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
def _close_neutral(job: uint256, c: Core, outcome: uint256):
    """End a job after the auction with nobody at fault: the requester gets its escrow back
    (price and fees), the winner its bid stake."""
    a: uint256 = self._auction[job]
    registry._credit(c.requester, (a >> 160) + c.k * (self._terms[job] & MASK96))
    registry._credit(convert(a & MASK160, address), self._bidterms[job] & MASK96)
    self._close(job, c, outcome, 0, 0)


@internal
def _finalize(job: uint256, c: Core, bidterms: uint256) -> Core:
    bid_stake: uint256 = bidterms & MASK96
    max_price: uint256 = (bidterms >> 96) & MASK96
    # Sealed bids never revealed are burned: a bidder that keeps bids back to choose among them
    # after seeing the others pays for every one it drops, and the requester gains nothing.
    unrevealed: uint256 = c.n_commits - c.n_reveals
    if unrevealed != 0:
        registry._burn(unrevealed * bid_stake)
        log BidStakesBurned(job=job, n_bids=unrevealed, amount=unrevealed * bid_stake)
    if c.n_reveals == 0:
        fee: uint256 = self._terms[job] & MASK96
        registry._credit(c.requester, max_price + c.k * fee)
        log AuctionFinalized(job=job, winner=empty(address), price=0, key_deadline=0)
        self._close(job, c, NO_BIDS, 0, 0)
        c.phase = CLOSED
        return c
    # Pay-as-bid: the winner is paid its own ask, so no other revealed bid moves its price.
    a: uint256 = self._auction[job]
    best: address = convert(a & MASK160, address)
    price: uint256 = a >> 160
    registry._credit(c.requester, max_price - price)
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
@view
def _seed(job: uint256, target: uint256) -> bytes32:
    """keccak256(hash of block `target`, job). When that hash has left the 256-block window,
    the latest block whose number is target + a multiple of 256 stands in for it."""
    b: uint256 = target
    if block.number - target > BLOCKHASH_WINDOW:
        b = target + (block.number - 1 - target) // BLOCKHASH_WINDOW * BLOCKHASH_WINDOW
    return keccak256(abi_encode(blockhash(b), job))


@internal
def _draw(
    job: uint256, seed: bytes32, worker: address, requester: address, k: uint256
) -> DynArray[address, MAX_VALIDATORS]:
    """Draw up to k distinct validators, each with probability proportional to its stake, from
    the leaves that existed when the job was posted, excluding the job's worker and requester.
    Dead leaves hit on the way are pruned (a later draw no longer wastes attempts on them)."""
    picked: DynArray[address, MAX_VALIDATORS] = []
    limit: uint256 = self._metrics[job][0]
    total: uint256 = registry._prefix(limit)
    for i: uint256 in range(DRAW_ATTEMPTS):
        if len(picked) == k or total == 0:
            break
        leaf: uint256 = registry._search(limit, convert(keccak256(abi_encode(seed, i)), uint256) % total)
        v: address = empty(address)
        state: uint256 = 0
        v, state = registry._leaf_state(leaf)
        if state == registry.LEAF_DEAD:
            total -= registry._prune(leaf)
            continue
        if state != registry.LEAF_LIVE or v == worker or v == requester or v in picked:
            continue
        picked.append(v)
        registry._add_duty(v)
        self._vslot[job][v] = SELECTED
    return picked


@internal
@pure
def _sorted(values: DynArray[uint256, MAX_VALIDATORS]) -> DynArray[uint256, MAX_VALIDATORS]:
    s: DynArray[uint256, MAX_VALIDATORS] = values
    n: uint256 = len(s)
    for i: uint256 in range(1, MAX_VALIDATORS):
        if i >= n:
            break
        x: uint256 = s[i]
        j: uint256 = i
        for _: uint256 in range(MAX_VALIDATORS):
            if j == 0 or s[unsafe_sub(j, 1)] <= x:
                break
            s[j] = s[unsafe_sub(j, 1)]
            j = unsafe_sub(j, 1)
        s[j] = x
    return s


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
@pure
def _verdict_key(v: uint256, lower_is_better: bool) -> uint256:
    """Order verdicts from worst to best for the worker: model unusable, then metrics from worst
    to best, then test data unusable (the requester's fault, so the worker is paid)."""
    if v == MODEL_UNUSABLE:
        return 0
    if v == DATA_UNUSABLE:
        return MAX_METRIC + 2
    # v is a metric or a threshold (at most MAX_METRIC): no overflow or underflow
    if lower_is_better:
        return unsafe_sub(MAX_METRIC + 1, v)
    return unsafe_add(v, 1)


@internal
@pure
def _key_metric(key: uint256, lower_is_better: bool) -> uint256:
    # key is a metric's (1..MAX_METRIC + 1): no underflow
    if lower_is_better:
        return unsafe_sub(MAX_METRIC + 1, key)
    return unsafe_sub(key, 1)


@internal
@view
def _judge(job: uint256, c: Core, threshold: uint256) -> (uint256, uint256):
    """(outcome, median) from the median of the revealed verdicts (DECLINED ones are not
    stored). With an even count whose two middle verdicts are of different kinds, the one nearer
    the threshold decides when both say the same for the worker (both reject it: "model
    unusable" and a failing metric; or both pay it: a passing metric and "test data unusable");
    otherwise the chain cannot tell who is at fault: NO_VERDICT, which is neutral for the worker
    and the requester."""
    keys: DynArray[uint256, MAX_VALIDATORS] = []
    verdicts: DynArray[uint256, MAX_VALIDATORS] = self._metric_list(job, c.n_vreveal)
    for v: uint256 in verdicts:
        keys.append(self._verdict_key(v, c.lower_is_better))
    keys = self._sorted(keys)
    lo: uint256 = keys[unsafe_sub(len(keys), 1) // 2]  # at least one verdict
    hi: uint256 = keys[len(keys) // 2]
    if lo == 0 or hi > MAX_METRIC + 1:
        # Keys at or above the threshold's pay the worker, those below reject it.
        t: uint256 = self._verdict_key(threshold, c.lower_is_better)
        if lo >= t:
            hi = lo
        elif hi < t:
            lo = hi
        else:
            return NO_VERDICT, 0
    if lo == 0:
        return REJECTED, MODEL_UNUSABLE
    if lo > MAX_METRIC + 1:
        return DATA_FAULT, DATA_UNUSABLE
    median: uint256 = (self._key_metric(lo, c.lower_is_better) + self._key_metric(hi, c.lower_is_better)) // 2
    passed: bool = median >= threshold
    if c.lower_is_better:
        passed = median <= threshold
    if passed:
        return ACCEPTED, median
    return REJECTED, median


@internal
def _settle(job: uint256, c: Core, terms: uint256):
    fee: uint256 = terms & MASK96
    stake: uint256 = self._bidterms[job] & MASK96
    a: uint256 = self._auction[job]
    best: address = convert(a & MASK160, address)
    price: uint256 = a >> 160
    # Fees of validators that did not reveal a verdict (silent, or DECLINED: n_vreveal counts
    # only verdicts) go back to the requester; with no verdict at all the job is NO_VERDICT.
    refund: uint256 = (c.k - c.n_vreveal) * fee
    outcome: uint256 = NO_VERDICT
    median: uint256 = 0
    if c.n_vreveal != 0:
        outcome, median = self._judge(job, c, (terms >> 96) & MASK64)
    if outcome == ACCEPTED or outcome == DATA_FAULT:
        registry._credit(c.requester, refund)
        registry._credit(best, price + stake)
    elif outcome == REJECTED:
        registry._credit(c.requester, refund + price + stake)
    else:
        registry._credit(c.requester, refund + price)
        registry._credit(best, stake)
    self._close(job, c, outcome, median, c.n_vreveal)


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
    @param bid_stake Locked by every sealed bid; at least min_bid_stake and at least the
           validators' fees (so a worker whose result is rejected pays for its validation).
    @param windows Seconds, each at least min_window: (bid, reveal, key, work, metric commit,
           metric reveal).
    @param artifacts Artifact magnets (kept only in the event).
    @return The new job id (ids start at 1).
    """
    assert max_price > 0, "market: max_price is zero"
    assert max_price <= MASK96 and validator_fee <= MASK96 and bid_stake <= MASK96, "market: amount too large"
    assert n_validators >= 1 and n_validators <= MAX_VALIDATORS, "market: n_validators not 1..8"
    assert threshold <= MAX_METRIC, "market: threshold too large"
    assert bid_stake >= min_bid_stake, "market: bid_stake below minimum"
    assert bid_stake >= n_validators * validator_fee, "market: bid_stake below the fees"
    assert registry.pool_size >= n_validators, "market: too few validators"
    for w: uint256 in windows:
        assert w >= min_window, "market: window below min_window"
        assert w <= MASK32, "market: window too long"
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
    # Only stake registered before this job may validate it.
    self._metrics[job][0] = registry.leaf_count
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
def release_test_keys(job: uint256, wrapped_keys: Bytes[2064]):
    """
    @notice Requester only, during validation: publish the test-set key wrapped for each drawn
            validator, in the order of the ValidatorsDrawn event, each as a 2-byte big-endian
            length and the wrapped key (one transaction for all). The chain does not read them:
            a validator whose key is missing or does not open the test data reveals
            DATA_UNUSABLE, which pays the worker.
    """
    c: Core = self._load_core(job)
    assert msg.sender == c.requester, "market: only the requester"
    assert c.phase == COMMIT or c.phase == REVEAL, "market: job not in validation"
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
    assert c.phase == BIDDING, "market: auction finalized"
    assert block.timestamp > c.deadline, "market: bidding still open"
    assert block.timestamp <= c.deadline + ((bidterms >> 192) & MASK32), "market: reveal window closed"
    computed: bytes32 = self._bid_commitment(job, msg.sender, price, salt)
    word: uint256 = registry._bid_slot(msg.sender)
    if (word >> 192) & MASK63 == job:
        assert word & MASK192 == convert(computed, uint256) & MASK192, "market: bid != commitment"
        registry._set_bid_slot(msg.sender, (word & BID_OVERFLOW) | BID_FREE)
    else:
        sealed: bytes32 = empty(bytes32)
        if word & BID_OVERFLOW != 0:
            sealed = self._sealed[job][msg.sender]
        assert sealed != empty(bytes32), "market: no sealed bid"
        assert computed == sealed, "market: bid != commitment"
        self._sealed[job][msg.sender] = empty(bytes32)
    assert price <= (bidterms >> 96) & MASK96, "market: price above max_price"
    if c.n_reveals == 0:
        self._auction[job] = convert(msg.sender, uint256) | (price << 160)
    else:
        a: uint256 = self._auction[job]
        best: address = convert(a & MASK160, address)
        best_price: uint256 = a >> 160
        if price < best_price or (price == best_price and convert(msg.sender, uint256) < a & MASK160):
            # The new bid leads (ties go to the lower address); the old leader's stake comes back.
            registry._credit(best, bidterms & MASK96)
            self._auction[job] = convert(msg.sender, uint256) | (price << 160)
        else:
            registry._credit(msg.sender, bidterms & MASK96)
    c.n_reveals += 1
    self._store_core(job, c)
    log BidRevealed(job=job, bidder=msg.sender, price=price)


# ---------------------------------------------------------------- worker

@external
def reject_key(job: uint256):
    """
    @notice Winner only, during the work window: the data key it was given does not open the
            data. The chain cannot tell which side is lying, so the job ends neutrally
            (KEY_REJECTED): the requester gets its escrow back and the worker its bid stake.
    """
    c: Core = self._load_core(job)
    assert c.phase == WORKING, "market: job not in work phase"
    a: uint256 = self._auction[job]
    worker: address = convert(a & MASK160, address)
    assert msg.sender == worker, "market: only the winning worker"
    assert block.timestamp <= c.deadline, "market: work deadline passed"
    self._close_neutral(job, c, KEY_REJECTED)


@external
def submit_result(job: uint256, result_hash: bytes32, magnet: String[1024]):
    """@notice Winner only, before the work deadline. Fixes the block (draw_delay blocks later)
            whose hash will seed the validator draw; `draw` can run once it is mined."""
    c: Core = self._load_core(job)
    assert c.phase == WORKING, "market: job not in work phase"
    worker: address = convert(self._auction[job] & MASK160, address)
    assert msg.sender == worker, "market: only the winning worker"
    assert block.timestamp <= c.deadline, "market: work deadline passed"
    assert result_hash != empty(bytes32), "market: empty result hash"
    c.phase = DRAWING
    c.deadline = block.number + draw_delay
    self._store_core(job, c)
    log ResultSubmitted(job=job, worker=worker, result_hash=result_hash, magnet=magnet, draw_block=c.deadline)


@internal
def _draw_job(job: uint256, c: Core):
    assert block.number > c.deadline, "market: draw block not mined yet"
    seed: bytes32 = self._seed(job, c.deadline)
    worker: address = convert(self._auction[job] & MASK160, address)
    picked: DynArray[address, MAX_VALIDATORS] = self._draw(job, seed, worker, c.requester, c.k)
    m: uint256 = len(picked)
    terms: uint256 = self._terms[job]
    if m < c.k:
        registry._credit(c.requester, (c.k - m) * (terms & MASK96))
    c.k = m
    if m == 0:
        log ValidatorsDrawn(job=job, validators=picked, commit_deadline=0, seed=seed)
        self._settle(job, c, terms)
        return
    c.phase = COMMIT
    c.deadline = block.timestamp + ((terms >> 192) & MASK32)
    self._store_core(job, c)
    log ValidatorsDrawn(job=job, validators=picked, commit_deadline=c.deadline, seed=seed)


@external
def draw(job: uint256):
    """@notice Anyone, once the seed block is mined: draw the job's validators."""
    c: Core = self._load_core(job)
    assert c.phase == DRAWING, "market: job not awaiting a draw"
    self._draw_job(job, c)


# ---------------------------------------------------------------- validators

@external
def commit_metric(job: uint256, commitment: bytes32):
    """@notice A drawn validator seals its verdict: keccak256(abi_encode(job, validator, verdict,
            salt)), the verdict being a metric, MODEL_UNUSABLE, DATA_UNUSABLE or DECLINED."""
    c: Core = self._load_core(job)
    assert c.phase == COMMIT, "market: not in verdict commit"
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
    """@notice Open the sealed verdict; ends this validator's duty and pays its fee, except for
            DECLINED (no fee, no vote: the job waits for one committed verdict fewer). The last
            reveal settles the job. A drawn validator that never reveals is slashed."""
    c: Core = self._sync_validation(job, self._load_core(job))
    assert c.phase == REVEAL, "market: not in verdict reveal"
    assert block.timestamp <= c.deadline, "market: reveal window closed"
    slot: bytes32 = self._vslot[job][msg.sender]
    assert slot != empty(bytes32), "market: not a selected validator"
    assert slot != SELECTED, "market: no verdict committed"
    assert slot != REVEALED, "market: verdict already revealed"
    assert keccak256(abi_encode(job, msg.sender, metric, salt)) == slot, "market: verdict != commitment"
    assert metric <= MODEL_UNUSABLE, "market: verdict out of range"
    self._vslot[job][msg.sender] = REVEALED
    terms: uint256 = self._terms[job]
    fee: uint256 = terms & MASK96
    if metric == DECLINED:
        # No verdict: no fee (it goes back to the requester at settlement), no vote, and one
        # committed verdict fewer to wait for.
        c.n_vcommit = unsafe_sub(c.n_vcommit, 1)  # it committed: at least 1
        fee = 0
    else:
        i: uint256 = c.n_vreveal
        w: uint256 = 0
        if i % 4 != 0:
            w = self._metrics[job][i // 4]
        self._metrics[job][i // 4] = w | (metric << (64 * (i % 4)))
        c.n_vreveal = i + 1
    registry._credit_and_end_duty(msg.sender, fee)
    log MetricRevealed(job=job, validator=msg.sender, metric=metric)
    if c.n_vreveal == c.n_vcommit:
        self._settle(job, c, terms)
    else:
        self._store_core(job, c)


# ---------------------------------------------------------------- anyone

@external
def advance(job: uint256):
    """@notice Anyone: move a job on once it can be: finalize an auction whose reveals are over
            (or all in), draw the validators once the seed block is mined, take the timeout path
            of a missed key or result, settle once the verdict reveal window is over."""
    c: Core = self._load_core(job)
    assert c.phase != CLOSED, "market: job already closed"
    if c.phase == BIDDING:
        bidterms: uint256 = self._bidterms[job]
        assert self._finalizable(c, bidterms), "market: deadline not passed"
        self._finalize(job, c, bidterms)
        return
    if c.phase == DRAWING:
        self._draw_job(job, c)
        return
    assert block.timestamp > c.deadline, "market: deadline not passed"
    if c.phase == AWAITING_KEY or c.phase == WORKING:
        if c.phase == AWAITING_KEY:
            # The requester never released the key: the worker is not at fault.
            self._close_neutral(job, c, KEY_TIMEOUT)
            return
        # No result (and no key rejection) in time: the worker's bid stake goes to the requester.
        fee: uint256 = self._terms[job] & MASK96
        stake: uint256 = self._bidterms[job] & MASK96
        registry._credit(c.requester, (self._auction[job] >> 160) + c.k * fee + stake)
        self._close(job, c, WORK_TIMEOUT, 0, 0)
        return
    c = self._sync_validation(job, c)
    if c.phase == REVEAL and block.timestamp <= c.deadline:
        self._store_core(job, c)
        return
    self._settle(job, c, self._terms[job])


@external
def slash_validator(job: uint256, validator: address):
    """@notice Anyone, after settlement: a drawn validator that never revealed its verdict loses
            slash_bps of its stake, which is burned (nobody gains from another's slash), and
            leaves the pool until it registers again. Its open duty for the job ends."""
    c: Core = self._load_core(job)
    assert c.phase == CLOSED, "market: job not settled"
    slot: bytes32 = self._vslot[job][validator]
    assert slot != empty(bytes32), "market: not a selected validator"
    assert slot != REVEALED, "market: validator revealed"
    assert slot != SLASHED, "market: already slashed"
    self._vslot[job][validator] = SLASHED
    amount: uint256 = registry._slash(validator)
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
    return JobView(
        requester=c.requester, phase=c.phase, n_validators=c.k, lower_is_better=c.lower_is_better,
        deadline=c.deadline, n_metric_commits=c.n_vcommit, n_metric_reveals=c.n_vreveal,
        max_price=(x >> 96) & MASK96, validator_fee=t & MASK96, threshold=(t >> 96) & MASK64,
        bid_stake=x & MASK96, reveal_window=(x >> 192) & MASK32, key_window=x >> 224,
        work_window=(t >> 160) & MASK32, commit_window=(t >> 192) & MASK32,
        metric_reveal_window=t >> 224, winner=convert(a & MASK160, address), price=a >> 160,
        n_bids=c.n_commits, n_bid_reveals=c.n_reveals,
    )


@external
@view
def validator_slot(job: uint256, validator: address) -> bytes32:
    """@notice 0: not drawn; 1: drawn; 2: revealed; 3: slashed; otherwise its commitment."""
    return self._vslot[job][validator]
