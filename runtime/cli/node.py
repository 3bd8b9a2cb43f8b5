"""Node commands: ``morphware demo``, ``node``, ``submit``, ``status`` and ``keys``.

Heavy imports (web3, libtorrent, torch) stay inside the functions so ``morphware --help`` is fast.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import typer

keys_app = typer.Typer(help="Create and inspect a node's encrypted keystore.", no_args_is_help=True,
                       rich_markup_mode=None)

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
                                   help="Shared peer book folder [default: a peers/ folder "
                                        "beside the deployment file]."),
    price_per_s: float = typer.Option(1.0, "--price-per-s",
                                      help="Worker: tokens asked per second of training."),
    margin: float = typer.Option(0.2, "--margin", help="Worker: profit margin over cost."),
    overhead_s: float = typer.Option(2.0, "--overhead-s", min=0.0,
                                     help="Worker: seconds a training job costs beyond its "
                                          "compute (loading, export; an FPGA's bitstream "
                                          "load), added to every estimate."),
    train_slots: int = typer.Option(1, "--train-slots", min=1,
                                    help="Worker: trainings run at once (one per device)."),
    eval_slots: int = typer.Option(1, "--eval-slots", min=1,
                                   help="Validator: evaluations run at once."),
    train_backend: str = typer.Option("auto", "--train-backend",
                                      help="Worker: cpu, cuda, auto, or golden/rtl/fpga (every "
                                           "GEMM on the systolic array, priced by its cycle "
                                           "model)."),
    eval_backend: str = typer.Option("auto", "--eval-backend",
                                     help="Validator: cpu, cuda, golden, rtl, fpga, auto."),
    stake: float = typer.Option(None, "--stake",
                                help="Registration stake in tokens; below the deployment's "
                                     "minimum is refused [default: that minimum]."),
    fund: float = typer.Option(0.0, "--fund",
                               help="Dev chains only: first give this account gas and this "
                                    "many tokens (as `morphware devnet fund` does)."),
    poll: float = typer.Option(0.2, "--poll", help="Seconds between chain polls."),
    log_range: int = typer.Option(2000, "--log-range", min=1,
                                  help="Most blocks one eth_getLogs query asks for (public RPC "
                                       "providers refuse long ranges)."),
    action_threads: int = typer.Option(8, "--action-threads", min=1,
                                       help="Jobs whose chain steps run at once (their "
                                            "transactions share blocks)."),
    password_env: str = typer.Option("MORPHWARE_PASSWORD", "--password-env",
                                     help="Environment variable holding the keystore password."),
    dashboard_port: int = typer.Option(0, "--dashboard-port", min=0, max=65535,
                                       help="Serve this node's dashboard and API on "
                                            "127.0.0.1:PORT (0: off)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every poll (debug level)."),
) -> None:
    """Run the node daemon until interrupted (Ctrl-C) or sent SIGTERM.

    Before its first transaction it checks the chain answers, the account has gas, and the
    stake meets the deployment's minimum; any problem ends in a message naming the fix."""
    import signal

    from morphware.runtime.cli.account import (
        check_gas,
        check_tokens,
        connect_market,
        ensure_allowance,
        fund_dev,
        plan_stake,
        token_symbol,
    )
    from morphware.runtime.node.daemon import NodeConfig
    from morphware.runtime.node.keystore import load_keystore, resolve_password
    from morphware.runtime.node.roles import build_node

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    roles = tuple(r.strip() for r in role.split(",") if r.strip())
    key = load_keystore(keystore, resolve_password(password_env))
    market = connect_market(rpc, deployment, key.private_key_hex)
    client = market.client
    if fund > 0:
        fund_dev(client.w3, client.deployment, key.address, fund)
    check_gas(client, keystore)
    stake_units = plan_stake(client, stake, roles)
    check_tokens(client, stake_units, roles, keystore)
    ensure_allowance(client)
    profile = None
    if "worker" in roles:
        from morphware.runtime.demo.market import worker_profile

        profile = worker_profile(_train_backend_name(train_backend), price_per_s, margin,
                                 overhead_s=overhead_s)
    cfg = NodeConfig(roles=roles, data_dir=data_dir,
                     peers_dir=peers_dir or Path(deployment).resolve().parent / "peers",
                     profile=profile, train_backend=train_backend, eval_backend=eval_backend,
                     worker_stake=stake_units, validator_stake=stake_units,
                     poll_interval=poll, name=data_dir.name, log_range=log_range,
                     action_threads=action_threads, train_slots=train_slots,
                     eval_slots=eval_slots)
    n = build_node(key, market, cfg)
    n.store.set_meta("token_symbol", token_symbol(client))
    if n.store.last_block() < 0 and n.store.get_meta("start_block") is None:
        n.store.set_meta("start_block", str(client.deployment.block))
    signal.signal(signal.SIGTERM, lambda *_: n.stop_event.set())
    typer.echo(f"node {key.address} roles={','.join(roles)} http={n.http.url} "
               f"torrent={n.delivery.address[0]}:{n.delivery.address[1]}")
    for line in resume_report(n.store):
        typer.echo(line)
    srv = None
    try:
        if dashboard_port:
            srv = _start_dashboard(n.store, dashboard_port)
        n.setup_roles()
        n.run()
    except KeyboardInterrupt:
        pass
    finally:
        if srv is not None:
            srv.stop()
        n.stop()


