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
    dev: bool = True,
    min_stake: int = 10**18,
    cooldown: int = 7 * DAY,
    slash_bps: int = 1_000,
    initial_supply: int = 0,
) -> Deployment:
    """Deploy token + market from ``deployer``.

    ``dev`` enables the token faucet (never on a real network). ``min_stake`` is the registry's
    minimum stake (token units), ``cooldown`` the unstake delay in seconds, ``slash_bps`` the share
    of stake a non-revealing validator loses (basis points)."""
    if not 0 <= slash_bps <= 10_000:
        raise ValueError(f"slash_bps must be within 0..10000, got {slash_bps}")
    if min_stake < 0 or cooldown < 0 or initial_supply < 0:
        raise ValueError("min_stake, cooldown and initial_supply must be non-negative")
    token, _ = _deploy_one(w3, deployer, "token", initial_supply, dev)
    market, receipt = _deploy_one(w3, deployer, "market", token, min_stake, cooldown, slash_bps)
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
            "source_hash": source_hash(),
        },
    )
