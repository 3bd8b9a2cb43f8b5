# pragma version ~=0.4.3
"""
@title Registry and internal balances (a module initialised by the market contract)
@notice Workers and validators register here with a stake and their 64-byte secp256k1 public key
        (the key must hash to the sender's address, so whoever wraps a key for that address can
        trust it). Every account also has a free internal balance: payments, refunds and released
        stakes are credited to it and leave the contract only through `withdraw` (pull payments).
        The registry lives inside the market contract so that staking, slashing and validator
        draws cost no cross-contract calls.
@dev One storage word per account: free balance (112 bits) | stake (96) | unlock time (40) |
     roles (8). Keeping a registered account's word non-zero makes every later credit or debit a
     cheap non-zero to non-zero write.
"""

from ethereum.ercs import IERC20

ROLE_WORKER: constant(uint256) = 1
ROLE_VALIDATOR: constant(uint256) = 2
MAX_POOL: constant(uint256) = 4096
BPS: constant(uint256) = 10_000

MASK40: constant(uint256) = 2**40 - 1
MASK96: constant(uint256) = 2**96 - 1
MASK112: constant(uint256) = 2**112 - 1
MASK160: constant(uint256) = 2**160 - 1


struct Account:
    free: uint256
    stake: uint256
    unlock_at: uint256
    roles: uint256


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
pool: public(DynArray[address, MAX_POOL])
pool_pos: HashMap[address, uint256]
# A worker's reusable sealed-bid word (the market's encoding); set non-zero at registration so that
# sealing a bid is a non-zero to non-zero write instead of a fresh storage slot.
bid_slot: HashMap[address, uint256]
BID_SLOT_FREE: constant(uint256) = 1


@deploy
def __init__(token_: IERC20, min_stake_: uint256, cooldown_: uint256, slash_bps_: uint256):
    assert slash_bps_ <= BPS, "registry: slash_bps above 10000"
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
        free=w & MASK112, stake=(w >> 112) & MASK96, unlock_at=(w >> 208) & MASK40, roles=w >> 248
    )


@internal
def _store(a: address, acct: Account):
    assert acct.free <= MASK112, "registry: balance overflow"
    assert acct.stake <= MASK96, "registry: stake overflow"
    self.accounts[a] = acct.free | (acct.stake << 112) | (acct.unlock_at << 208) | (acct.roles << 248)


@internal
def _pull(a: address, amount: uint256):
    assert extcall token.transferFrom(a, self, amount, default_return_value=True), "registry: token transfer failed"


@internal
def _credit(a: address, amount: uint256):
    if amount == 0:
        return
    acct: Account = self._load(a)
    acct.free += amount
    self._store(a, acct)


@internal
def _take(a: address, amount: uint256):
    """Debit `amount` from the free balance, pulling any shortfall through the token allowance."""
    if amount == 0:
        return
    acct: Account = self._load(a)
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
@view
def _key_address(pubkey: Bytes[64]) -> address:
    return convert(convert(keccak256(pubkey), uint256) & MASK160, address)


@internal
@view
def _require_worker(a: address):
    acct: Account = self._load(a)
    assert acct.roles & ROLE_WORKER != 0, "registry: not a registered worker"
    assert acct.stake >= min_stake, "registry: worker stake below minimum"


@internal
def _require_worker_and_take(a: address, amount: uint256):
    """_require_worker then _take, reading the account word once."""
    acct: Account = self._load(a)
    assert acct.roles & ROLE_WORKER != 0, "registry: not a registered worker"
    assert acct.stake >= min_stake, "registry: worker stake below minimum"
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
@view
def _bid_slot(a: address) -> uint256:
    return self.bid_slot[a]


@internal
def _set_bid_slot(a: address, v: uint256):
    self.bid_slot[a] = v


@internal
def _pool_add(a: address):
    if self.pool_pos[a] == 0:
        self.pool.append(a)
        self.pool_pos[a] = len(self.pool)


@internal
def _pool_remove(a: address):
    pos: uint256 = self.pool_pos[a]
    if pos == 0:
        return
    last: address = self.pool.pop()
    if pos <= len(self.pool):
        self.pool[pos - 1] = last
        self.pool_pos[last] = pos
    self.pool_pos[a] = 0


@internal
def _slash(a: address, beneficiary: address) -> uint256:
    """Move slash_bps of a's stake to the beneficiary's free balance; drop a from the pool when its
    stake falls below the minimum."""
    acct: Account = self._load(a)
    amount: uint256 = acct.stake * slash_bps // BPS
    acct.stake -= amount
    self._store(a, acct)
    if acct.stake < min_stake:
        self._pool_remove(a)
    self._credit(beneficiary, amount)
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
    """
    assert roles >= ROLE_WORKER and roles <= ROLE_WORKER | ROLE_VALIDATOR, "registry: roles must be 1 (worker), 2 (validator) or 3 (both)"
    assert len(pubkey) == 64, "registry: public key must be 64 bytes"
    assert self._key_address(pubkey) == msg.sender, "registry: public key does not belong to sender"
    assert self._load(msg.sender).unlock_at == 0, "registry: unstaking in progress"
    self._take(msg.sender, stake)
    acct: Account = self._load(msg.sender)
    acct.stake += stake
    acct.roles = acct.roles | roles
    assert acct.stake >= min_stake, "registry: stake below minimum"
    self._store(msg.sender, acct)
    if acct.roles & ROLE_VALIDATOR != 0:
        self._pool_add(msg.sender)
    if acct.roles & ROLE_WORKER != 0 and self.bid_slot[msg.sender] == 0:
        self.bid_slot[msg.sender] = BID_SLOT_FREE
    log Registered(account=msg.sender, roles=acct.roles, stake=acct.stake, pubkey=pubkey)


@external
def request_unstake():
    """@notice Leave both roles now; the stake becomes withdrawable after the cool-down."""
    acct: Account = self._load(msg.sender)
    assert acct.roles != 0, "registry: not registered"
    acct.roles = 0
    acct.unlock_at = block.timestamp + cooldown
    self._store(msg.sender, acct)
    self._pool_remove(msg.sender)
    log UnstakeRequested(account=msg.sender, unlock_at=acct.unlock_at)


@external
def unstake():
    """@notice After the cool-down, move the whole stake to the free balance."""
    acct: Account = self._load(msg.sender)
    assert acct.unlock_at != 0, "registry: no unstake requested"
    assert block.timestamp >= acct.unlock_at, "registry: cool-down not over"
    amount: uint256 = acct.stake
    acct.free += amount
    acct.stake = 0
    acct.unlock_at = 0
    self._store(msg.sender, acct)
    log Unstaked(account=msg.sender, amount=amount)


@external
@view
def account(a: address) -> Account:
    """@notice (free balance, stake, unlock time, roles) of an account."""
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
def pool_size() -> uint256:
    return len(self.pool)
