"""Typed Python client for the market: one MarketClient acts as one account (one node).

Every transaction is signed locally with the account's key and sent raw, so the same code runs on
the in-process eth-tester chain and on anvil or any JSON-RPC endpoint. A rejected call raises
ContractError carrying the contract's reason string."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address

from .deploy import Deployment
from .rpc import cache_chain_id
from .tx import ContractError, lock_for, revert_reason, send

LOG_RANGE = 2000
"""Most blocks one ``eth_getLogs`` asks for: within what public RPC providers allow. Longer
spans are read in chunks of this size."""

METRIC_SCALE = 10**6
"""Fixed-point scale of metrics and thresholds: 1.0 is 1_000_000."""

MAX_VALIDATORS = 8
UINT256_MAX = 2**256 - 1

MODEL_UNUSABLE = 2**64 - 1
"""Verdict: the validator could not fetch or decrypt the worker's model (the worker's fault)."""
DATA_UNUSABLE = 2**64 - 2
"""Verdict: the validator could not fetch or decrypt the test data (the requester's fault)."""
DECLINED = 2**64 - 3
"""Not a verdict: the drawn validator could not evaluate in time and says so. It is paid no fee
(that fee goes back to the requester), is not slashed, and is left out of the median; if every
revealed verdict is DECLINED the job ends NO_VERDICT."""
MAX_METRIC = 2**64 - 4
"""Largest metric a verdict can carry (fixed point, see to_fixed)."""


class Role(IntFlag):
    WORKER = 1
    VALIDATOR = 2


class Phase(IntEnum):
    BIDDING = 1
    AWAITING_KEY = 2
    WORKING = 3
    COMMIT = 4
    REVEAL = 5
    CLOSED = 6
    DRAWING = 7
    """Result submitted; the validators are drawn (``draw``) once the seed block is mined."""


class Outcome(IntEnum):
    NO_BIDS = 1
    KEY_TIMEOUT = 2
    WORK_TIMEOUT = 3
    ACCEPTED = 4
    REJECTED = 5
    NO_VERDICT = 6
    DATA_FAULT = 7
    """The median verdict was 'test data unusable': the worker is paid, the requester at fault."""
    KEY_REJECTED = 8
    """The winner declared the data key unusable: neutral, everyone gets back what it put in."""


def to_fixed(value: float) -> int:
    """A metric value as the contract stores it (METRIC_SCALE fixed point, non-negative)."""
    if value < 0:
        raise ValueError(f"metrics must be non-negative, got {value}")
    fixed = round(value * METRIC_SCALE)
    if fixed > MAX_METRIC:
        raise ValueError(f"metric {value} is beyond the largest the market stores")
    return fixed


def from_fixed(value: int) -> float:
    return value / METRIC_SCALE


def new_salt() -> bytes:
    return os.urandom(32)


def _commit(job: int, who: str, value: int, salt: bytes) -> bytes:
    if len(salt) != 32:
        raise ValueError(f"salt must be 32 bytes, got {len(salt)}")
    return keccak(
        abi_encode(["uint256", "address", "uint256", "bytes32"], [job, who, value, salt])
    )


def bid_commitment(job: int, bidder: str, price: int, salt: bytes) -> bytes:
    """keccak256(abi_encode(job, bidder, price, salt)), exactly as the market checks it."""
    return _commit(job, bidder, price, salt)


def metric_commitment(job: int, validator: str, metric: int, salt: bytes) -> bytes:
    """keccak256(abi_encode(job, validator, metric, salt)), exactly as the market checks it."""
    return _commit(job, validator, metric, salt)


MAX_WRAPPED_KEY = 256
"""Longest wrapped test key one validator can be given."""


def pack_keys(wrapped: list[bytes]) -> bytes:
    """Wrapped keys as ``release_test_keys`` takes them: each a 2-byte length and the bytes."""
    for w in wrapped:
        if len(w) > MAX_WRAPPED_KEY:
            raise ValueError(f"a wrapped test key is {len(w)} bytes; at most {MAX_WRAPPED_KEY}")
    return b"".join(len(w).to_bytes(2, "big") + w for w in wrapped)


def unpack_keys(blob: bytes) -> list[bytes]:
    """The inverse of pack_keys; a truncated blob raises ValueError."""
    out: list[bytes] = []
    i = 0
    while i < len(blob) and len(out) < MAX_VALIDATORS:
        if i + 2 > len(blob):
            raise ValueError("wrapped key blob ends inside a length")
        n = int.from_bytes(blob[i:i + 2], "big")
        if i + 2 + n > len(blob):
            raise ValueError("wrapped key blob ends inside a key")
        out.append(bytes(blob[i + 2:i + 2 + n]))
        i += 2 + n
    return out


def public_key_of(account: LocalAccount) -> bytes:
    """The 64-byte secp256k1 public key (no 0x04 prefix) the registry expects for ``account``."""
    return keys.PrivateKey(bytes(account.key)).public_key.to_bytes()


@dataclass(frozen=True)
class JobTerms:
    """What a requester posts. Amounts are token base units; windows are seconds."""

    manifest_hash: bytes
    metric: str
    threshold: int
    max_price: int
    validator_fee: int
    bid_stake: int
    n_validators: int = 3
    lower_is_better: bool = False
    bid_window: int = 600
    reveal_window: int = 600
    key_window: int = 600
    work_window: int = 3600
    commit_window: int = 600
    metric_reveal_window: int = 600
    artifacts: tuple[str, ...] = ()

    def windows(self) -> list[int]:
        return [
            self.bid_window, self.reveal_window, self.key_window, self.work_window,
            self.commit_window, self.metric_reveal_window,
        ]

    def escrow(self) -> int:
        """Tokens post_job takes: max price plus every validator's fee."""
        return self.max_price + self.n_validators * self.validator_fee

    def check(self, min_window: int = 1, min_bid_stake: int = 1) -> None:
        """Reject locally what the contract would reject, with a clearer message
        (``min_window``/``min_bid_stake``: the deployment's floors)."""
        if len(self.manifest_hash) != 32:
            raise ValueError("manifest_hash must be 32 bytes")
        if len(self.metric.encode()) > 32:
            raise ValueError(f"metric name {self.metric!r} longer than 32 bytes")
        if not 1 <= self.n_validators <= MAX_VALIDATORS:
            raise ValueError(f"n_validators must be 1..{MAX_VALIDATORS}, got {self.n_validators}")
        if self.max_price <= 0:
            raise ValueError("max_price must be positive")
        if any(not min_window <= w < 2**32 for w in self.windows()):
            raise ValueError(f"every window must be {min_window}..2**32-1 seconds (this "
                             f"deployment's floor is {min_window} s), got {self.windows()}")
        if self.bid_stake < min_bid_stake:
            raise ValueError(f"bid_stake {self.bid_stake} is below this deployment's minimum "
                             f"{min_bid_stake}")
        if self.bid_stake < self.n_validators * self.validator_fee:
            raise ValueError("bid_stake must cover the validators' fees (n_validators * "
                             "validator_fee), so that a rejected worker pays for its validation")
        if self.threshold > MAX_METRIC:
            raise ValueError(f"threshold {self.threshold} is above the largest metric")
        if any("\n" in a for a in self.artifacts):
            raise ValueError("artifact magnets must not contain newlines")
        if len("\n".join(self.artifacts).encode()) > 2048:
            raise ValueError("artifacts exceed 2048 bytes")


@dataclass(frozen=True)
class JobState:
    """A job as the contract stores it.

    ``deadline`` is the current phase's deadline (for BIDDING, the bid deadline; reveals run until
    ``deadline + reveal_window``; for DRAWING, the *block number* whose hash seeds the draw).
    ``winner``/``price`` are the leading ask while bidding, then the winner and its price (the
    winner is paid its own ask). ``n_validators`` becomes the number actually drawn.
    ``n_metric_reveals`` counts revealed verdicts that count (not DECLINED), and a DECLINED
    reveal takes its commit back out of ``n_metric_commits``: the job settles once the two meet."""

    job: int
    requester: str
    phase: Phase
    n_validators: int
    lower_is_better: bool
    deadline: int
    n_metric_commits: int
    n_metric_reveals: int
    max_price: int
    validator_fee: int
    threshold: int
    bid_stake: int
    reveal_window: int
    key_window: int
    work_window: int
    commit_window: int
    metric_reveal_window: int
    winner: str | None
    price: int
    n_bids: int
    n_bid_reveals: int

    def held(self) -> int:
        """Tokens the market holds for this job (escrow + locked bid stakes), from its state."""
        if self.phase is Phase.BIDDING:
            locked = self.n_bids - self.n_bid_reveals + (1 if self.n_bid_reveals else 0)
            return self.max_price + self.n_validators * self.validator_fee + locked * self.bid_stake
        if self.phase in (Phase.AWAITING_KEY, Phase.WORKING, Phase.DRAWING):
            return self.price + self.n_validators * self.validator_fee + self.bid_stake
        if self.phase in (Phase.COMMIT, Phase.REVEAL):
            unpaid = self.n_validators - self.n_metric_reveals
            return self.price + unpaid * self.validator_fee + self.bid_stake
        return 0


@dataclass(frozen=True)
class AccountInfo:
    free: int
    stake: int
    unlock_at: int
    roles: Role
    duties: int = 0
    """Validations this account was drawn for and has not revealed a verdict for (nor been
    slashed for): it cannot unstake while any is open."""
    generation: int = 0


@dataclass(frozen=True)
class MarketEvent:
    """One decoded log of the market. ``args`` holds the event's fields (bytes, ints, addresses)."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: str

    @property
    def job(self) -> int | None:
        return self.args.get("job")


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    gas_used: int
    block_number: int
    events: list[MarketEvent] = field(default_factory=list)


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class MarketClient:
    """The market as seen by one account. Thread-safe across clients sharing one ``w3``."""

    def __init__(self, w3: Any, deployment: Deployment, account: LocalAccount) -> None:
        cache_chain_id(w3)  # web3 asks it before every call; a connection's chain never changes
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.market = w3.eth.contract(address=deployment.market, abi=deployment.market_abi)
        self.token = w3.eth.contract(address=deployment.token, abi=deployment.token_abi)
        self.last_receipt: Receipt | None = None
        self.log_range = LOG_RANGE
        self._topics = {
            event_abi_to_log_topic(e): e for e in deployment.market_abi if e["type"] == "event"
        }

    @classmethod
    def connect(cls, url: str, deployment: Deployment | str, private_key: str) -> MarketClient:
        """A client for a JSON-RPC endpoint, a deployment (object or file) and a private key."""
        from eth_account import Account
        from web3 import Web3

        dep = deployment if isinstance(deployment, Deployment) else Deployment.load(deployment)
        w3 = Web3(Web3.HTTPProvider(url))
        if int(w3.eth.chain_id) != dep.chain_id:
            raise ValueError(f"{url} has chain id {w3.eth.chain_id}, deployment says {dep.chain_id}")
        return cls(w3, dep, Account.from_key(private_key))

    @property
    def address(self) -> str:
        return self.account.address

    # ------------------------------------------------------------ transactions

    def _tx(self, contract: Any, fn: str, *args: Any) -> Receipt:
        raw = send(self.w3, self.account, getattr(contract.functions, fn)(*args), fn)
        receipt = Receipt(
            tx_hash=raw["transactionHash"].hex(),
            gas_used=int(raw["gasUsed"]),
            block_number=int(raw["blockNumber"]),
            events=[e for e in (self._decode(log) for log in raw["logs"]) if e is not None],
        )
        self.last_receipt = receipt
        return receipt

    def _market(self, fn: str, *args: Any) -> Receipt:
        return self._tx(self.market, fn, *args)

    # token
    def faucet(self, amount: int) -> Receipt:
        """Dev deployments only: mint ``amount`` (at most 10,000 tokens) to this account."""
        return self._tx(self.token, "faucet", amount)

    def approve(self, amount: int = UINT256_MAX) -> Receipt:
        """Let the market pull tokens for deposits, stakes and escrow (unlimited by default)."""
        return self._tx(self.token, "approve", self.deployment.market, amount)

    def transfer(self, to: str, amount: int) -> Receipt:
        return self._tx(self.token, "transfer", to_checksum_address(to), amount)

    # bank
    def deposit(self, amount: int) -> Receipt:
        return self._market("deposit", amount)

    def withdraw(self, amount: int | None = None) -> Receipt:
        """Pay out ``amount`` of the free balance (all of it when None)."""
        if amount is None:
            amount = self.balance()
            if amount == 0:
                raise ContractError("registry: nothing to withdraw", "withdraw")
        return self._market("withdraw", amount)

    # registry
    def register(self, roles: Role | int, stake: int, pubkey: bytes | None = None) -> Receipt:
        """Register as worker and/or validator with ``stake``; the key defaults to this account's."""
        key = public_key_of(self.account) if pubkey is None else pubkey
        return self._market("register", int(roles), key, stake)

    def request_unstake(self) -> Receipt:
        return self._market("request_unstake")

    def unstake(self) -> Receipt:
        return self._market("unstake")

    # requester
    def post_job(self, terms: JobTerms) -> int:
        """Post a job, escrowing ``terms.escrow()``; returns the job id."""
        terms.check(self.min_window(), self.min_bid_stake())
        receipt = self._market(
            "post_job", terms.manifest_hash, terms.metric, terms.threshold, terms.lower_is_better,
            terms.n_validators, terms.max_price, terms.validator_fee, terms.bid_stake,
            terms.windows(), "\n".join(terms.artifacts),
        )
        return next(e.job for e in receipt.events if e.name == "JobPosted")

    def release_key(self, job: int, wrapped_key: bytes) -> Receipt:
        """Publish the data key wrapped for the winner (finalizes the auction first if due)."""
        return self._market("release_key", job, wrapped_key)

    def release_test_keys(self, job: int, wrapped: dict[str, bytes],
                          drawn: list[str] | None = None) -> Receipt:
        """Publish the test-set key wrapped for every drawn validator ({address: wrapped key}),
        in draw order. A node passes ``drawn`` from its event index; without it the draw is
        looked up in the event history (``validators_of``)."""
        drawn = self.validators_of(job) if drawn is None else list(drawn)
        missing = [v for v in drawn if v not in wrapped]
        if missing or len(wrapped) != len(drawn):
            raise ValueError(f"need a wrapped key for exactly the drawn validators {drawn}; "
                             f"missing {missing}, given {sorted(wrapped)}")
        return self._market("release_test_keys", job, pack_keys([wrapped[v] for v in drawn]))

    # bidder / worker
    def commit_bid(self, job: int, price: int, salt: bytes | None = None) -> bytes:
        """Seal a bid of ``price``; returns the salt (keep it to reveal)."""
        salt = new_salt() if salt is None else salt
        self.commit_bid_hash(job, bid_commitment(job, self.address, price, salt))
        return salt

    def commit_bid_hash(self, job: int, commitment: bytes) -> Receipt:
        return self._market("commit_bid", job, commitment)

    def reveal_bid(self, job: int, price: int, salt: bytes) -> Receipt:
        return self._market("reveal_bid", job, price, salt)

    def submit_result(self, job: int, result_hash: bytes, magnet: str) -> Receipt:
        """Commit the result; the validator draw becomes possible ``draw_delay`` blocks later."""
        return self._market("submit_result", job, result_hash, magnet)

    def reject_key(self, job: int) -> Receipt:
        """Winner only, in the work window: the data key does not open the data (neutral end)."""
        return self._market("reject_key", job)

    # validator
    def commit_metric(self, job: int, metric: int, salt: bytes | None = None) -> bytes:
        """Seal a verdict: a fixed-point metric (see to_fixed), MODEL_UNUSABLE, DATA_UNUSABLE or
        DECLINED; returns the salt."""
        salt = new_salt() if salt is None else salt
        self._market("commit_metric", job, metric_commitment(job, self.address, metric, salt))
        return salt

    def reveal_metric(self, job: int, metric: int, salt: bytes) -> Receipt:
        return self._market("reveal_metric", job, metric, salt)

    # anyone
    def draw(self, job: int) -> Receipt:
        """Draw the validators of a job in DRAWING once its seed block is mined."""
        return self._market("draw", job)

    def finalize(self, job: int) -> Receipt:
        """End an auction whose reveal window is over (or whose bids are all revealed)."""
        return self.advance(job)

    def settle(self, job: int) -> Receipt:
        """Settle a job whose verdict reveal window is over."""
        return self.advance(job)

    def advance(self, job: int) -> Receipt:
        """Move a job on: finalize, draw, the key/work timeout paths, or settle, as due."""
        return self._market("advance", job)

    def slash_validator(self, job: int, validator: str) -> Receipt:
        return self._market("slash_validator", job, to_checksum_address(validator))

    # ------------------------------------------------------------ reads

    def _view(self, fn: str, *args: Any, contract: Any = None) -> Any:
        """Call a view (market by default) under the chain lock; a revert (e.g. an unknown job)
        raises ContractError."""
        target = self.market if contract is None else contract
        try:
            with lock_for(self.w3):
                return getattr(target.functions, fn)(*args).call()
        except Exception as exc:
            if "revert" not in str(exc).lower():
                raise
            raise ContractError(revert_reason(exc), fn) from None

    def _who(self, address: str | None) -> str:
        return to_checksum_address(address or self.address)

    def now(self) -> int:
        """The timestamp the next transaction would see (the pending block's): compare deadlines
        with this, not with the wall clock (eth-tester chains travel in time)."""
        with lock_for(self.w3):
            return int(self.w3.eth.get_block("pending")["timestamp"])

    def block_number(self) -> int:
        """The latest block; poll ``events(from_block=last + 1)`` with it."""
        with lock_for(self.w3):
            return int(self.w3.eth.block_number)

    def job(self, job: int) -> JobState:
        v = self._view("job", job)
        winner = v[16] if v[16] != ZERO_ADDRESS else None
        return JobState(job, v[0], Phase(v[1]), *v[2:16], winner, *v[17:])

    def job_held(self, job: int) -> int:
        return self.job(job).held()

    def min_window(self) -> int:
        """The deployment's floor for every job window (seconds)."""
        return int(self._view("min_window"))

    def min_bid_stake(self) -> int:
        return int(self._view("min_bid_stake"))

    def draw_delay(self) -> int:
        """Blocks between a result and the block whose hash seeds its validator draw."""
        return int(self._view("draw_delay"))

    def job_count(self) -> int:
        return int(self._view("job_count"))

    def account_info(self, address: str | None = None) -> AccountInfo:
        free, stake, unlock_at, roles, duties, gen = self._view("account", self._who(address))
        return AccountInfo(free, stake, unlock_at, Role(roles), duties, gen)

    def balance(self, address: str | None = None) -> int:
        """Free internal balance in the market (withdrawable)."""
        return int(self._view("balance_of", self._who(address)))

    def stake(self, address: str | None = None) -> int:
        return int(self._view("stake_of", self._who(address)))

    def holdings(self, addresses: list[str]) -> int:
        """Free balances plus stakes of ``addresses`` (at most 256)."""
        if len(addresses) > 256:
            raise ValueError(f"at most 256 addresses per call, got {len(addresses)}")
        return sum(i.free + i.stake for i in (self.account_info(a) for a in addresses))

    def token_balance(self, address: str | None = None) -> int:
        return int(self._view("balanceOf", self._who(address), contract=self.token))

    def pool(self) -> list[str]:
        """Accounts that hold the validator role now (each drawn in proportion to its stake)."""
        seen = dict.fromkeys(e.args["account"] for e in self.events(name="Registered"))
        return [a for a in seen if self.account_info(a).roles & Role.VALIDATOR]

    def pool_weight(self) -> int:
        """Stake the validator draw samples from (dead leaves not yet pruned included)."""
        return int(self._view("pool_weight"))

    def metrics(self, job: int) -> list[int]:
        """The revealed verdicts of ``job`` in reveal order (metrics or the three sentinels;
        DECLINED reveals are listed too, though the contract does not count them)."""
        return [int(e.args["metric"]) for e in self.events(name="MetricRevealed", job=job)]

    def validator_slot(self, job: int, validator: str) -> bytes:
        return bytes(self._view("validator_slot", job, to_checksum_address(validator)))

    # The three lookups below read the whole event history (in LOG_RANGE chunks): fine for tools
    # and tests, too slow for a node's loop, which answers them from its own index
    # (runtime/node/index.py) fed once by its event poller.

    def validators_of(self, job: int) -> list[str]:
        """The validators drawn for ``job`` (empty before the result is in)."""
        for e in self.events(name="ValidatorsDrawn", job=job):
            return list(e.args["validators"])
        return []

    def test_key_for(self, job: int, validator: str) -> bytes | None:
        """The test-set key the requester wrapped for ``validator`` (None until released)."""
        drawn = [a.lower() for a in self.validators_of(job)]
        if validator.lower() not in drawn:
            return None
        for e in self.events(name="TestKeysReleased", job=job):
            try:
                keys_ = unpack_keys(e.args["wrapped_keys"])
            except ValueError:
                return None  # a malformed release gives this validator no key
            i = drawn.index(validator.lower())
            return keys_[i] if i < len(keys_) else None
        return None

    def pubkey_of(self, address: str) -> bytes:
        """The encryption key ``address`` registered (latest registration), from event data."""
        found = [
            e for e in self.events(name="Registered")
            if e.args["account"].lower() == address.lower()
        ]
        if not found:
            raise LookupError(f"{address} never registered a public key")
        return found[-1].args["pubkey"]

    def events(
        self,
        from_block: int | None = None,
        to_block: int | str = "latest",
        *,
        name: str | None = None,
        job: int | None = None,
    ) -> list[MarketEvent]:
        """Market events in block order, optionally only one event name and/or one job.

        Poll with ``from_block = last_seen_block + 1``; starts at the deployment block by default.
        The span is read in queries of at most ``log_range`` blocks each, so a long history costs
        several bounded queries, never one a provider would refuse."""
        start = self.deployment.block if from_block is None else int(from_block)
        end = self.block_number() if to_block == "latest" else int(to_block)
        topics: list[Any] = []
        if name is not None:
            topic = next((t for t, e in self._topics.items() if e["name"] == name), None)
            if topic is None:
                raise ValueError(f"the market has no event named {name!r}")
            topics.append("0x" + topic.hex())
        if job is not None:  # every market event with a job has it as its first indexed field
            topics = [topics[0] if topics else None, "0x" + int(job).to_bytes(32, "big").hex()]
        out: list[MarketEvent] = []
        step = max(1, int(self.log_range))
        for lo in range(start, end + 1, step):
            flt: dict[str, Any] = {"address": self.deployment.market, "fromBlock": lo,
                                   "toBlock": min(end, lo + step - 1)}
            if topics:
                flt["topics"] = topics
            with lock_for(self.w3):
                logs = self.w3.eth.get_logs(flt)
            out.extend(e for e in (self._decode(log) for log in logs) if e is not None)
        if job is not None:
            out = [e for e in out if e.job == job]
        return out

    def poller(self, from_block: int | None = None, *, name: str | None = None,
               job: int | None = None) -> EventPoller:
        """An EventPoller starting at ``from_block`` (default: the deployment block)."""
        start = self.deployment.block if from_block is None else from_block
        return EventPoller(self, start, name=name, job=job)

    def _decode(self, log: Any) -> MarketEvent | None:
        from web3._utils.events import get_event_data

        if log["address"].lower() != self.deployment.market.lower() or not log["topics"]:
            return None
        abi = self._topics.get(bytes(log["topics"][0]))
        if abi is None:
            return None
        data = get_event_data(self.w3.codec, abi, log)
        args = {k: _plain(v) for k, v in data["args"].items()}
        if data["event"] == "JobPosted":
            text = args.pop("artifacts")
            args["artifacts"] = text.split("\n") if text else []
        return MarketEvent(
            name=data["event"], args=args, block_number=int(data["blockNumber"]),
            log_index=int(data["logIndex"]), tx_hash=data["transactionHash"].hex(),
        )


class EventPoller:
    """Incremental polling: each ``poll()`` returns the market events of the blocks mined since
    the previous call, each event exactly once. A node keeps ``next_block`` to resume after a
    restart."""

    def __init__(self, client: MarketClient, next_block: int, *, name: str | None = None,
                 job: int | None = None) -> None:
        self.client = client
        self.next_block = next_block
        self.name = name
        self.job = job

    def poll(self) -> list[MarketEvent]:
        head = self.client.block_number()
        if head < self.next_block:
            return []
        found = self.client.events(self.next_block, head, name=self.name, job=self.job)
        self.next_block = head + 1
        return found
