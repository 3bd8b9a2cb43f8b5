"""``morphware devnet``: a local chain with the market deployed, for nodes to join."""

from __future__ import annotations

import time
from pathlib import Path

import typer

TOKEN = 10**18


def devnet(
    embedded: bool = typer.Option(
        False, "--embedded",
        help="Instead of anvil: deploy on an in-process eth-tester chain, run one scripted job "
             "through every phase (5 bidders, 3 validators), print its timeline and gas, and exit "
             "(a self-check of the contracts that needs no external process).",
    ),
    port: int = typer.Option(8545, help="anvil's port on 127.0.0.1 (0: any free port)."),
    deployment: Path = typer.Option(
        Path("devnet-deployment.json"), "--deployment", "-o",
        help="Where to write the deployment file (addresses + ABIs) that nodes load.",
    ),
    accounts: int = typer.Option(10, min=2, max=100, help="Dev accounts anvil creates."),
    fund: int = typer.Option(1000, min=0, max=10_000,
                             help="Tokens each dev account gets from the faucet."),
    min_stake: int = typer.Option(10, min=0, help="Registry minimum stake, in tokens."),
    cooldown: int = typer.Option(3600, min=0, help="Unstake cool-down, in seconds."),
) -> None:
    """Start anvil on 127.0.0.1, deploy token + market, fund the dev accounts from the faucet,
    write the deployment file, and keep running until Ctrl-C.

    anvil comes from the npm registry: a checkout has it after `make setup`; elsewhere the first
    run installs it into ~/.local/share/morphware/tools (needs npm; $MORPHWARE_TOOLS moves it).

    The dev accounts are anvil's well-known test mnemonic: never use them for anything of value."""
    if embedded:
        from morphware.contracts.demo import embedded_demo

        result = embedded_demo(log=typer.echo)
        path = result.deployment.save(deployment)
        typer.echo(f"deployment file (in-process chain, for reference only): {path}")
        return
    from morphware.contracts import MarketClient, anvil_accounts, deploy, start_anvil
    from morphware.contracts.anvil import ensure_anvil
    from web3 import Web3

    ensure_anvil(log=typer.echo)  # a wheel install has none until this first use
    proc, url = start_anvil(port=port, n_accounts=accounts)
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        keys = anvil_accounts(accounts)
        dep = deploy(w3, keys[0], min_stake=min_stake * TOKEN, cooldown=cooldown)
        path = dep.save(deployment)
        for acct in keys:
            if fund:
                MarketClient(w3, dep, acct).faucet(fund * TOKEN)
        typer.echo(f"anvil JSON-RPC: {url}")
        typer.echo(f"token {dep.token}  market {dep.market}  chain id {dep.chain_id}")
        typer.echo(f"deployment file: {path.resolve()}")
        typer.echo(f"dev accounts (funded with {fund} MWT each; account 0 deployed):")
        for i, acct in enumerate(keys):
            typer.echo(f"  [{i}] {acct.address}  key 0x{bytes(acct.key).hex()}")
        typer.echo("running; Ctrl-C to stop")
        while proc.poll() is None:
            time.sleep(0.5)
        raise typer.Exit(f"anvil exited with code {proc.returncode}")
    except KeyboardInterrupt:
        typer.echo("stopping anvil")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def register(app: typer.Typer) -> None:
    app.command("devnet")(devnet)
