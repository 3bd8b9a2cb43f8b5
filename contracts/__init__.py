"""The market on chain: Vyper sources (token, registry, market), compile, deploy, typed client.

Typical use::

    from morphware.contracts import embedded_chain, deploy, MarketClient
    chain = embedded_chain()
    dep = deploy(chain.w3, chain.accounts[0], dev=True)
    alice = MarketClient(chain.w3, dep, chain.accounts[1])
"""

from .anvil import anvil_bin
from .chain import ChainControl, EmbeddedChain, anvil_accounts, embedded_chain, start_anvil
from .client import (
    DATA_UNUSABLE,
    DECLINED,
    MAX_METRIC,
    METRIC_SCALE,
    MODEL_UNUSABLE,
    AccountInfo,
    EventPoller,
    JobState,
    JobTerms,
    MarketClient,
    MarketEvent,
    Outcome,
    Phase,
    Receipt,
    Role,
    bid_commitment,
    from_fixed,
    metric_commitment,
    new_salt,
    public_key_of,
    to_fixed,
)
from .compile import Artifact, load_artifact
from .deploy import Deployment, deploy
from .tx import ContractError

__all__ = [
    "DATA_UNUSABLE", "DECLINED", "MAX_METRIC", "METRIC_SCALE", "MODEL_UNUSABLE", "AccountInfo", "Artifact", "ChainControl", "ContractError", "Deployment",
    "EmbeddedChain", "EventPoller", "JobState", "JobTerms", "MarketClient", "MarketEvent",
    "Outcome", "Phase", "Receipt", "Role", "anvil_accounts", "anvil_bin", "bid_commitment",
    "deploy", "embedded_chain", "from_fixed", "load_artifact", "metric_commitment", "new_salt",
    "public_key_of", "start_anvil", "to_fixed",
]