def resume_report(store) -> list[str]:  # noqa: ANN001 - Store, lazily imported
    """What a restarted node picks up again: one line per unfinished job and queued submission,
    so an operator sees at once that a restart resumed work rather than forgot it."""
    lines = [f"resuming job {j.job_id} as {j.role} (phase {j.phase}"
             + (", training from its last checkpoint" if j.phase == "training" else "") + ")"
             for j in store.jobs(active_only=True)]
    lines += [f"resuming submission {s.local_id} ({s.state}): {s.spec_path}"
              for s in store.submissions(pending_only=True)]
    return lines


def _train_backend_name(name: str) -> str:
    if name != "auto":
        return name
    from morphware.runtime.backends.registry import select_backend

    return select_backend("train").name


HEARTBEAT_STALE_S = 30.0  # plus ten polls: a daemon silent for longer is not running
PACKAGING_ALLOWANCE_S = 300.0  # --wait's default on top of the job's own windows


def served_store(data_dir: Path, role: str = "requester"):  # noqa: ANN201 - Store, lazy
    """The store of a running daemon playing ``role`` on ``data_dir``; never creates one.
    Refuses (OperatorError) when no daemon ever ran there, it stopped, or it plays other roles."""
    from morphware.runtime.cli.errors import OperatorError
    from morphware.runtime.node.store import Store

    start = (f"Start it with `morphware node --role {role} --rpc URL --deployment FILE "
             f"--keystore KEY --data-dir {data_dir}`, or pass the --data-dir it runs on.")
    path = Path(data_dir) / "node.db"
    if not path.is_file():
        raise OperatorError(f"no node state at {data_dir}: no `morphware node` has run with this "
                            "--data-dir (a typo?)", start)
    store = Store(path)
    beat = store.heartbeat()
    if beat is None:
        raise OperatorError(f"the node on {data_dir} is not running (it was stopped)", start)
    age = time.time() - float(beat["at"])
    if age > HEARTBEAT_STALE_S + 10 * float(beat.get("poll", 0.2)):
        raise OperatorError(f"the node on {data_dir} (pid {beat.get('pid')}) last polled the "
                            f"chain {_duration(age)} ago: it is not running", start)
    if role not in beat.get("roles", []):
        raise OperatorError(f"the node on {data_dir} plays {', '.join(beat.get('roles', []))}, "
                            f"not {role}", f"Restart it with --role {role} (roles combine: "
                            f"--role {role},worker).")
    return store


