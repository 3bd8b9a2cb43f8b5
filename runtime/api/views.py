"""What the API serves, as plain dicts computed from a node's ``Store`` (no HTTP here).

The store keeps amounts in the token's base units (integers up to 1e18 and more, beyond what a
JavaScript number holds exactly) and validator metrics in the contract's fixed point; the views
turn both into plain numbers (tokens, metric values), so the dashboard never does unit arithmetic.
Secrets (keys, salts, wrapped keys) and long blobs (metadata, magnets) are never served.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphware.runtime.node.chain import DATA_UNUSABLE, DECLINED, MODEL_UNUSABLE
from morphware.runtime.node.pricing import AMOUNT_FACTS
from morphware.runtime.node.store import JobRow, Store

ROLES = ("requester", "worker", "validator")
HIDDEN_FACT_PARTS = ("key", "salt", "artifacts", "metadata", "magnet")
BIDDER_MAPS = ("bids", "revealed_bids")
DEFAULT_DECIMALS = 18
DEFAULT_METRIC_SCALE = 10**6
DEFAULT_SYMBOL = "MWT"
METRIC_MAPS = ("revealed_metrics",)
VERDICT_NAMES = {MODEL_UNUSABLE: "model unusable", DATA_UNUSABLE: "test data unusable",
                 DECLINED: "declined"}
"""The market's sentinel verdicts, shown by name instead of as a number."""
MAX_LOSS_EVENTS = 2000  # per response: a client keeps polling with ?after= for the rest


class NotFound(LookupError):
    """The node's store knows nothing of the thing asked for."""


@dataclass(frozen=True)
class Units:
    """How to read the store's integers: token decimals and the metric fixed-point scale."""

    decimals: int = DEFAULT_DECIMALS
    metric_scale: int = DEFAULT_METRIC_SCALE

    def tokens(self, base: Any) -> Any:
        """Base units to tokens; anything not an integer is passed through unchanged."""
        if isinstance(base, bool) or not isinstance(base, int):
            return base
        return base / 10**self.decimals

    def metric(self, fixed: Any) -> Any:
        """A fixed-point metric as a value; the contract's sentinel verdicts by name."""
        if isinstance(fixed, bool) or not isinstance(fixed, int):
            return fixed
        if fixed in VERDICT_NAMES:
            return VERDICT_NAMES[fixed]
        return fixed / self.metric_scale


def units_of(store: Store) -> Units:
    """Units recorded by the node (meta ``token_decimals``/``metric_scale``), else the defaults
    the contracts are deployed with."""
    return Units(decimals=int(store.get_meta("token_decimals") or DEFAULT_DECIMALS),
                 metric_scale=int(store.get_meta("metric_scale") or DEFAULT_METRIC_SCALE))


# -- node and jobs ------------------------------------------------------------------------------

def node_info(store: Store) -> dict[str, Any]:
    """Who this node is and how far it has followed the chain."""
    jobs = store.jobs()
    return {
        "address": store.get_meta("address"),
        "name": store.get_meta("name"),
        "data_dir": str(Path(store.path).parent),
        "schema_version": int(store.get_meta("schema_version") or 0),
        "last_block": store.last_block(),
        "token_symbol": store.get_meta("token_symbol") or DEFAULT_SYMBOL,
        "withdrawn": units_of(store).tokens(sum(w["amount"] for w in store.withdrawals())),
        "withdrawals": len(store.withdrawals()),
        "roles": sorted({j.role for j in jobs}, key=_role_order),
        "jobs": len({j.job_id for j in jobs}),
        "submissions": len(store.submissions()),
        "now": time.time(),
        "load": load_view(store),
    }


def load_view(store: Store) -> dict[str, Any]:
    """What the node is doing and has queued, per role, with the expected finish of each job
    (the roles publish it every tick: meta ``load:worker`` / ``load:validator``), and its chain
    traffic so far (RPC calls by role and by method, the largest log range it asked for)."""
    out: dict[str, Any] = {}
    for role in ("worker", "validator"):
        raw = store.get_meta(f"load:{role}")
        if raw:
            out[role] = json.loads(raw)
    raw = store.get_meta("rpc_stats")
    if raw:
        st = json.loads(raw)
        by_role: dict[str, int] = {}
        by_method: dict[str, int] = {}
        for r in st.get("calls", []):
            by_role[r["role"] or "other"] = by_role.get(r["role"] or "other", 0) + int(r["n"])
            by_method[r["method"]] = by_method.get(r["method"], 0) + int(r["n"])
        out["rpc"] = {"total": sum(by_role.values()), "by_role": by_role,
                      "by_method": by_method, "max_logs_range": st.get("max_logs_range", 0)}
    return out


def _role_order(role: str) -> tuple[int, str]:
    return (ROLES.index(role) if role in ROLES else len(ROLES), role)


def job_rows(store: Store, job_id: int) -> dict[str, JobRow]:
    """This node's rows for a job, one per role it plays in it; ``NotFound`` if none."""
    rows = {r: row for r in ROLES if (row := store.job(job_id, r)) is not None}
    if not rows:
        raise NotFound(f"this node knows no job {job_id}")
    return rows


