"""Joining a chain as an operator: connect with checks, fund on a dev chain, and the checks a node
runs before its first transaction (gas, stake, tokens), each failing as an ``OperatorError``.

Everything here happens before ``morphware node`` starts its daemon, so a mistake costs no
transaction and ends in one paragraph naming the address, the amounts and the fix.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from morphware.runtime.cli.errors import OperatorError
from morphware.runtime.node.pricing import format_tokens

MIN_GAS_WEI = 10**15          # 0.001 ETH: below this a node cannot pay for its first transactions
DEV_GAS_WEI = 10 * 10**18     # what `devnet fund` sends from the dev account: plenty for a devnet
FAUCET_STEP = 10_000          # tokens: the dev token's largest single faucet mint
UINT256_MAX = 2**256 - 1


def load_deployment(path: Path) -> Any:
    """The deployment file, or an OperatorError saying where one comes from."""
    from morphware.contracts import Deployment

    try:
        return Deployment.load(path)
    except FileNotFoundError:
        raise OperatorError(f"no deployment file at {path}",
                            "Start a dev chain with `morphware devnet --deployment FILE` (it "
                            "writes the file), or pass the deployment file of the network you "
                            "join to --deployment.") from None
    except ValueError as e:
        raise OperatorError(str(e), "Pass the JSON file `morphware devnet` (or the network's "
                                    "operator) wrote.") from None


def connect_w3(rpc: str) -> Any:
    """A Web3 on ``rpc`` that is known to answer."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30}))
    if not w3.is_connected():
        raise OperatorError(f"cannot reach the chain at {rpc}: nothing answers there",
                            "Start a dev chain with `morphware devnet` (it prints its URL), or "
                            "check the URL given to --rpc.")
    return w3


def connect_client(rpc: str, deployment: Path, private_key: str) -> Any:
    """A MarketClient for one account, after checking that the chain answers, is the chain the
    deployment file was written for, and holds the market contract."""
    from eth_account import Account
    from morphware.contracts import MarketClient

    dep = load_deployment(deployment)
    w3 = connect_w3(rpc)
    chain_id = int(w3.eth.chain_id)
    if chain_id != dep.chain_id:
        raise OperatorError(f"the chain at {rpc} has chain id {chain_id}, but {deployment} was "
                            f"written for chain id {dep.chain_id}",
                            "Pass the RPC URL of the network the deployment file belongs to.")
    if not bytes(w3.eth.get_code(dep.market)):
        raise OperatorError(f"no market contract at {dep.market} on the chain at {rpc}: "
                            f"{deployment} belongs to another chain (a devnet restarted since "
                            "the file was written?)",
                            "Use the deployment file the running `morphware devnet` wrote.")
    return MarketClient(w3, dep, Account.from_key(private_key))


def connect_market(rpc: str, deployment: Path, private_key: str) -> Any:
    """The node's Market port for an account. Calls are not serialised: several jobs' steps may
    send transactions at once (``contracts.tx.send`` hands out the nonces)."""
    from morphware.runtime.node.market_adapter import ContractsMarket

    return ContractsMarket(connect_client(rpc, deployment, private_key))


def token_symbol(client: Any) -> str:
    return str(client.token.functions.symbol().call())


def min_stake(client: Any) -> int:
    """The deployment's minimum stake, in base units, as the contract enforces it."""
    return int(client.market.functions.min_stake().call())


def is_dev(client: Any) -> bool:
    return bool(client.token.functions.dev_faucet().call())


def _eth(wei: int) -> str:
    return f"{wei / 10**18:.6g} ETH"


def check_gas(client: Any, keystore: Path) -> None:
    """Refuse to start an account that cannot pay for a transaction."""
    balance = int(client.w3.eth.get_balance(client.address))
    if balance >= MIN_GAS_WEI:
        return
    fix = (f"On this dev chain run `morphware devnet fund --keystore {keystore}` (add --rpc and "
           "--deployment if not the defaults)." if is_dev(client) else
           f"Send ETH on chain {client.deployment.chain_id} to {client.address}.")
    raise OperatorError(f"account {client.address} has {_eth(balance)} for gas on chain "
                        f"{client.deployment.chain_id}; it needs at least {_eth(MIN_GAS_WEI)} "
                        "to send its transactions", fix)


def plan_stake(client: Any, requested: float | None, roles: tuple[str, ...]) -> int:
    """The stake to register with, in base units: the deployment's minimum unless ``requested``
    (tokens) says more; less than the minimum is refused before any transaction."""
    from morphware.runtime.node.pricing import to_base_units

    dec = int(client.token.functions.decimals().call())
    sym = token_symbol(client)
    floor = min_stake(client)
    if requested is None:
        return floor
    asked = to_base_units(requested, dec)
    if asked < floor:
        raise OperatorError(
            f"--stake {requested:g} {sym} is below this deployment's minimum stake of "
            f"{format_tokens(floor, dec, sym)}",
            f"Pass --stake {format_tokens(floor, dec, '').strip()} or more, or leave --stake out "
            "(the node then stakes the minimum).")
    return asked


