# pragma version ~=0.4.3
"""
@title Registry and internal balances (a module initialised by the market contract)
@notice Workers and validators register here with a stake and their 64-byte secp256k1 public key
        (the key must hash to the sender's address, so whoever wraps a key for that address can
        trust it). Every account also has a free internal balance: payments, refunds and released
        stakes are credited to it and leave the contract only through `withdraw` (pull payments).
        The registry lives inside the market contract so that staking, slashing and validator
        draws cost no cross-contract calls.
@dev One storage word per account: free balance (96 bits) | stake (96) | unlock time (40) |
     roles (2) | open validation duties (6) | validator generation (16). Keeping a registered
     account's word non-zero makes every later credit or debit a cheap non-zero to non-zero write.

     Validators are drawn by stake from an append-only Fenwick (binary indexed) tree of *leaves*:
     becoming a validator appends a leaf weighing its whole stake, a top-up appends a leaf
     weighing the top-up. A leaf is live while its owner is a validator of the same generation
     (leaving, or being slashed, ends the generation). Because leaves are only appended, the
     leaves that existed when a job was posted keep their positions and weights whatever happens
     later (dead ones are pruned to weight 0 only by draws), so a job can draw from exactly the
     stake that was registered before it was posted, in O(log n) storage reads per draw and with
     no cap on the number of validators.
"""

from ethereum.ercs import IERC20

interface Burnable:
    def burn(amount: uint256): nonpayable

ROLE_WORKER: constant(uint256) = 1
ROLE_VALIDATOR: constant(uint256) = 2
BPS: constant(uint256) = 10_000
MAX_DUTIES: constant(uint256) = 63
MAX_GEN: constant(uint256) = 2**16 - 1
# Loop bound of the tree walks: a walk visits at most one node per bit of the leaf count.
TREE_BITS: constant(uint256) = 64

MASK2: constant(uint256) = 2**2 - 1
MASK6: constant(uint256) = 2**6 - 1
MASK16: constant(uint256) = 2**16 - 1
MASK40: constant(uint256) = 2**40 - 1
MASK96: constant(uint256) = 2**96 - 1
MASK160: constant(uint256) = 2**160 - 1

# What a draw finds at a leaf.
LEAF_DEAD: constant(uint256) = 0
LEAF_BUSY: constant(uint256) = 1
LEAF_LIVE: constant(uint256) = 2


struct Account:
    free: uint256
    stake: uint256
    unlock_at: uint256
    roles: uint256
    duties: uint256
    gen: uint256


event Registered:
    account: indexed(address)
    roles: uint256
    stake: uint256
    pubkey: Bytes[64]

event UnstakeRequested:
    account: indexed(address)
    unlock_at: uint256

event Unstaked:
    account: indexed(address)
    amount: uint256

event Deposited:
    account: indexed(address)
    amount: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256


token: public(immutable(IERC20))
min_stake: public(immutable(uint256))
cooldown: public(immutable(uint256))
slash_bps: public(immutable(uint256))

accounts: HashMap[address, uint256]
# Number of accounts holding the validator role.
pool_size: public(uint256)
# Leaves of the draw tree: owner 160 | generation 16 (weights live in the tree only).
leaf_count: public(uint256)
_leaf: HashMap[uint256, uint256]
_tree: HashMap[uint256, uint256]
# A worker's reusable sealed-bid word (the market's encoding); set non-zero at registration so that
# sealing a bid is a non-zero to non-zero write instead of a fresh storage slot.
bid_slot: HashMap[address, uint256]
BID_SLOT_FREE: constant(uint256) = 1


@deploy
def __init__(token_: IERC20, min_stake_: uint256, cooldown_: uint256, slash_bps_: uint256):
    assert slash_bps_ <= BPS, "registry: slash_bps above 10000"
    assert min_stake_ > 0, "registry: min_stake must be positive"
    assert min_stake_ <= MASK96, "registry: min_stake too large"
    token = token_
    min_stake = min_stake_
    cooldown = cooldown_
    slash_bps = slash_bps_