def _duration(seconds: float) -> str:
    """Seconds as "45 s", "3 min 20 s" or "2 h 5 min": how long ago, how long to wait."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _job_windows_s(spec) -> float:  # noqa: ANN001 - JobSpec, lazily imported
    """The longest a job can take on chain: the sum of its windows."""
    from morphware.runtime.node.requester import market_terms

    return float(sum(market_terms(spec)["windows"]))


def submit(
    job: Path = typer.Argument(..., help="job.toml"),
    data_dir: Path = typer.Option(..., "--data-dir", help="The requester daemon's state folder."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it is done."),
    timeout: float = typer.Option(None, "--timeout",
                                  help="With --wait: give up after this many seconds [default: "
                                       "the job's windows added up, plus 5 min to package; "
                                       "for a search, that per wave of jobs]."),
) -> None:
    """Queue a job for the requester daemon running on --data-dir; it packages, seeds and
    posts it, then follows it to the end. Refused unless a requester daemon is running there.

    A job.toml with an [hpo] table runs the search (always waits): see `morphware hpo --help`.
    If --wait gives up before the job is posted, the submission is cancelled; once posted, the
    job carries on (see `morphware status`)."""
    from morphware.runtime.job.spec import JobSpecError, load_job

    try:
        spec = load_job(job)
    except JobSpecError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    store = served_store(data_dir)
    limit = timeout if timeout is not None else _job_windows_s(spec) + PACKAGING_ALLOWANCE_S
    if spec.hpo is not None:
        from morphware.runtime.cli.hpo import run_search, search_waves

        store.close()
        if timeout is None:  # every wave of jobs the search can post, one after another
            limit = search_waves(spec) * _job_windows_s(spec) + PACKAGING_ALLOWANCE_S
        run_search(job, data_dir, limit)
        return
    local = store.add_submission(Path(job).resolve())
    typer.echo(f"queued submission {local} ({job}); the daemon on {data_dir} will post it "
               f"(withdraw it before then: morphware cancel {local} --data-dir {data_dir})")
    if wait:
        _follow(store, local, data_dir, limit)


def _follow(store, local: int, data_dir: Path, limit: float) -> None:  # noqa: ANN001
    """Print each change of a submission and its job until done, failed or ``limit`` s."""
    end = time.monotonic() + limit
    last = ""
    while time.monotonic() < end:
        sub = store.submission(local)
        assert sub is not None
        if sub.state == "failed":
            typer.echo(f"error: submission {local} failed: {sub.facts.get('error')}", err=True)
            raise typer.Exit(1)
        if sub.state == "cancelled":
            typer.echo(f"submission {local} was cancelled", err=True)
            raise typer.Exit(1)
        row = store.job(sub.job_id, "requester") if sub.job_id is not None else None
        now = f"submission {sub.state}" if row is None else f"job {row.job_id}: {row.phase}"
        if now != last:
            typer.echo(f"{time.strftime('%H:%M:%S')} {now}")
            last = now
        if row is not None and row.phase == "done":
            _print_status(store, row.job_id)
            return
        time.sleep(0.5)
    sub = store.submission(local)
    assert sub is not None
    if sub.job_id is None and store.cancel_submission(local):
        typer.echo(f"error: gave up after {_duration(limit)}: submission {local} was not posted "
                   "yet, so it is cancelled (nothing was escrowed). Is the requester daemon "
                   "still running? Submit again with a longer --timeout.", err=True)
    elif sub.job_id is None:
        typer.echo(f"error: gave up after {_duration(limit)} while submission {local} is being "
                   f"posted ({sub.state}); follow it with `morphware status` once it has a job "
                   "id.", err=True)
    else:
        typer.echo(f"error: gave up waiting after {_duration(limit)}; job {sub.job_id} is on "
                   f"chain and carries on: `morphware status {sub.job_id} --data-dir "
                   f"{data_dir}`", err=True)
    raise typer.Exit(1)


def cancel(
    submission: int = typer.Argument(..., help="Local submission id (printed by submit)."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The requester daemon's state folder."),
) -> None:
    """Withdraw a queued submission before the daemon posts it (nothing is escrowed yet).
    A job already on chain cannot be withdrawn: it runs to its end under the contract's rules."""
    from morphware.runtime.cli.errors import OperatorError
    from morphware.runtime.node.store import Store

    path = Path(data_dir) / "node.db"
    if not path.is_file():
        raise OperatorError(f"no node state at {data_dir}", "Pass the --data-dir given to "
                                                            "`morphware submit`.")
    store = Store(path)
    if store.cancel_submission(submission):
        typer.echo(f"submission {submission} cancelled; it will not be posted")
        return
    sub = store.submission(submission)
    if sub is None:
        raise OperatorError(f"the node on {data_dir} has no submission {submission}",
                            "`morphware status --data-dir DIR` lists them.")
    if sub.job_id is not None:
        raise OperatorError(f"submission {submission} is already on chain as job {sub.job_id} "
                            "and cannot be withdrawn",
                            f"Follow it with `morphware status {sub.job_id} --data-dir "
                            f"{data_dir}`.")
    raise OperatorError(f"submission {submission} is {sub.state}; only a queued submission can "
                        "be cancelled", "Nothing to do: it will not be posted."
                        if sub.state in ("failed", "cancelled") else
                        "It is being posted right now; follow it with `morphware status`.")


