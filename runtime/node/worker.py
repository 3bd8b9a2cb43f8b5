"""The worker role: see posted jobs, price and seal bids, prefetch, train, deliver, get paid.

Phases in the store (role "worker")::

    seen -> committed (salt stored *before* the commitment is sent) -> revealed
         -> lost -> done                                   (stake back, withdrawn)
         -> won -> queued -> training -> submitted -> done (paid | rejected | timed out)
    seen -> skipped (cannot run it / not worth it / cannot finish it in time: reason recorded)
    won  -> failed (the artifacts were refused: unsafe input, named precisely)

Capacity: the worker trains at most ``train_slots`` jobs at once (one per device), the queued
ones by work deadline, earliest first. It bids only when a job fits its window after the work it
already holds (won, queued, training, and every auction it may still win), and its ask grows
with that wait (``pricing.quote``). Its time estimates are corrected by its measured speed (meta
``train_speed``: actual over profile training seconds, averaged); its prices are not.

When its slots are full, which jobs get its bids matters: every worker sees a burst of jobs in
the same order, and if each filled its capacity with the first ones, the same few jobs would get
every bid and the rest none. So each tick it decides on the jobs it has not bid on yet in one
round, least-bid-on first (``n_bids`` on chain), then in an order of its own (a hash of its
address and the job): the workers' capacities cover different jobs. A job that does not fit
*because of open bids* stays ``seen`` and is decided again while its bidding lasts: an open bid
frees its slot as soon as a lower bid is revealed against it (``beaten``), or when its auction
is lost.

Nothing a requester sends is executed: the model is ONNX checked by ``safe_io`` (standard
domains only), the data is .npz loaded without pickle, the recipe is TOML data. A refused
artifact fails that job only; the loop carries on with every other job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from morphware.runtime.node.chain import ChainEvent, ChainJob, Status
from morphware.runtime.node.jobmeta import ARTIFACTS_FOR_WINNER, JobMetadata, MetadataError
from morphware.runtime.node.keys import unwrap_bundle, wrap_bundle
from morphware.runtime.node.pricing import (
    WorkLoad,
    fits_memory,
    from_base_units,
    quote,
    to_base_units,
    updated_speed,
)
from morphware.runtime.node.role import Role
from morphware.runtime.node.store import JobRow
from morphware.runtime.node.tasks import Stopped

log = logging.getLogger("morphware.node.worker")

PROGRESS_FLUSH_S = 0.25
CHECKPOINT_NAME = "checkpoint.pt"  # in work/<job>/: survives a crash; a restart resumes from it
BID_SETTLE_S = 2.0
"""How long a job is seen before this worker decides on it (unless its bidding is about to close):
a burst of jobs posted together arrives over a few blocks, and choosing among all of it (see
``_bid_round``) covers more jobs than filling the slots with the first ones posted."""
HOLDING = ("committed", "revealed", "won", "queued", "training")
"""Phases in which a job occupies (or may come to occupy) this worker's training slots."""


class UnusableKey(Exception):
    """The data key the requester released does not open the job's data: reject it on chain
    (a neutral end) instead of failing to deliver (which would cost our bid stake)."""