def jobs_list(store: Store) -> list[dict[str, Any]]:
    """One line per job (newest first): the phase of the role that matters most here."""
    by_id: dict[int, dict[str, JobRow]] = {}
    for row in store.jobs():
        by_id.setdefault(row.job_id, {})[row.role] = row
    return [_summary(store, job_id, rows) for job_id, rows in sorted(by_id.items(), reverse=True)]


def _summary(store: Store, job_id: int, rows: dict[str, JobRow]) -> dict[str, Any]:
    u = units_of(store)
    main = rows[next(r for r in ROLES if r in rows)]
    price = _first_fact(rows, "price")
    return {
        "job_id": job_id,
        "name": _first_fact(rows, "name"),
        "role": main.role,
        "phase": main.phase,
        "roles": {r: row.phase for r, row in rows.items()},
        "price": u.tokens(price) if price else None,
        "outcome": _first_fact(rows, "outcome"),
        "created": min(r.created for r in rows.values()),
        "updated": max(r.updated for r in rows.values()),
        "loss_steps": len(store.progress(job_id)),
    }


def _first_fact(rows: dict[str, JobRow], name: str) -> Any:
    for r in ROLES:
        if r in rows and rows[r].facts.get(name) not in (None, ""):
            return rows[r].facts[name]
    return None


def submissions_list(store: Store) -> list[dict[str, Any]]:
    """Jobs queued by ``morphware submit``, before and after they are on chain."""
    return [{"local_id": s.local_id, "spec": s.spec_path, "state": s.state, "job_id": s.job_id,
             "name": s.facts.get("name"), "error": s.facts.get("error"), "created": s.created}
            for s in reversed(store.submissions())]


def job_detail(store: Store, job_id: int) -> dict[str, Any]:
    """Everything about a job on one page: per-role phase and facts, the phase timeline, bids
    and clearing price, metrics, payments and how much of the loss curve there is."""
    rows = job_rows(store, job_id)
    u = units_of(store)
    return {
        **_summary(store, job_id, rows),
        "facts": {r: clean_facts(row.facts, u) for r, row in rows.items()},
        "timeline": timeline(store, job_id),
        "bids": bids_view(store, job_id),
        "metrics": metrics_view(store, job_id),
        "payments": payments_view(store, job_id),
    }


def clean_facts(facts: dict[str, Any], u: Units) -> dict[str, Any]:
    """Facts fit to show: no secrets or blobs, amounts in tokens, metrics as values."""
    out: dict[str, Any] = {}
    for k, v in facts.items():
        if any(part in k for part in HIDDEN_FACT_PARTS) or k == "loss_curve":
            continue
        if k in AMOUNT_FACTS:
            v = u.tokens(v)
        elif k in BIDDER_MAPS and isinstance(v, dict):
            # a committed bid is sealed: the event carries no price (0) until it is revealed
            v = {a: u.tokens(p) if p else "sealed" for a, p in v.items()}
        elif k in METRIC_MAPS and isinstance(v, dict):
            v = {a: u.metric(m) for a, m in v.items()}
        elif k == "metric_fixed":
            continue  # the same value as "metric", in the contract's fixed point
        elif k in ("metrics",) and isinstance(v, list):
            v = [u.metric(m) for m in v]
        elif k == "median":
            v = u.metric(v)
        out[k] = v
    return out


def timeline(store: Store, job_id: int) -> list[dict[str, Any]]:
    """Phases in the order entered, each with how long it lasted (None: still in it)."""
    entries = store.timeline(job_id)
    out = []
    for i, (role, phase, at) in enumerate(entries):
        nxt = next((t for r, _, t in entries[i + 1:] if r == role), None)
        out.append({"role": role, "phase": phase, "at": at,
                    "seconds": None if nxt is None else round(nxt - at, 3)})
    return out


# -- market facts -------------------------------------------------------------------------------

def _terms(store: Store, rows: dict[str, JobRow]) -> dict[str, Any]:
    """The market terms the requester posted (tokens), when this node is the requester."""
    req = rows.get("requester")
    local = req.facts.get("local_id") if req else None
    sub = store.submission(int(local)) if local is not None else None
    return dict(sub.facts.get("terms", {})) if sub else {}


def bids_view(store: Store, job_id: int) -> dict[str, Any]:
    """Sealed bids seen on chain, revealed asks, our own bid, and the clearing price with the
    rule that set it (pay-as-bid: the winner is paid its own ask)."""
    rows = job_rows(store, job_id)
    u = units_of(store)
    req = rows["requester"].facts if "requester" in rows else {}
    committed = list(req.get("bids", {}))
    revealed = {a: u.tokens(p) for a, p in req.get("revealed_bids", {}).items()}
    winner = _first_fact(rows, "winner") or _we_won(store, job_id, rows)
    bidders = committed + [a for a in revealed if a not in committed]
    bids = sorted(({"bidder": a, "revealed": a in revealed, "ask": revealed.get(a),
                    "winner": bool(winner) and a.lower() == str(winner).lower()}
                   for a in bidders),
                  key=lambda b: (b["ask"] is None, b["ask"] or 0.0, b["bidder"]))
    price = _first_fact(rows, "price")
    own = store.bid(job_id)
    return {
        "job_id": job_id,
        "bids": bids,
        "own_bid": None if own is None else {"ask": u.tokens(own.price),
                                             "committed": own.committed,
                                             "revealed": own.revealed},
        "winner": winner,
        "clearing_price": u.tokens(price) if price else None,
        "max_price": _terms(store, rows).get("max_price"),
        "rule": _price_rule(len(revealed), bool(price), "requester" in rows or "worker" in rows),
    }