def status(
    job: int = typer.Argument(None, help="Job id on chain [default: list every submission "
                                         "and job this node knows]."),
    data_dir: Path = typer.Option(..., "--data-dir", help="The node's state folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Phase, bids, clearing price, metrics, payments and loss curve of a job, as this node
    knows it; without a job id, every submission and job in one list, then the node's load (what
    it trains or evaluates now, its queue, expected finish times) and its chain traffic."""
    from morphware.runtime.cli.errors import OperatorError
    from morphware.runtime.node.store import Store

    path = Path(data_dir) / "node.db"
    if not path.is_file():
        raise OperatorError(f"no node state at {path}",
                            "Pass the --data-dir a `morphware node` runs (or ran) on.")
    store = Store(path)
    if job is None:
        _print_overview(store, as_json)
        if not as_json:
            _print_load(store, as_json=False)
        return
    if not any(store.job(job, r) for r in ("requester", "worker", "validator")):
        raise OperatorError(f"this node knows no job {job}",
                            f"`morphware status --data-dir {data_dir}` lists the jobs it knows.")
    if as_json:
        typer.echo(json.dumps(job_status(store, job), indent=2, default=str))
    else:
        _print_status(store, job)


def _print_overview(store, as_json: bool) -> None:  # noqa: ANN001 - Store, lazily imported
    from morphware.runtime.api.views import load_view

    subs = [{"submission": s.local_id, "state": s.state, "job": s.job_id, "spec": s.spec_path,
             "queued": _local_time(s.created)} for s in store.submissions()]
    jobs = [{"job": j.job_id, "role": j.role, "phase": j.phase,
             "outcome": j.facts.get("outcome"), "updated": _local_time(j.updated)}
            for j in store.jobs()]
    if as_json:
        typer.echo(json.dumps({"submissions": subs, "jobs": jobs, "load": load_view(store)},
                              indent=2))
        return
    for s in subs:
        typer.echo(f"submission {s['submission']}: {s['state']}"
                   + (f" -> job {s['job']}" if s["job"] is not None else "")
                   + f"  queued {s['queued']}  {s['spec']}")
    for j in jobs:
        typer.echo(f"job {j['job']} [{j['role']}] {j['phase']}"
                   + (f" ({j['outcome']})" if j["outcome"] else "") + f"  updated {j['updated']}")
    if not subs and not jobs:
        typer.echo("this node has no submissions or jobs yet")


def _local_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


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


def _print_load(store, as_json: bool) -> None:  # noqa: ANN001 - Store, lazily imported
    from morphware.runtime.api.views import load_view

    load = load_view(store)
    if as_json:
        typer.echo(json.dumps(load, indent=2, default=str))
        return
    now = time.time()

    def due(t: float | None) -> str:
        return "–" if not t else f"in {t - now:.0f}s" if t > now else f"{now - t:.0f}s ago"

    if "worker" in load:
        w = load["worker"]
        typer.echo(f"worker: {len(w['training'])}/{w['slots']} training, {w['backlog_s']:.0f}s "
                   f"of work held per slot, measured speed x{w['speed']}")
        for j in w["jobs"]:
            typer.echo(f"  job {j['job']}: {j['phase']}, {j['remaining_s']:.0f}s left, "
                       f"expected finish {due(j['expected_finish'])}, "
                       f"work deadline {due(j['work_deadline'])}")
    if "validator" in load:
        v = load["validator"]
        typer.echo(f"validator: {len(v['evaluating'])}/{v['slots']} evaluating, "
                   f"~{v['eval_seconds']}s each")
        for j in v["jobs"]:
            doing = " (evaluating)" if j["evaluating"] else " (declined)" if j.get("declined") else ""
            typer.echo(f"  job {j['job']}: {j['phase']}{doing}"
                       f", expected finish {due(j['expected_finish'])}, "
                       f"commit deadline {due(j['commit_deadline'])}")
    if "rpc" in load:
        r = load["rpc"]
        roles = ", ".join(f"{k} {n}" for k, n in sorted(r["by_role"].items()))
        typer.echo(f"chain: {r['total']} RPC calls ({roles}), widest log query "
                   f"{r['max_logs_range']} blocks")


def _print_status(store, job: int) -> None:  # noqa: ANN001
    """The job per role, amounts with the token's symbol, metrics as decimals, times as
    durations since the role first saw the job."""
    from morphware.runtime.api.views import AMOUNT_FACTS, DEFAULT_SYMBOL

    sym = store.get_meta("token_symbol") or DEFAULT_SYMBOL
    st = job_status(store, job)
    for role, info in st["roles"].items():
        typer.echo(f"job {job} [{role}] phase: {info['phase']}")
        for k, v in info.items():
            if k not in ("phase", "timeline", "loss_curve"):
                typer.echo(f"  {k}: {_shown(k, v, sym, AMOUNT_FACTS)}")
        if info.get("loss_curve"):
            typer.echo("  loss curve: " + " ".join(f"{x:.3f}" for x in info["loss_curve"]))
        typer.echo("  timeline: " + ", ".join(f"{p} +{_duration(t)}" for p, t in info["timeline"]))
    if "live_loss" in st:
        last = st["live_loss"]["last"]
        typer.echo(f"  live loss: {st['live_loss']['steps']} steps, last "
                   f"{float(last.get('loss', 0.0)):.4f} (epoch {last.get('epoch', '?')})")


def _shown(key: str, value: object, sym: str, amount_keys: tuple[str, ...]) -> str:
    """One fact as text: token amounts with the symbol, maps of bidders one per entry."""
    def amount(v: object) -> str:
        return f"{v:g} {sym}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    if key in amount_keys:
        return amount(value)
    if key in ("bids", "revealed_bids") and isinstance(value, dict):
        return ", ".join(f"{a}: {amount(p)}" for a, p in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and value and all(isinstance(x, float) for x in value):
        return ", ".join(f"{x:.6g}" for x in value)
    return str(value)


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
    app.command("cancel")(cancel)
    app.add_typer(keys_app, name="keys")
