"""The worker role: see posted jobs, price and seal bids, prefetch, train, deliver, get paid.

Phases in the store (role "worker")::

    seen -> committed (salt stored *before* the commitment is sent) -> revealed
         -> lost -> done                                   (stake back, withdrawn)
         -> won -> training -> submitted -> done (paid | rejected | timed out)
    seen -> skipped (cannot run it / not worth it: the reason is recorded)
    won  -> failed (the artifacts were refused: unsafe input, named precisely)

Nothing a requester sends is executed: the model is ONNX checked by ``safe_io`` (standard
domains only), the data is .npz loaded without pickle, the recipe is TOML data. A refused
artifact fails that job only; the loop carries on with every other job.
"""

from __future__ import annotations

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
)
from morphware.runtime.node.role import Role
from morphware.runtime.node.store import JobRow
from morphware.runtime.node.tasks import Stopped

log = logging.getLogger("morphware.node.worker")

PROGRESS_FLUSH_S = 0.25
CHECKPOINT_NAME = "checkpoint.pt"  # in work/<job>/: survives a crash; a restart resumes from it


class Worker(Role):
    name = "worker"

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        self._progress_lock = threading.Lock()

    def setup(self) -> None:
        if not self.market.is_registered(self.node.key.address, "worker"):
            self.market.register("worker", self.node.config.worker_stake,
                                 self.node.key.public_key)
            self.node.emit("worker.registered", stake=self.node.config.worker_stake)

    def on_event(self, ev: ChainEvent) -> None:
        me = self.node.key.address.lower()
        if ev.name == "JobPosted":
            if str(ev.args.get("requester", "")).lower() == me:
                return
            if self.store.job(ev.job_id, self.name) is None:
                self.set_phase(ev.job_id, "seen", artifacts=str(ev.args.get("artifacts", "")),
                               manifest_hash=bytes(ev.args.get("manifest_hash", b"")).hex(),
                               max_price=int(ev.args.get("max_price", 0)),
                               work_window=int((ev.args.get("windows") or [0, 0, 0])[2]))
        elif ev.name == "KeyReleased" and str(ev.args.get("worker", "")).lower() == me:
            self.store.upsert_job(ev.job_id, self.name,
                                  wrapped_key=bytes(ev.args.get("wrapped_key", b"")).hex())

    # -- per job ------------------------------------------------------------------------------

    def step(self, job: JobRow) -> None:
        cj = self.node.chain_job(job.job_id)
        handler = {"seen": self._seen, "committed": self._committed, "revealed": self._revealed,
                   "won": self._won, "training": self._training, "submitted": self._submitted,
                   "lost": self._finish}.get(job.phase)
        if handler is not None:
            handler(job, cj)

    def _meta(self, job: JobRow) -> JobMetadata:
        return JobMetadata.decode(job.facts["artifacts"], bytes.fromhex(job.facts["manifest_hash"]))

    def _seen(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status != Status.BIDDING or self.market.now() >= cj.deadline:
            self.set_phase(job.job_id, "skipped", reason="bidding closed before we saw it")
            return
        try:
            meta = self._meta(job)
            ask, seconds = self._price(meta, cj)
        except (MetadataError, ValueError) as e:
            self.set_phase(job.job_id, "skipped", reason=str(e))
            return
        if ask is None:
            self.set_phase(job.job_id, "skipped", reason=seconds)
            return
        bid = self.store.save_bid(job.job_id, ask, os.urandom(32))
        if self.node.act("commit_bid", job.job_id,
                         lambda: self.market.commit_bid(job.job_id, bid.price, bid.salt)):
            self.store.mark_bid(job.job_id, committed=True)
            self.set_phase(job.job_id, "committed", ask=bid.price, estimate_s=seconds)
            self.node.tasks.ensure(job.job_id, "prefetch", lambda: self._prefetch(meta))

    def _price(self, meta: JobMetadata, cj: ChainJob) -> tuple[int | None, Any]:
        """(ask in base units, estimated seconds), or (None, why not) when we should not bid."""
        from morphware.runtime.node.engine import (
            array_training_cycles,
            manifest_ops,
            training_ops,
            workload_figures,
        )

        ops = manifest_ops(meta.manifest)
        unsupported = sorted(ops - training_ops(self.node.config.train_backend))
        if unsupported:
            return None, f"ops {unsupported} not supported by the training engine"
        ok, why = fits_memory(meta.manifest)
        if not ok:
            return None, why
        macs, samples, epochs = workload_figures(meta.manifest)
        profile = self.node.config.profile
        assert profile is not None
        cycles = (array_training_cycles(meta.manifest, self.node.config.train_backend)
                  if profile.clock_hz > 0 else 0)
        q = quote(WorkLoad(macs, samples, epochs, cycles), profile)
        work_window = int(cj.extra.get("work_window", 0)) or 10**9
        ok, why = q.fits(from_base_units(cj.max_price, self.market.decimals), work_window)
        if not ok:
            return None, why
        return to_base_units(q.ask, self.market.decimals), round(q.seconds, 2)

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

    def _revealed(self, job: JobRow, cj: ChainJob) -> None:
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
        self.set_phase(job.job_id, "training")
        self.node.tasks.ensure(job.job_id, "train", lambda: self._train(job.job_id))

    def _training(self, job: JobRow, cj: ChainJob) -> None:
        from morphware.runtime.node.engine import transient_errors, unsafe_input_error

        if cj.status == Status.CLOSED:
            self._finish(job, cj)
            return
        if cj.status in (Status.COMMIT, Status.REVEAL):
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
            kind = "refused unsafe input" if isinstance(err, unsafe_input_error()) else "error"
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
        keys = unwrap_bundle(bytes.fromhex(job.facts["wrapped_key"]), self.node.key.private_key)
        work = self.node.data_dir / "work" / str(job_id)
        paths: dict[str, Path] = {}
        for name in ARTIFACTS_FOR_WINNER:
            ref = meta.artifacts[name]
            suffix = {"model": ".onnx", "train": ".npz", "recipe": ".toml"}[name]
            paths[name] = self.node.fetch(ref.magnet, ref.content_hash, keys[name],
                                          dest=work / f"{name}{suffix}")
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
                        checkpoint=work / CHECKPOINT_NAME, on_resume=on_resume)
        with self._progress_lock:
            flush()
        pub = self.node.publish(trained.model)
        self.store.upsert_job(job_id, self.name, train_seconds=round(trained.seconds, 3))
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

    def _submitted(self, job: JobRow, cj: ChainJob) -> None:
        art = self.store.artifact(job.job_id, "result")
        if art is not None:
            for v in cj.validators:
                if "result" not in self.store.mail(job.job_id, v):
                    self.store.put_mail(job.job_id, v, "result", wrap_bundle(
                        {"result": bytes.fromhex(art.key)}, self.market.pubkey_of(v)))
        if cj.status == Status.CLOSED:
            self._finish(job, cj)

    def _finish(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status not in (Status.CLOSED, Status.AWAITING_KEY, Status.WORKING, Status.COMMIT,
                             Status.REVEAL):
            return
        self.collect(job.job_id)
        outcome = cj.outcome if job.phase != "lost" else "lost"
        won = bool(cj.winner) and cj.winner.lower() == self.node.key.address.lower()
        # earned: the clearing price, if our model was accepted (returned stakes are not income)
        self.set_phase(job.job_id, "done", outcome=outcome,
                       earned=cj.price if won and cj.passed else 0)