def _we_won(store: Store, job_id: int, rows: dict[str, JobRow]) -> str | None:
    """A winning worker records no winner fact: its timeline passing through "won" says it."""
    if "worker" in rows and any(p == "won" for _, p, _ in store.timeline(job_id, "worker")):
        return store.get_meta("address") or "this node"
    return None


def _price_rule(n_revealed: int, cleared: bool, in_auction: bool) -> str:
    if not in_auction:
        return "this node took no part in the auction"
    if not cleared:
        return "not cleared yet: the lowest revealed ask wins and is paid that ask"
    if n_revealed == 1:
        return "the only revealed ask (pay-as-bid)"
    return "the winner's own ask (pay-as-bid)"


def metrics_view(store: Store, job_id: int) -> dict[str, Any]:
    """The validators' metrics: per validator where known, all revealed values, the median and
    whether it met the threshold."""
    rows = job_rows(store, job_id)
    u = units_of(store)
    terms = _terms(store, rows)
    req = rows["requester"].facts if "requester" in rows else {}
    per = {a.lower(): u.metric(m) for a, m in req.get("revealed_metrics", {}).items()}
    validators = [{"validator": v, "metric": per.get(str(v).lower())}
                  for v in req.get("validators", [])]
    own = rows["validator"].facts.get("metric") if "validator" in rows else None
    return {
        "job_id": job_id,
        "metric": terms.get("metric") or store.get_meta(f"job_metric:{job_id}"),
        "threshold": terms.get("threshold"),
        "lower_is_better": terms.get("lower_is_better"),
        "validators": validators,
        "revealed": [u.metric(m) for m in req.get("metrics", [])],
        "median": u.metric(req["median"]) if "median" in req else None,
        "own": own,
        "outcome": _first_fact(rows, "outcome"),
    }


def payments_view(store: Store, job_id: int) -> dict[str, Any]:
    """What this job meant to this node per role once settled (a worker or validator: what it
    "earned"; the requester: what it "spent"), and (as requester) the settlement: the worker is
    paid the clearing price only if the model was accepted; each validator that revealed its
    metric is paid the validator fee; the rest of the escrow is refunded. Withdrawals are per
    account, not per job (one can carry several jobs' credits): see ``node_info``."""
    rows = job_rows(store, job_id)
    u = units_of(store)
    own = {r: {"phase": row.phase, "outcome": row.facts.get("outcome"),
               **({"spent": u.tokens(row.facts.get("spent"))} if r == "requester" else
                  {"earned": u.tokens(row.facts.get("earned"))})}
           for r, row in rows.items()}
    return {"job_id": job_id, "roles": own, "settlement": _settlement(store, rows, u)}


def _settlement(store: Store, rows: dict[str, JobRow], u: Units) -> dict[str, Any] | None:
    req = rows.get("requester")
    terms = _terms(store, rows)
    if req is None or not req.facts.get("outcome") or not terms:
        return None
    accepted = req.facts["outcome"] == "accepted"
    price = u.tokens(req.facts.get("price") or 0)
    fee = float(terms.get("validator_fee", 0.0))
    n_paid = len(req.facts.get("metrics", []))
    worker = price if accepted else 0.0
    escrow = float(terms.get("max_price", 0.0)) + fee * int(terms.get("validators", 0))
    cost = worker + fee * n_paid
    return {"outcome": req.facts["outcome"], "worker": req.facts.get("winner"),
            "worker_paid": worker, "validator_fee": fee, "validators_paid": n_paid,
            "validator_fees": fee * n_paid, "requester_cost": cost, "escrowed": escrow,
            "refunded": max(0.0, escrow - cost)}


# -- loss curve ---------------------------------------------------------------------------------

def loss_view(store: Store, job_id: int, after: int = -1) -> dict[str, Any]:
    """Live loss events with ``step > after`` (oldest first) for incremental polling, and the
    final per-epoch curve once the trained model has arrived."""
    rows = job_rows(store, job_id)
    events = store.progress(job_id, after)
    more = len(events) > MAX_LOSS_EVENTS
    events = events[:MAX_LOSS_EVENTS]
    return {
        "job_id": job_id,
        "after": after,
        "events": events,
        "last_step": int(events[-1]["step"]) if events else after,
        "more": more,
        "phase": rows[next(r for r in ROLES if r in rows)].phase,
        "final_curve": _first_fact(rows, "loss_curve"),
    }