@internal
@view
def _load(a: address) -> Account:
    w: uint256 = self.accounts[a]
    return Account(
        free=w & MASK96, stake=(w >> 96) & MASK96, unlock_at=(w >> 192) & MASK40,
        roles=(w >> 232) & MASK2, duties=(w >> 234) & MASK6, gen=w >> 240,
    )


@internal
def _store(a: address, acct: Account):
    assert acct.free <= MASK96, "registry: balance overflow"
    assert acct.stake <= MASK96, "registry: stake overflow"
    self.accounts[a] = (
        acct.free | (acct.stake << 96) | (acct.unlock_at << 192) | (acct.roles << 232)
        | (acct.duties << 234) | (acct.gen << 240)
    )


@internal
def _pull(a: address, amount: uint256):
    assert extcall token.transferFrom(a, self, amount, default_return_value=True), "registry: token transfer failed"


@internal
def _burn(amount: uint256):
    """Destroy forfeited tokens: nobody, the party that caused the forfeit included, gains them."""
    if amount != 0:
        extcall Burnable(token.address).burn(amount)


@internal
def _credit(a: address, amount: uint256):
    if amount == 0:
        return
    acct: Account = self._load(a)
    acct.free += amount
    self._store(a, acct)


@internal
def _take_from(a: address, acct: Account, amount: uint256):
    """Debit `amount` from a's (loaded) free balance, pulling any shortfall through the token
    allowance."""
    if amount == 0:
        return
    if acct.free >= amount:
        acct.free -= amount
        self._store(a, acct)
        return
    short: uint256 = amount - acct.free
    if acct.free != 0:
        acct.free = 0
        self._store(a, acct)
    self._pull(a, short)


@internal
def _take(a: address, amount: uint256):
    self._take_from(a, self._load(a), amount)


@internal
@view
def _key_address(pubkey: Bytes[64]) -> address:
    return convert(convert(keccak256(pubkey), uint256) & MASK160, address)


@internal
@view
def _require_worker(a: address):
    acct: Account = self._load(a)
    assert acct.roles & ROLE_WORKER != 0, "registry: not a worker"
    assert acct.stake >= min_stake, "registry: stake below minimum"


@internal
def _require_worker_and_take(a: address, amount: uint256):
    """_require_worker then _take, reading the account word once."""
    acct: Account = self._load(a)
    assert acct.roles & ROLE_WORKER != 0, "registry: not a worker"
    assert acct.stake >= min_stake, "registry: stake below minimum"
    self._take_from(a, acct, amount)


@internal
@view
def _bid_slot(a: address) -> uint256:
    return self.bid_slot[a]


@internal
def _set_bid_slot(a: address, v: uint256):
    self.bid_slot[a] = v


# ---------------------------------------------------------------- draw tree

@internal
@pure
def _lowbit(i: uint256) -> uint256:
    return i & unsafe_sub(0, i)


@internal
@view
def _prefix(i: uint256) -> uint256:
    """Total weight of leaves 1..i."""
    s: uint256 = 0
    j: uint256 = i
    for _: uint256 in range(TREE_BITS):
        if j == 0:
            break
        s += self._tree[j]
        j -= self._lowbit(j)
    return s


@internal
def _push_leaf(owner: address, gen: uint256, weight: uint256):
    """Append a leaf: its tree node holds its weight plus the leaves it covers before it."""
    i: uint256 = self.leaf_count + 1
    node: uint256 = weight
    stop: uint256 = i - self._lowbit(i)
    j: uint256 = i - 1
    for _: uint256 in range(TREE_BITS):
        if j <= stop:
            break
        node += self._tree[j]
        j -= self._lowbit(j)
    self._tree[i] = node
    self._leaf[i] = convert(owner, uint256) | (gen << 160)
    self.leaf_count = i


