"""Deploying the token and the market, and the deployment file that records where they are."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from .compile import load_artifact, source_hash
from .tx import send

DAY = 86_400


@dataclass
class Deployment:
    """Addresses and ABIs of one deployment; saved as JSON so other processes can join."""

    chain_id: int
    token: str
    market: str
    token_abi: list[dict[str, Any]]
    market_abi: list[dict[str, Any]]
    deployer: str
    block: int
    params: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except FileNotFoundError:
            raise FileNotFoundError(f"no deployment file at {path}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not a Morphware deployment file: {exc}") from None


def _deploy_one(w3: Any, deployer: LocalAccount, name: str, *args: Any) -> tuple[str, Any]:
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = send(w3, deployer, factory.constructor(*args), f"deploy {name}")
    return receipt["contractAddress"], receipt


def deploy(
    w3: Any,
    deployer: LocalAccount,
    *,
    dev: bool = False,
    min_stake: int = 10**18,
    cooldown: int = 7 * DAY,
    slash_bps: int = 1_000,
    initial_supply: int = 0,
    min_window: int = 600,
    min_bid_stake: int = 10**18,
    draw_delay: int = 4,
) -> Deployment:
    """Deploy token + market from ``deployer``.

    A production deployment (the default) has a fixed supply: ``initial_supply`` (required, > 0)
    goes to the deployer and nobody can ever mint more. ``dev=True`` adds the token faucet (never
    on a real network). ``min_stake`` is the registry's minimum stake (token units), ``cooldown``
    the unstake delay in seconds, ``slash_bps`` the share of stake a validator that does not
    reveal its verdict loses (burned). ``min_window`` is the shortest window (seconds) any job
    phase may have: pick one every honest node can act within on this chain. ``min_bid_stake`` is
    the smallest bid stake a job may ask for (> 0), ``draw_delay`` how many blocks after the result
    the block whose hash seeds the validator draw comes."""
    if not 0 <= slash_bps <= 10_000:
        raise ValueError(f"slash_bps must be within 0..10000, got {slash_bps}")
    if min_stake <= 0 or cooldown < 0 or initial_supply < 0:
        raise ValueError("min_stake must be positive; cooldown and initial_supply non-negative")
    if not dev and initial_supply <= 0:
        raise ValueError("a production deployment (dev=False) needs initial_supply > 0: its supply "
                         "is fixed at deployment and nobody can mint later")
    if not 1 <= min_window < 2**32:
        raise ValueError(f"min_window must be 1..2**32-1 seconds, got {min_window}")
    if min_bid_stake <= 0:
        raise ValueError(f"min_bid_stake must be positive, got {min_bid_stake}")
    if not 1 <= draw_delay <= 128:
        raise ValueError(f"draw_delay must be 1..128 blocks, got {draw_delay}")
    token, _ = _deploy_one(w3, deployer, "token", initial_supply, dev)
    market, receipt = _deploy_one(w3, deployer, "market", token, min_stake, cooldown, slash_bps,
                                  min_window, min_bid_stake, draw_delay)
    return Deployment(
        chain_id=int(w3.eth.chain_id),
        token=token,
        market=market,
        token_abi=load_artifact("token").abi,
        market_abi=load_artifact("market").abi,
        deployer=deployer.address,
        block=int(receipt["blockNumber"]),
        params={
            "dev": dev, "min_stake": min_stake, "cooldown": cooldown, "slash_bps": slash_bps,
            "min_window": min_window, "min_bid_stake": min_bid_stake, "draw_delay": draw_delay,
            "initial_supply": initial_supply, "source_hash": source_hash(),
        },
    )