class Worker(Role):
    name = "worker"

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        self._progress_lock = threading.Lock()
        self._bid_lock = threading.Lock()  # one capacity decision at a time

    def setup(self) -> None:
        if not self.market.is_registered(self.node.key.address, "worker"):
            self.market.register("worker", self.node.config.worker_stake,
                                 self.node.key.public_key)
            self.node.emit("worker.registered", stake=self.node.config.worker_stake)
        # Load the training engine now: pricing the first job needs its op list, and paying
        # that import (seconds on a busy machine) inside a 10-s bid window loses the auction.
        from morphware.runtime.node.engine import training_ops

        training_ops(self.node.config.train_backend)

    def on_event(self, ev: ChainEvent) -> None:
        me = self.node.key.address.lower()
        if ev.name == "JobPosted":
            if str(ev.args.get("requester", "")).lower() == me:
                return
            if int(ev.args.get("bid_deadline", 0) or 0) and \
                    int(ev.args["bid_deadline"]) <= self.market.now():
                return  # bidding closed (an old job read while catching up): nothing to track
            if self.store.job(ev.job_id, self.name) is None:
                self.set_phase(ev.job_id, "seen", artifacts=str(ev.args.get("artifacts", "")),
                               manifest_hash=bytes(ev.args.get("manifest_hash", b"")).hex(),
                               max_price=int(ev.args.get("max_price", 0)),
                               work_window=int((ev.args.get("windows") or [0, 0, 0])[2]))
        elif ev.name == "KeyReleased" and str(ev.args.get("worker", "")).lower() == me:
            self.store.upsert_job(ev.job_id, self.name,
                                  wrapped_key=bytes(ev.args.get("wrapped_key", b"")).hex(),
                                  work_deadline=int(ev.args.get("work_deadline", 0)))

    # -- capacity -----------------------------------------------------------------------------

    def tick(self) -> None:
        self._schedule()
        self._bid_round()
        super().tick()
        self._publish_load()

    def _remaining(self, job: JobRow, now: float) -> float:
        """Seconds of training ``job`` still needs (its estimate, less what already ran)."""
        est = float(job.facts.get("estimate_s", 0.0))
        if job.phase == "training" and "started_at" in job.facts:
            return max(est - (now - float(job.facts["started_at"])), 0.1 * est)
        return est

    def _held(self) -> list[JobRow]:
        """Jobs that hold (or may come to hold) a training slot: won, or bid on and not yet
        known lost."""
        return [j for j in self.store.jobs(self.name, active_only=True)
                if (j.phase in HOLDING or (j.phase == "seen" and self.store.bid(j.job_id)))
                and not j.facts.get("beaten")]

    def backlog_s(self, held: list[JobRow] | None = None) -> float:
        """Wall-clock training seconds ahead of a new job, per slot, in the worst case: every
        job ``held`` (default: all, every open bid counted as won) finished first."""
        now = time.time()
        jobs = self._held() if held is None else held
        return sum(self._remaining(j, now) for j in jobs) / self.node.config.train_slots

    def speed(self) -> float:
        return float(self.store.get_meta("train_speed", "1.0") or 1.0)

    def _schedule(self) -> None:
        """Start queued trainings, earliest work deadline first, while a slot is free."""
        running = set(self.node.tasks.running("train"))
        free = self.node.config.train_slots - len(running)
        if free <= 0:
            return
        queued = sorted((j for j in self.store.jobs(self.name, active_only=True)
                         if j.phase == "queued"),
                        key=lambda j: (int(j.facts.get("work_deadline", 0)), j.job_id))
        for job in queued[:free]:
            self.set_phase(job.job_id, "training", started_at=round(time.time(), 3),
                           expected_finish=round(time.time() + float(
                               job.facts.get("estimate_s", 0.0)), 1))
            jid = job.job_id
            self.node.tasks.ensure(jid, "train", lambda jid=jid: self._train(jid))

    def _publish_load(self) -> None:
        """What this worker holds, for `morphware load` and the dashboard (meta ``load:worker``)."""
        now = time.time()
        jobs = [j for j in self.store.jobs(self.name, active_only=True) if j.phase in HOLDING]
        rows, ahead = [], 0.0
        for j in sorted(jobs, key=lambda j: (HOLDING.index(j.phase) * -1,
                                             int(j.facts.get("work_deadline", 0)), j.job_id)):
            rem = self._remaining(j, now)
            if j.phase in ("won", "queued", "training"):
                ahead += rem / self.node.config.train_slots
            rows.append({"job": j.job_id, "phase": j.phase, "remaining_s": round(rem, 1),
                         "expected_finish": round(now + ahead, 1)
                         if j.phase in ("queued", "training") else None,
                         "work_deadline": j.facts.get("work_deadline")})
        self.store.set_meta("load:worker", json.dumps({
            "updated": round(now, 1), "slots": self.node.config.train_slots,
            "training": [r["job"] for r in rows if r["phase"] == "training"],
            "backlog_s": round(self.backlog_s(), 1), "speed": round(self.speed(), 3),
            "jobs": rows}))

    # -- per job ------------------------------------------------------------------------------

    def step(self, job: JobRow) -> None:
        cj = self.node.chain_job(job.job_id)
        handler = {"seen": self._seen, "committed": self._committed, "revealed": self._revealed,
                   "won": self._won, "queued": self._queued, "training": self._training,
                   "submitted": self._submitted,
                   "lost": self._finish, "key_rejected": self._finish}.get(job.phase)
        if handler is not None:
            handler(job, cj)

    def _meta(self, job: JobRow) -> JobMetadata:
        return JobMetadata.decode(job.facts["artifacts"], bytes.fromhex(job.facts["manifest_hash"]))

    def _bid_round(self) -> None:
        """Decide on every job seen and not yet bid on, least bid-on first, then in this
        worker's own order (see the module docstring); the bids are committed by the jobs'
        steps. One round at a time: each estimate is saved before the next job is priced."""
        now = time.time()
        undecided = [j for j in self.store.jobs(self.name, active_only=True)
                     if j.phase == "seen" and self.store.bid(j.job_id) is None]
        if not undecided:
            return
        chain = {j.job_id: self.node.chain_job(j.job_id) for j in undecided}
        closing = self.market.now() + self.node.config.reaction + BID_SETTLE_S
        if all(now - j.created < BID_SETTLE_S and chain[j.job_id].deadline > closing
               for j in undecided):
            return  # let the rest of a burst arrive first
        me = self.node.key.address.lower()
        order = sorted(undecided, key=lambda j: (chain[j.job_id].n_bids, hashlib.sha256(
            f"{me}:{j.job_id}".encode()).digest()))
        with self._bid_lock:
            for job in order:
                if self.node.stop_event.is_set():
                    return
                self._decide(job, chain[job.job_id])

    def _decide(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status != Status.BIDDING or self.market.now() >= cj.deadline:
            self.set_phase(job.job_id, "skipped", reason=job.facts.get(
                "waiting", "bidding closed before we saw it"))
            return
        short = self._too_short(cj)
        if short is not None:
            self.set_phase(job.job_id, "skipped", reason=short)
            return
        try:
            ask, why, retry = self._price(self._meta(job), cj)
        except (MetadataError, ValueError) as e:
            self.set_phase(job.job_id, "skipped", reason=str(e))
            return
        if ask is not None:
            self.store.save_bid(job.job_id, ask, os.urandom(32))
        elif retry:  # only our open bids are in the way: decide again while bidding lasts
            if job.facts.get("waiting") != why:
                self.store.upsert_job(job.job_id, self.name, waiting=why)
        else:
            self.set_phase(job.job_id, "skipped", reason=why)

    def _seen(self, job: JobRow, cj: ChainJob) -> None:
        bid = self.store.bid(job.job_id)
        if bid is None:
            return  # not decided yet: ``_bid_round`` decides
        if cj.status != Status.BIDDING or self.market.now() >= cj.deadline:
            self.set_phase(job.job_id, "skipped", reason="bidding closed before our bid was sent")
            return
        if self.node.act("commit_bid", job.job_id,
                         lambda: self.market.commit_bid(job.job_id, bid.price, bid.salt)):
            self.store.mark_bid(job.job_id, committed=True)
            row = self.store.job(job.job_id, self.name)
            self.set_phase(job.job_id, "committed", ask=bid.price,
                           wait_s=row.facts.get("wait_s") if row else None,
                           queue_s=row.facts.get("queue_s") if row else None)
            meta = self._meta(job)
            self.node.tasks.ensure(job.job_id, "prefetch", lambda: self._prefetch(meta))

    def _price(self, meta: JobMetadata, cj: ChainJob) -> tuple[int | None, Any, bool]:
        """(ask in base units, estimated seconds, _) for a job worth a bid; (None, why not,
        retry) when we should not bid: the job cannot run here, is not worth it, or cannot
        finish in its work window after the work this worker holds (``retry``: it would fit
        but for open bids, which may still be lost)."""
        from morphware.runtime.node.engine import (
            array_training_cycles,
            manifest_ops,
            training_ops,
            workload_figures,
        )

        ops = manifest_ops(meta.manifest)
        unsupported = sorted(ops - training_ops(self.node.config.train_backend))
        if unsupported:
            return None, f"ops {unsupported} not supported by the training engine", False
        ok, why = fits_memory(meta.manifest)
        if not ok:
            return None, why, False
        macs, samples, epochs = workload_figures(meta.manifest)
        profile = self.node.config.profile
        assert profile is not None
        cycles = (array_training_cycles(meta.manifest, self.node.config.train_backend)
                  if profile.clock_hz > 0 else 0)
        held = self._held()
        work, speed, queue = WorkLoad(macs, samples, epochs, cycles), self.speed(), \
            self.backlog_s(held)
        q = quote(work, profile, queue_s=queue, speed=speed)
        work_window = int(cj.extra.get("work_window", 0)) or 10**9
        max_price = from_base_units(cj.max_price, self.market.decimals)
        start_in = cj.deadline - self.market.now()
        ok, why = q.fits(max_price, work_window, start_in_s=start_in)
        if not ok:
            won = self.backlog_s([j for j in held if j.phase in ("won", "queued", "training")])
            retry = queue > won and quote(work, profile, queue_s=won, speed=speed).fits(
                max_price, work_window, start_in_s=start_in)[0]
            return None, why, retry
        # saved before the next job is priced (under the bid lock): it is part of that queue
        self.store.upsert_job(cj.job_id, self.name, estimate_s=round(q.seconds, 2),
                              cost_s=round(q.seconds / speed, 2), wait_s=round(q.wait_s, 2),
                              queue_s=round(q.queue_s, 2))
        return to_base_units(q.ask, self.market.decimals), round(q.seconds, 2), False

    def _too_short(self, cj: ChainJob) -> str | None:
        """Why a window we must act in is too short for this node, or None."""
        need = self.node.config.reaction
        for name, i in (("reveal", 1), ("work", 3)):
            if len(cj.windows) > i and cj.windows[i] < need:
                return (f"the {name} window ({cj.windows[i]} s) is shorter than this node needs "
                        f"to act ({need:g} s)")
        return None

    def _prefetch(self, meta: JobMetadata) -> None:
        """Download the ciphertexts during the auction (no key needed), so a win starts work."""
        for name in ARTIFACTS_FOR_WINNER:
            ref = meta.artifacts[name]
            self.node.fetch(ref.magnet, ref.content_hash)

    def _committed(self, job: JobRow, cj: ChainJob) -> None:
        bid = self.store.bid(job.job_id)
        assert bid is not None
        if cj.status == Status.REVEALING:
            if self.node.act("reveal_bid", job.job_id,
                             lambda: self.market.reveal_bid(job.job_id, bid.price, bid.salt)):
                self.store.mark_bid(job.job_id, revealed=True)
                self.set_phase(job.job_id, "revealed")
        elif cj.status not in (Status.BIDDING,):
            # Too late to reveal (we were down): the stake is forfeit, nothing else to do.
            self.set_phase(job.job_id, "lost", reason="bid not revealed in time")

    def _check_beaten(self, job: JobRow, cj: ChainJob) -> None:
        """A lower bid revealed against ours means this auction is lost: its slot is free
        for another job now, not only once the auction is finalized."""
        leader, price = cj.extra.get("leader"), int(cj.extra.get("leading_price", 0))
        bid = self.store.bid(job.job_id)
        if (leader and bid is not None and not job.facts.get("beaten")
                and leader.lower() != self.node.key.address.lower() and price < bid.price):
            self.store.upsert_job(job.job_id, self.name, beaten=True)

    def _revealed(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status == Status.REVEALING:
            self._check_beaten(job, cj)
        if cj.status in (Status.BIDDING, Status.REVEALING, Status.FINALIZABLE):
            return
        if cj.winner and cj.winner.lower() == self.node.key.address.lower():
            self.set_phase(job.job_id, "won", price=cj.price)
        else:
            self.set_phase(job.job_id, "lost", winner=cj.winner, price=cj.price)

    def _won(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status == Status.CLOSED:
            self._finish(job, cj)
            return
        if "wrapped_key" not in job.facts:
            return  # the requester has not released the key yet
        self.set_phase(job.job_id, "queued")  # ``_schedule`` starts it when a slot is free

    def _queued(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status == Status.CLOSED:  # e.g. timed out while waiting (should not happen)
            self._finish(job, cj)

    def _training(self, job: JobRow, cj: ChainJob) -> None:
        from morphware.runtime.node.engine import transient_errors, unsafe_input_error

        if cj.status == Status.CLOSED:
            self._finish(job, cj)
            return
        if cj.status in (Status.DRAWING, Status.COMMIT, Status.REVEAL):
            # Our result is on chain already (we crashed after sending it): carry on from there.
            self.set_phase(job.job_id, "submitted")
            return
        self.node.tasks.ensure(job.job_id, "train", lambda: self._train(job.job_id))
        done, result, err = self.task_result(job.job_id, "train")
        if not done:
            return
        if err is not None:
            if isinstance(err, Stopped):
                return
            if isinstance(err, transient_errors()):  # a seeder away for now: try again next tick
                self.node.tasks.reset(job.job_id, "train")
                return
            if isinstance(err, UnusableKey):
                if self.node.act("reject_key", job.job_id,
                                 lambda: self.market.reject_key(job.job_id)):
                    self.node.emit("worker.key_rejected", job=job.job_id, reason=str(err))
                    self.set_phase(job.job_id, "key_rejected", reason=str(err))
                return
            unsafe = isinstance(err, unsafe_input_error())
            kind = "refused unsafe input" if unsafe else "error"
            if unsafe:  # the requester's artifacts cannot be used: end the job neutrally
                self.node.act("reject_key", job.job_id, lambda: self.market.reject_key(job.job_id))
            self.set_phase(job.job_id, "failed", error=f"{kind}: {err}")
            return
        art = self.store.artifact(job.job_id, "result")
        assert art is not None
        if self.node.act("submit_result", job.job_id, lambda: self.market.submit_result(
                job.job_id, art.magnet, bytes.fromhex(art.content_hash))):
            self.set_phase(job.job_id, "submitted", train_seconds=result)

    def _train(self, job_id: int) -> float:
        """Fetch + decrypt the inputs, check them, train, publish the result (all idempotent:
        a restart redoes the work but never sends a second result)."""
        from morphware.runtime.node.engine import train

        job = self.store.job(job_id, self.name)
        assert job is not None
        done = self.store.artifact(job_id, "result")
        if done is not None and done.magnet and Path(done.path).is_file():
            return float(job.facts.get("train_seconds", 0.0))  # published before a restart
        meta = self._meta(job)
        paths = self._open_inputs(job_id, job.facts["wrapped_key"], meta)
        work = self.node.data_dir / "work" / str(job_id)
        self.node.check_stopped()
        buf: list[dict[str, Any]] = []
        flushed = [time.monotonic(), 0]

        def flush() -> None:
            if buf:
                self.store.add_progress_many(job_id, buf)
                buf.clear()
            flushed[0] = time.monotonic()

        def on_step(epoch: int, batch: int, loss: float) -> None:
            # Published in small batches: one SQLite commit per step would cost more than
            # the step itself on a small model.
            self.node.check_stopped()
            with self._progress_lock:
                buf.append({"step": flushed[1], "epoch": epoch, "loss": loss})
                flushed[1] += 1
                if time.monotonic() - flushed[0] >= PROGRESS_FLUSH_S:
                    flush()

        def flush_locked() -> None:
            # every step up to a checkpoint is published before the checkpoint exists, so a
            # crash after it loses no step of the live curve (training resumes past them)
            with self._progress_lock:
                flush()

        def on_resume(epoch: int, epochs: int, steps: int, why: str) -> None:
            # The live loss curve carries on from the checkpoint's step, not from 0.
            with self._progress_lock:
                flushed[1] = steps
            if why:
                self.node.emit("worker.checkpoint_discarded", job=job_id, reason=why,
                               note="training starts over from epoch 0")
            else:
                self.store.upsert_job(job_id, self.name, resumed_epoch=epoch,
                                      resumed_steps=steps)
                self.node.emit("worker.resumed", job=job_id, epoch=f"{epoch}/{epochs}",
                               steps_done=steps, note="training resumes from its checkpoint")

        trained = train(paths["model"], paths["train"], paths["recipe"], work / "trained.onnx",
                        on_step, backend=self.node.config.train_backend,
                        checkpoint=work / CHECKPOINT_NAME, on_resume=on_resume,
                        on_epoch=flush_locked)
        with self._progress_lock:
            flush()
        pub = self.node.publish(trained.model)
        self.store.upsert_job(job_id, self.name, train_seconds=round(trained.seconds, 3))
        est = float(job.facts.get("cost_s", 0.0))  # the uncorrected (profile) estimate
        self.store.set_meta("train_speed", str(updated_speed(self.speed(), est, trained.seconds)))
        self.store.put_artifact(job_id, "result", magnet=pub.magnet,
                                content_hash=pub.content_hash.hex(), key=pub.key.hex(),
                                path=str(trained.model))
        requester = self.market.job(job_id).requester
        self.store.put_mail(job_id, requester, "result",
                            wrap_bundle({"result": pub.key}, meta.requester_pubkey))
        self.node.emit("worker.trained", job=job_id, backend=trained.backend,
                       seconds=round(trained.seconds, 2), final_loss=trained.loss_curve[-1],
                       metrics=trained.metrics)
        return round(trained.seconds, 3)

    def _open_inputs(self, job_id: int, wrapped_hex: str, meta: JobMetadata) -> dict[str, Path]:
        """Unwrap the data key and fetch + decrypt every input; a key that does not open them
        raises UnusableKey (a seeder that is away raises a transient error instead)."""
        from morphware.runtime.delivery.crypto import DecryptionError
        from morphware.runtime.node.keys import KeyBundleError

        work = self.node.data_dir / "work" / str(job_id)
        try:
            keys = unwrap_bundle(bytes.fromhex(wrapped_hex), self.node.key.private_key)
            paths: dict[str, Path] = {}
            for name in ARTIFACTS_FOR_WINNER:
                ref = meta.artifacts[name]
                suffix = {"model": ".onnx", "train": ".npz", "recipe": ".toml"}[name]
                if name not in keys:
                    raise UnusableKey(f"the released key bundle has no key for {name!r}")
                paths[name] = self.node.fetch(ref.magnet, ref.content_hash, keys[name],
                                              dest=work / f"{name}{suffix}")
        except (KeyBundleError, DecryptionError) as e:
            raise UnusableKey(f"the released data key does not open the job's data: {e}") from e
        return paths

    def _submitted(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status == Status.DRAWING and self.market.head() > cj.deadline:
            self.node.act("draw", job.job_id, lambda: self.market.draw(job.job_id))
        art = self.store.artifact(job.job_id, "result")
        if art is not None:
            for v in cj.validators:
                if "result" not in self.store.mail(job.job_id, v):
                    self.store.put_mail(job.job_id, v, "result", wrap_bundle(
                        {"result": bytes.fromhex(art.key)}, self.market.pubkey_of(v)))
        if cj.status == Status.CLOSED:
            self._finish(job, cj)

    def _finish(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status not in (Status.CLOSED, Status.AWAITING_KEY, Status.WORKING, Status.DRAWING,
                             Status.COMMIT, Status.REVEAL):
            return
        self.collect(job.job_id)
        outcome = cj.outcome if job.phase != "lost" else "lost"
        won = bool(cj.winner) and cj.winner.lower() == self.node.key.address.lower()
        # earned: the clearing price, if our model was accepted (returned stakes are not income)
        self.set_phase(job.job_id, "done", outcome=outcome,
                       earned=cj.price if won and cj.passed else 0)