@internal
def _prune(i: uint256) -> uint256:
    """Set dead leaf i to weight 0; returns the weight it had."""
    w: uint256 = self._prefix(i) - self._prefix(i - 1)
    if w == 0:
        return 0
    n: uint256 = self.leaf_count
    j: uint256 = i
    for _: uint256 in range(TREE_BITS):
        if j > n:
            break
        self._tree[j] -= w
        j += self._lowbit(j)
    return w


@internal
@view
def _search(limit: uint256, r: uint256) -> uint256:
    """The leaf (1..limit) whose weight interval holds r, for r < _prefix(limit)."""
    step: uint256 = 1
    for _: uint256 in range(TREE_BITS):
        if step << 1 > limit:
            break
        step = step << 1
    pos: uint256 = 0
    rem: uint256 = r
    for _: uint256 in range(TREE_BITS):
        if step == 0:
            break
        nxt: uint256 = pos + step
        if nxt <= limit:
            node: uint256 = self._tree[nxt]
            if node <= rem:
                pos = nxt
                rem -= node
        step = step >> 1
    return pos + 1


@internal
@view
def _leaf_state(i: uint256) -> (address, uint256):
    """Owner of leaf i and whether a draw may pick it now (live), must skip it for now (busy:
    its owner has the maximum of open duties) or may prune it (dead: its owner left the pool,
    was slashed, or re-registered since)."""
    leaf: uint256 = self._leaf[i]
    owner: address = convert(leaf & MASK160, address)
    acct: Account = self._load(owner)
    if acct.roles & ROLE_VALIDATOR == 0 or acct.gen != leaf >> 160:
        return owner, LEAF_DEAD
    if acct.duties >= MAX_DUTIES:
        return owner, LEAF_BUSY
    return owner, LEAF_LIVE


@internal
def _add_duty(a: address):
    acct: Account = self._load(a)
    acct.duties += 1
    self._store(a, acct)


@internal
def _credit_and_end_duty(a: address, amount: uint256):
    """Pay a validator that did its duty and close that duty, in one write."""
    acct: Account = self._load(a)
    acct.free += amount
    acct.duties -= 1
    self._store(a, acct)


@internal
def _drop_validator(acct: Account) -> Account:
    if acct.roles & ROLE_VALIDATOR != 0:
        acct.roles = acct.roles & ROLE_WORKER
        self.pool_size -= 1
    return acct


@internal
def _slash(a: address) -> uint256:
    """Burn slash_bps of a's stake for a missed duty, close that duty and take a out of the pool
    (it may register again, which adds a leaf weighing what is left of its stake)."""
    acct: Account = self._load(a)
    amount: uint256 = acct.stake * slash_bps // BPS
    acct.stake -= amount
    acct.duties -= 1
    acct = self._drop_validator(acct)
    self._store(a, acct)
    self._burn(amount)
    return amount


@external
def deposit(amount: uint256):
    """@notice Move `amount` tokens (approved beforehand) into the caller's free balance."""
    assert amount > 0, "registry: nothing to deposit"
    self._pull(msg.sender, amount)
    self._credit(msg.sender, amount)
    log Deposited(account=msg.sender, amount=amount)


@external
def withdraw(amount: uint256):
    """@notice Pay `amount` of the caller's free balance out in tokens."""
    assert amount > 0, "registry: nothing to withdraw"
    acct: Account = self._load(msg.sender)
    assert acct.free >= amount, "registry: insufficient balance"
    acct.free -= amount
    self._store(msg.sender, acct)
    assert extcall token.transfer(msg.sender, amount, default_return_value=True), "registry: token transfer failed"
    log Withdrawn(account=msg.sender, amount=amount)


