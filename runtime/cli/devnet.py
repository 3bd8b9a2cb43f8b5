"""``morphware devnet``: a local chain with the market deployed, for nodes to join; and
``morphware devnet fund``: gas and tokens for a node's own key on that chain."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from morphware.runtime.cli.errors import OperatorError

TOKEN = 10**18
DEFAULT_DEPLOYMENT = Path("devnet-deployment.json")
DEFAULT_RPC = "http://127.0.0.1:8545"

devnet_app = typer.Typer(
    invoke_without_command=True, rich_markup_mode=None,
    help="Run a local chain with the market deployed (no subcommand), or fund an account on it.")


@devnet_app.callback()
def devnet(
    ctx: typer.Context,
    embedded: bool = typer.Option(
        False, "--embedded",
        help="Instead of anvil: deploy on an in-process eth-tester chain, run one scripted job "
             "through every phase (5 bidders, 3 validators), print its timeline and gas, and exit "
             "(a self-check of the contracts that needs no external process).",
    ),
    port: int = typer.Option(8545, help="anvil's port on 127.0.0.1 (0: any free port)."),
    deployment: Path = typer.Option(
        DEFAULT_DEPLOYMENT, "--deployment", "-o",
        help="Where to write the deployment file (addresses + ABIs) that nodes load.",
    ),
    accounts: int = typer.Option(10, min=2, max=100, help="Dev accounts anvil creates."),
    fund: int = typer.Option(1000, min=0, max=10_000,
                             help="Tokens each dev account gets from the faucet."),
    min_stake: int = typer.Option(10, min=0, help="Registry minimum stake, in tokens."),
    cooldown: int = typer.Option(3600, min=0, help="Unstake cool-down, in seconds."),
    block_time: float = typer.Option(
        1.0, "--block-time", min=0,
        help="Seconds between blocks while idle, so the chain clock (which every deadline is "
             "checked against) keeps moving; transactions are still mined at once. 0: blocks "
             "only on transactions."),
    min_window: int = typer.Option(
        10, min=1, help="Shortest window (seconds) any job phase may have on this market."),
) -> None:
    """Start anvil on 127.0.0.1, deploy token + market, fund the dev accounts from the faucet,
    write the deployment file, and keep running until Ctrl-C or SIGTERM (anvil stops with it,
    however this process ends).

    anvil comes from the npm registry: a checkout has it after `make setup`; elsewhere the first
    run installs it into ~/.local/share/morphware/tools (needs npm; $MORPHWARE_TOOLS moves it).

    The dev accounts are anvil's well-known test mnemonic: never use them for anything of value.
    A node's own key gets gas and tokens with `morphware devnet fund --keystore KEY`."""
    if ctx.invoked_subcommand is not None:
        return
    if embedded:
        from morphware.contracts.demo import embedded_demo

        result = embedded_demo(log=typer.echo)
        path = result.deployment.save(deployment)
        typer.echo(f"deployment file (in-process chain, for reference only): {path}")
        return
    _run_anvil(port, deployment, accounts, fund, min_stake, cooldown, block_time, min_window)


def _stop_on_signals() -> dict[int, object]:
    """SIGTERM and SIGHUP (the terminal went away) end the devnet like Ctrl-C does."""
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    return {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}


