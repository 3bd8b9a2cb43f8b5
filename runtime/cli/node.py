"""Node commands: ``morphware demo``, ``node``, ``submit``, ``status`` and ``keys``.

Heavy imports (web3, libtorrent, torch) stay inside the functions so ``morphware --help`` is fast.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import typer

keys_app = typer.Typer(help="Create and inspect a node's encrypted keystore.", no_args_is_help=True)

ROLE_HELP = "Comma-separated roles this daemon plays: requester, worker, validator."


def demo(
    job: Path = typer.Option(None, "--job",
                             help="job.toml [default: the digits example shipped with morphware]."),
    data_dir: Path = typer.Option(None, "--data-dir",
                                  help="Where the nodes keep their state [default: a new temp dir]."),
    timeout: float = typer.Option(300.0, "--timeout", help="Give up after this many seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print the summary."),
    dashboard: bool = typer.Option(False, "--dashboard",
                                   help="Serve the requester's dashboard while the demo runs."),
    dashboard_port: int = typer.Option(8765, "--dashboard-port", min=0, max=65535,
                                       help="With --dashboard: its port (0: any free one)."),
    keep_serving: bool = typer.Option(False, "--keep-serving",
                                      help="Keep the dashboard up after the summary until "
                                           "Ctrl-C (implies --dashboard)."),
) -> None:
    """Run a whole market in this process on the digits job: embedded chain, torrents on
    loopback, one requester, three workers, three validators (one on the systolic golden model)."""
    from morphware.runtime.demo import EXAMPLE_JOB, run_demo, summary

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    servers: list = []

    def serve(requester) -> None:  # noqa: ANN001 - Node, lazily imported
        # its data dir, over a connection of the dashboard's own: it outlives the node
        servers.append(_start_dashboard(requester.data_dir, dashboard_port))

    typer.echo("morphware demo: starting an embedded chain and 7 nodes ...")
    try:
        result = run_demo(job or EXAMPLE_JOB, data_dir, timeout=timeout,
                          echo=None if quiet else typer.echo,
                          on_requester=serve if dashboard or keep_serving else None)
        typer.echo(summary(result))
        if keep_serving and servers:
            typer.echo(f"dashboard still on {servers[0].url}/dashboard/ (Ctrl-C to stop)")
            _serve_until_interrupted()
    finally:
        for srv in servers:
            srv.stop()
    if not result.paid:
        raise typer.Exit(1)


def _serve_until_interrupted() -> None:
    """Block until Ctrl-C or SIGTERM (both end in the caller's clean shutdown)."""
    import signal

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_dashboard(source, port: int):  # noqa: ANN001, ANN202 - lazy types
    """Start a DashboardServer on 127.0.0.1:``port`` and print its URL; a port in use (or any
    failure to serve) is a clear error and exit status 1."""
    from morphware.runtime.api.server import DashboardServer, ServeError

    try:
        srv = DashboardServer(source, port=port).start()
    except (ServeError, OSError) as e:
        typer.echo(f"error: dashboard: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"dashboard on {srv.url}/dashboard/ (API: {srv.url}/api/node)")
    return srv


def node(
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    rpc: str = typer.Option(..., "--rpc", help="JSON-RPC endpoint, e.g. http://127.0.0.1:8545."),
    deployment: Path = typer.Option(..., "--deployment", help="Deployment JSON (morphware devnet)."),
    keystore: Path = typer.Option(..., "--keystore", help="Encrypted keystore of this node."),
    data_dir: Path = typer.Option(..., "--data-dir", help="State folder (SQLite, torrents)."),
    peers_dir: Path = typer.Option(None, "--peers-dir",
                                   help="Shared peer book folder [default: beside the deployment]."),
    price_per_s: float = typer.Option(1.0, "--price-per-s",
                                      help="Worker: tokens asked per second of training."),
    margin: float = typer.Option(0.2, "--margin", help="Worker: profit margin over cost."),
    train_backend: str = typer.Option("auto", "--train-backend",
                                      help="Worker: cpu, cuda, auto, or golden/rtl/fpga (every "
                                           "GEMM on the systolic array, priced by its cycle "
                                           "model)."),
    eval_backend: str = typer.Option("auto", "--eval-backend",
                                     help="Validator: cpu, cuda, golden, rtl, fpga, auto."),
    stake: float = typer.Option(5.0, "--stake", help="Registration stake (tokens)."),
    fund: float = typer.Option(0.0, "--fund", help="Dev chains: mint this many tokens first."),
    poll: float = typer.Option(0.2, "--poll", help="Seconds between chain polls."),
    password_env: str = typer.Option("MORPHWARE_PASSWORD", "--password-env",
                                     help="Environment variable holding the keystore password."),
    dashboard_port: int = typer.Option(0, "--dashboard-port", min=0, max=65535,
                                       help="Serve this node's dashboard and API on "
                                            "127.0.0.1:PORT (0: off)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the node daemon until interrupted (Ctrl-C) or sent SIGTERM."""
    import signal

    from morphware.runtime.node.daemon import NodeConfig
    from morphware.runtime.node.keystore import load_keystore, resolve_password
    from morphware.runtime.node.pricing import to_base_units
    from morphware.runtime.node.roles import build_node

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    roles = tuple(r.strip() for r in role.split(",") if r.strip())
    key = load_keystore(keystore, resolve_password(password_env))
    market = connect_market(rpc, deployment, key.private_key_hex)
    if fund > 0:
        market.fund(to_base_units(fund))
    profile = None
    if "worker" in roles:
        from morphware.runtime.demo.market import worker_profile

        profile = worker_profile(_train_backend_name(train_backend), price_per_s, margin)
    cfg = NodeConfig(roles=roles, data_dir=data_dir,
                     peers_dir=peers_dir or Path(deployment).resolve().parent / "peers",
                     profile=profile, train_backend=train_backend, eval_backend=eval_backend,
                     worker_stake=to_base_units(stake), validator_stake=to_base_units(stake),
                     poll_interval=poll, name=data_dir.name)
    n = build_node(key, market, cfg)
    if n.store.last_block() < 0 and n.store.get_meta("start_block") is None:
        n.store.set_meta("start_block", str(market.client.deployment.block))
    signal.signal(signal.SIGTERM, lambda *_: n.stop_event.set())
    typer.echo(f"node {key.address} roles={','.join(roles)} http={n.http.url} "
               f"torrent={n.delivery.address[0]}:{n.delivery.address[1]}")
    srv = None
    try:
        if dashboard_port:
            srv = _start_dashboard(n.store, dashboard_port)
        for r in n.roles.values():
            r.setup()
        n.run()
    except KeyboardInterrupt:
        pass
    finally:
        if srv is not None:
            srv.stop()
        n.stop()


def connect_market(rpc: str, deployment: Path, private_key: str):  # noqa: ANN201 - lazy types
    """A Market for an account on a JSON-RPC chain, all calls serialised per Web3."""
    from morphware.contracts import MarketClient
    from morphware.contracts.tx import lock_for
    from morphware.runtime.node.chain import Locked
    from morphware.runtime.node.market_adapter import ContractsMarket

    client = MarketClient.connect(rpc, str(deployment), private_key)
    market = Locked(ContractsMarket(client), lock_for(client.w3))
    market.client = client  # type: ignore[attr-defined]
    return market


def _train_backend_name(name: str) -> str:
    if name != "auto":
        return name
    from morphware.runtime.backends.registry import select_backend

    return select_backend("train").name


def submit(
    job: Path = typer.Argument(..., help="job.toml"),
    data_dir: Path = typer.Option(..., "--data-dir", help="The requester daemon's state folder."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it is done."),
    timeout: float = typer.Option(3600.0, "--timeout", help="With --wait: give up after (s)."),
) -> None:
    r"""Queue a job for the requester daemon running on ``--data-dir``; it packages, seeds and
    posts it, then follows it to the end. A job.toml with an \[hpo] table runs the search
    (always waits): see ``morphware hpo --help``."""
    from morphware.runtime.job.spec import JobSpecError, load_job
    from morphware.runtime.node.store import Store

    try:
        spec = load_job(job)
    except JobSpecError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    if spec.hpo is not None:
        from morphware.runtime.cli.hpo import run_search

        run_search(job, data_dir, timeout)
        return
    store = Store(Path(data_dir) / "node.db")
    local = store.add_submission(Path(job).resolve())
    typer.echo(f"queued submission {local} ({job}); the daemon on {data_dir} will post it")
    if not wait:
        return
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        sub = store.submission(local)
        assert sub is not None
        if sub.state == "failed":
            typer.echo(f"failed: {sub.facts.get('error')}", err=True)
            raise typer.Exit(1)
        row = store.job(sub.job_id, "requester") if sub.job_id is not None else None
        now = f"submission {sub.state}" if row is None else f"job {row.job_id}: {row.phase}"
        if now != last:
            typer.echo(now)
            last = now
        if row is not None and row.phase == "done":
            _print_status(store, row.job_id)
            return
        time.sleep(0.5)
    typer.echo("timed out waiting", err=True)
    raise typer.Exit(1)


def status(
    job: int = typer.Argument(..., help="Job id on chain."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The node's state folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Phase, bids, clearing price, metrics, payments and loss curve of a job, as this node
    knows it."""
    from morphware.runtime.node.store import Store

    path = Path(data_dir) / "node.db"
    if not path.is_file():
        typer.echo(f"error: no node state at {path}", err=True)
        raise typer.Exit(1)
    store = Store(path)
    if not any(store.job(job, r) for r in ("requester", "worker", "validator")):
        typer.echo(f"error: this node knows no job {job}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(job_status(store, job), indent=2, default=str))
    else:
        _print_status(store, job)


def job_status(store, job: int) -> dict:  # noqa: ANN001 - Store, lazily imported
    """Everything this node's store knows about a job, per role (facts shown as the dashboard
    shows them: ``api.views.clean_facts``)."""
    from morphware.runtime.api.views import clean_facts, units_of

    units = units_of(store)
    out: dict = {"job": job, "roles": {}}
    for role in ("requester", "worker", "validator"):
        row = store.job(job, role)
        if row is None:
            continue
        facts = clean_facts(row.facts, units)
        if row.facts.get("loss_curve"):
            facts["loss_curve"] = list(row.facts["loss_curve"])
        out["roles"][role] = {"phase": row.phase, **facts,
                              "timeline": [(p, round(t - row.created, 2))
                                           for _, p, t in store.timeline(job, role)]}
    prog = store.progress(job)
    if prog:
        out["live_loss"] = {"steps": len(prog), "last": prog[-1]}
    return out


def _print_status(store, job: int) -> None:  # noqa: ANN001
    st = job_status(store, job)
    for role, info in st["roles"].items():
        typer.echo(f"job {job} [{role}] phase: {info['phase']}")
        for k, v in info.items():
            if k not in ("phase", "timeline", "loss_curve"):
                typer.echo(f"  {k}: {v}")
        if info.get("loss_curve"):
            typer.echo("  loss curve: " + " ".join(f"{x:.3f}" for x in info["loss_curve"]))
        typer.echo("  timeline: " + ", ".join(f"{p}@{t}s" for p, t in info["timeline"]))
    if "live_loss" in st:
        typer.echo(f"  live loss: {st['live_loss']['steps']} steps, last {st['live_loss']['last']}")


@keys_app.command("new")
def keys_new(
    keystore: Path = typer.Option(..., "--keystore", help="Where to write the keystore JSON."),
    password_env: str = typer.Option("MORPHWARE_PASSWORD", "--password-env"),
) -> None:
    """Create a fresh node key, encrypted with a password (from the env var or a prompt)."""
    from morphware.runtime.node.keystore import KeystoreError, create_keystore, resolve_password

    try:
        key = create_keystore(keystore, resolve_password(password_env, confirm=True))
    except KeystoreError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"address {key.address}\nkeystore {keystore}")


@keys_app.command("show")
def keys_show(
    keystore: Path = typer.Option(..., "--keystore"),
    password_env: str = typer.Option("MORPHWARE_PASSWORD", "--password-env"),
) -> None:
    """Print the address and public encryption key (never the private key)."""
    from morphware.runtime.node.keystore import KeystoreError, load_keystore, resolve_password

    try:
        key = load_keystore(keystore, resolve_password(password_env))
    except KeystoreError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"address {key.address}\npubkey  0x{key.public_key.hex()}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("node")(node)
    app.command("submit")(submit)
    app.command("status")(status)
    app.add_typer(keys_app, name="keys")