@external
def register(roles: uint256, pubkey: Bytes[64], stake: uint256):
    """
    @notice Register (or add roles and stake) as worker (1), validator (2) or both (3).
            `pubkey` is the 64-byte uncompressed secp256k1 key (no 0x04 prefix) of msg.sender.
            Joining the validator pool adds a draw leaf weighing the whole stake; a top-up by a
            validator adds a leaf weighing the top-up. Either counts only for jobs posted later.
    """
    assert roles >= ROLE_WORKER and roles <= ROLE_WORKER | ROLE_VALIDATOR, "registry: roles not 1, 2 or 3"
    assert len(pubkey) == 64, "registry: pubkey not 64 bytes"
    assert self._key_address(pubkey) == msg.sender, "registry: pubkey is not sender's"
    assert self._load(msg.sender).unlock_at == 0, "registry: unstaking in progress"
    self._take(msg.sender, stake)
    acct: Account = self._load(msg.sender)
    was_validator: bool = acct.roles & ROLE_VALIDATOR != 0
    acct.stake += stake
    acct.roles = acct.roles | roles
    assert acct.stake >= min_stake, "registry: stake below minimum"
    if acct.roles & ROLE_VALIDATOR != 0:
        if not was_validator:
            assert acct.gen < MAX_GEN, "registry: too many generations"
            acct.gen += 1
            self.pool_size += 1
            self._push_leaf(msg.sender, acct.gen, acct.stake)
        elif stake > 0:
            self._push_leaf(msg.sender, acct.gen, stake)
    self._store(msg.sender, acct)
    if acct.roles & ROLE_WORKER != 0 and self.bid_slot[msg.sender] == 0:
        self.bid_slot[msg.sender] = BID_SLOT_FREE
    log Registered(account=msg.sender, roles=acct.roles, stake=acct.stake, pubkey=pubkey)


@external
def request_unstake():
    """@notice Leave both roles now; the stake becomes withdrawable after the cool-down, once
            every validation this account was drawn for is done (or slashed)."""
    acct: Account = self._load(msg.sender)
    assert acct.roles != 0, "registry: not registered"
    acct = self._drop_validator(acct)
    acct.roles = 0
    acct.unlock_at = block.timestamp + cooldown
    self._store(msg.sender, acct)
    log UnstakeRequested(account=msg.sender, unlock_at=acct.unlock_at)


@external
def unstake():
    """@notice After the cool-down, with no open validation duty, move the whole stake to the
            free balance."""
    acct: Account = self._load(msg.sender)
    assert acct.unlock_at != 0, "registry: no unstake requested"
    assert block.timestamp >= acct.unlock_at, "registry: cool-down not over"
    assert acct.duties == 0, "registry: open validation duties"
    amount: uint256 = acct.stake
    acct.free += amount
    acct.stake = 0
    acct.unlock_at = 0
    self._store(msg.sender, acct)
    log Unstaked(account=msg.sender, amount=amount)


@external
@view
def account(a: address) -> Account:
    """@notice (free balance, stake, unlock time, roles, open duties, generation) of an account."""
    return self._load(a)


@external
@view
def balance_of(a: address) -> uint256:
    return self._load(a).free


@external
@view
def stake_of(a: address) -> uint256:
    return self._load(a).stake


@external
@view
def holdings(accounts: DynArray[address, 256]) -> uint256:
    """@notice Sum of free balances and stakes of `accounts` (one call for audits and tests)."""
    total: uint256 = 0
    for a: address in accounts:
        acct: Account = self._load(a)
        total += acct.free + acct.stake
    return total


@external
@view
def leaf(i: uint256) -> (address, uint256, bool):
    """@notice Draw leaf i (1..leaf_count): owner, current weight, whether a draw may pick it."""
    assert i >= 1 and i <= self.leaf_count, "registry: no such leaf"
    owner: address = empty(address)
    state: uint256 = 0
    owner, state = self._leaf_state(i)
    return owner, self._prefix(i) - self._prefix(i - 1), state != LEAF_DEAD


@external
@view
def pool_weight() -> uint256:
    """@notice Weight of every leaf not yet pruned (live stake plus dead leaves no draw hit yet)."""
    return self._prefix(self.leaf_count)