def _run_anvil(port: int, deployment: Path, accounts: int, fund: int, min_stake: int,
               cooldown: int, block_time: float, min_window: int) -> None:
    from morphware.contracts import MarketClient, anvil_accounts, deploy, start_anvil
    from morphware.contracts.anvil import ensure_anvil
    from morphware.contracts.chain import PortInUseError
    from web3 import Web3

    ensure_anvil(log=typer.echo)  # a wheel install has none until this first use
    previous = _stop_on_signals()
    try:
        proc, url = start_anvil(port=port, n_accounts=accounts,
                                block_time=block_time if block_time > 0 else None)
    except PortInUseError:
        raise OperatorError(f"port {port} on 127.0.0.1 is already in use (another devnet or "
                            "anvil still running?)",
                            f"Stop that process (`ss -ltnp 'sport = :{port}'` names it) or pass "
                            "--port with a free port (0: any).") from None
    except FileNotFoundError as e:
        raise OperatorError(str(e), "`make setup` installs it into tools/.") from None
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        keys = anvil_accounts(accounts)
        # A dev deployment (faucet on); its validator draw waits one block after a result, so
        # the devnet needs its idle blocks (--block-time) for draws to happen.
        dep = deploy(w3, keys[0], dev=True, min_stake=min_stake * TOKEN, cooldown=cooldown,
                     min_window=min_window, draw_delay=1)
        path = dep.save(deployment)
        for acct in keys:
            if fund:
                MarketClient(w3, dep, acct).faucet(fund * TOKEN)
        typer.echo(f"anvil JSON-RPC: {url}" + (f" (a block every {block_time:g} s)"
                                               if block_time > 0 else ""))
        typer.echo(f"token {dep.token}  market {dep.market}  chain id {dep.chain_id}")
        typer.echo(f"minimum stake {min_stake} MWT")
        typer.echo(f"deployment file: {path.resolve()}")
        typer.echo(f"dev accounts (funded with {fund} MWT each; account 0 deployed):")
        for i, acct in enumerate(keys):
            typer.echo(f"  [{i}] {acct.address}  key 0x{bytes(acct.key).hex()}")
        typer.echo(f"fund your own key: morphware devnet fund --keystore KEY --rpc {url} "
                   f"--deployment {path}")
        typer.echo("running; Ctrl-C to stop", )
        while proc.poll() is None:
            time.sleep(0.5)
        raise OperatorError(f"anvil exited on its own with code {proc.returncode}",
                            "Start `morphware devnet` again; nodes must restart with its new "
                            "deployment file.")
    except KeyboardInterrupt:
        typer.echo("stopping anvil")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - it must not outlive us, whatever happened
            proc.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


@devnet_app.command("fund")
def fund_cmd(
    keystore: Path = typer.Option(None, "--keystore",
                                  help="The keystore of the account to fund (read without its "
                                       "password: only the address is needed)."),
    address: str = typer.Option(None, "--address", help="Or the address itself."),
    rpc: str = typer.Option(DEFAULT_RPC, "--rpc", help="The devnet's JSON-RPC endpoint."),
    deployment: Path = typer.Option(DEFAULT_DEPLOYMENT, "--deployment",
                                    help="The devnet's deployment file."),
    tokens: float = typer.Option(1000.0, "--tokens", min=0, help="Tokens to mint to it."),
    eth: float = typer.Option(10.0, "--eth", min=0, help="ETH to send it for gas."),
) -> None:
    """Give an account on a `morphware devnet` chain ETH for gas (from dev account 0) and tokens
    (from the dev faucet). On a real chain there is no such thing: it says so."""
    from morphware.runtime.cli.account import connect_w3, fund_dev, load_deployment
    from morphware.runtime.node.keystore import keystore_address
    from morphware.runtime.node.pricing import format_tokens
    from web3 import Web3

    if (keystore is None) == (address is None):
        raise OperatorError("name the account to fund", "Pass exactly one of --keystore FILE or "
                                                         "--address 0x...")
    who = keystore_address(keystore) if keystore is not None else address
    if not Web3.is_address(who):
        raise OperatorError(f"{who!r} is not an Ethereum address", "Pass 0x and 40 hex digits.")
    who = Web3.to_checksum_address(who)
    dep = load_deployment(deployment)
    w3 = connect_w3(rpc)
    wei, units = fund_dev(w3, dep, who, tokens, int(round(eth * 10**18)))
    typer.echo(f"funded {who}: {wei / 10**18:g} ETH for gas, {format_tokens(units)}")


def register(app: typer.Typer) -> None:
    app.add_typer(devnet_app, name="devnet")