def check_tokens(client: Any, stake: int, roles: tuple[str, ...], keystore: Path) -> None:
    """A worker or validator not yet registered needs ``stake`` tokens to register with."""
    from morphware.contracts import Role

    staking = [r for r in roles if r in ("worker", "validator")]
    if not staking:
        return
    info = client.account_info()
    flags = {"worker": Role.WORKER, "validator": Role.VALIDATOR}
    todo = [r for r in staking if not int(info.roles) & flags[r]]
    need = stake * len(todo)
    have = int(client.token_balance()) + int(client.balance())
    if need <= have:
        return
    dec = int(client.token.functions.decimals().call())
    sym = token_symbol(client)
    fix = (f"On this dev chain run `morphware devnet fund --keystore {keystore}` or start the "
           "node with --fund TOKENS." if is_dev(client) else
           f"Transfer {sym} to {client.address}.")
    raise OperatorError(f"account {client.address} holds {format_tokens(have, dec, sym)}; "
                        f"registering as {' and '.join(todo)} stakes "
                        f"{format_tokens(need, dec, sym)}", fix)


def ensure_allowance(client: Any) -> None:
    """Let the market pull this account's tokens (stakes, escrow): one approve, once."""
    allowance = int(client.token.functions.allowance(client.address,
                                                     client.deployment.market).call())
    if allowance < UINT256_MAX // 2:
        client.approve()


def dev_faucet_account(w3: Any) -> Any:
    """Anvil's first dev account, if it holds ETH on this chain (only a dev chain's does)."""
    from morphware.contracts import anvil_accounts

    acct = anvil_accounts(1)[0]
    return acct if int(w3.eth.get_balance(acct.address)) >= DEV_GAS_WEI else None


def fund_dev(client_w3: Any, deployment: Any, address: str, tokens: float,
             eth_wei: int = DEV_GAS_WEI) -> tuple[int, int]:
    """On a dev chain: send ``address`` ETH for gas from the dev account and mint it
    ``tokens`` through the faucet (the dev account mints, then transfers). Returns the new
    (ETH wei, token base units) balances."""
    from morphware.contracts import MarketClient

    w3 = client_w3
    src = dev_faucet_account(w3)
    if src is None:
        raise OperatorError("this chain has no funded dev account (anvil's test mnemonic) to "
                            "send ETH from: it is not a `morphware devnet` chain",
                            f"On a real chain, send ETH for gas to {address} from a wallet.")
    dev = MarketClient(w3, deployment, src)
    if not bool(dev.token.functions.dev_faucet().call()):
        raise OperatorError("this deployment's token has no faucet (not a dev deployment)",
                            f"Transfer tokens to {address} from an account that holds some.")
    with _dev_account_lock(int(w3.eth.chain_id), src.address):
        return _fund_from(w3, dev, src, address, tokens, eth_wei)


@contextlib.contextmanager
def _dev_account_lock(chain_id: int, dev_address: str) -> Iterator[None]:
    """Nodes started together on one machine all fund from the same dev account: without a
    lock across processes two of them sign the same faucet call with the same nonce and the
    chain refuses the second ("transaction already imported")."""
    path = Path(tempfile.gettempdir()) / f"morphware-devfund-{chain_id}-{dev_address.lower()}.lock"
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fund_from(w3: Any, dev: Any, src: Any, address: str, tokens: float,
               eth_wei: int) -> tuple[int, int]:
    from morphware.contracts.tx import lock_for
    from morphware.runtime.node.pricing import to_base_units

    if eth_wei > 0:
        with lock_for(w3):
            tx = {"to": address, "value": eth_wei, "gas": 21_000, "chainId": int(w3.eth.chain_id),
                  "nonce": w3.eth.get_transaction_count(src.address, "pending"),
                  "gasPrice": int(w3.eth.gas_price)}
            sent = w3.eth.send_raw_transaction(src.sign_transaction(tx).raw_transaction)
            w3.eth.wait_for_transaction_receipt(sent, timeout=120)
    dec = int(dev.token.functions.decimals().call())
    left = to_base_units(tokens, dec)
    step = FAUCET_STEP * 10**dec
    while left > 0:
        part = min(step, left)
        dev.faucet(part)
        dev.transfer(address, part)
        left -= part
    return int(w3.eth.get_balance(address)), int(dev.token_balance(address))
