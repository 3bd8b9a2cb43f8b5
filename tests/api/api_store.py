"""A node store filled the way the node's roles fill it, through ``Store``'s own API.

Shared by the API tests and the browser tests (which put this folder on ``sys.path``). The
requester's job goes through the requester role's phases with the facts each phase records (see
``runtime/node/requester.py``); a second job is one this node bid on as a worker and lost.
"""

from __future__ import annotations

import math
from pathlib import Path

from morphware.runtime.node.pricing import to_base_units
from morphware.runtime.node.store import Store

REQ_JOB = 7
WORKER_JOB = 8
WORKERS = ["0x" + c * 40 for c in "abc"]
VALIDATORS = ["0x" + c * 40 for c in "123"]
ASKS = {WORKERS[0]: 0.6, WORKERS[1]: 1.1, WORKERS[2]: 2.0}
TERMS = {"max_price": 5.0, "validator_fee": 0.25, "validators": 3, "threshold": 0.8,
         "metric": "accuracy", "lower_is_better": False, "bid_stake": 0.5,
         "windows": [60, 30, 30, 120, 60, 30]}
METRICS_FIXED = [912_345, 905_000, 921_000]  # contract fixed point, 1e6 = 1.0


def make_store(data_dir: Path) -> Store:
    return Store(Path(data_dir) / "node.db")


def loss_at(step: int) -> float:
    """A plausible decaying training loss."""
    return round(2.3 * math.exp(-step / 15) + 0.1 + 0.02 * math.sin(step), 6)


def add_loss(store: Store, job_id: int, start: int, n: int, per_epoch: int = 10) -> None:
    """Append steps ``start .. start+n-1`` as the worker's ``on_step`` does."""
    for s in range(start, start + n):
        store.add_progress(job_id, s, {"step": s, "epoch": s // per_epoch, "loss": loss_at(s)})


def post_requester_job(store: Store, job_id: int = REQ_JOB) -> int:
    """A submission packaged and posted; the job is in its auction phase."""
    local = store.add_submission("/jobs/digits/job.toml")
    store.update_submission(local, state="prepared", name="digits", terms=TERMS,
                            manifest_hash="ab" * 32, metadata="not shown")
    store.put_artifact(job_id, "model", magnet="magnet:?xt=urn:btih:" + "0" * 40,
                       content_hash="cd" * 32, key="ef" * 32, path="/tmp/model.onnx")
    store.update_submission(local, state="posted", job_id=job_id)
    store.upsert_job(job_id, "requester", "auction", local_id=local, name="digits")
    return local


def run_auction(store: Store, job_id: int = REQ_JOB) -> None:
    """Bids sealed, then revealed; finalized: the lowest ask wins. (The price recorded here is
    the fixture's own figure; the views only display what the chain reported.)"""
    store.upsert_job(job_id, "requester", bids={w: 0 for w in WORKERS})
    store.upsert_job(job_id, "requester",
                     revealed_bids={w: to_base_units(a) for w, a in ASKS.items()})
    store.upsert_job(job_id, "requester", "working", winner=WORKERS[0],
                     price=to_base_units(ASKS[WORKERS[1]]))


def settle(store: Store, job_id: int = REQ_JOB) -> None:
    """Validated and accepted; the requester downloaded the model and withdrew."""
    store.upsert_job(job_id, "requester", "validating", validators=VALIDATORS)
    store.upsert_job(job_id, "requester", "closed", outcome="accepted", median=912_345,
                     metrics=METRICS_FIXED)
    store.upsert_job(job_id, "requester", "done", outcome="accepted",
                     spent=to_base_units(0.75), price=to_base_units(ASKS[WORKERS[1]]),
                     loss_curve=[1.9, 0.9, 0.5, 0.3], model_path="/tmp/results/7/model.onnx")


def lost_worker_job(store: Store, job_id: int = WORKER_JOB) -> None:
    """This node bid as a worker, revealed, lost to a cheaper ask."""
    store.upsert_job(job_id, "worker", "seen", artifacts="blob", manifest_hash="11" * 32)
    store.save_bid(job_id, to_base_units(1.5), b"\x01" * 32)
    store.mark_bid(job_id, committed=True)
    store.upsert_job(job_id, "worker", "committed", ask=to_base_units(1.5), estimate_s=12.5)
    store.mark_bid(job_id, revealed=True)
    store.upsert_job(job_id, "worker", "revealed")
    store.upsert_job(job_id, "worker", "lost", winner=WORKERS[2], price=to_base_units(1.8))


def full_store(data_dir: Path) -> Store:
    """Both jobs: the requester's settled with 40 loss steps, the worker's lost."""
    store = make_store(data_dir)
    post_requester_job(store)
    run_auction(store)
    add_loss(store, REQ_JOB, 0, 40)
    settle(store)
    lost_worker_job(store)
    return store


def won_worker_job(store: Store, job_id: int) -> None:
    """This node bid as a worker and won; it is training."""
    store.upsert_job(job_id, "worker", "seen", manifest_hash="22" * 32)
    store.upsert_job(job_id, "worker", "committed", ask=to_base_units(0.6))
    store.upsert_job(job_id, "worker", "revealed")
    store.upsert_job(job_id, "worker", "won", price=to_base_units(1.1))
    store.upsert_job(job_id, "worker", "training")
