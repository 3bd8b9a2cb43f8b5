"""The validator role: when drawn, evaluate the trained model on the held-out test set and
commit, then reveal, the metric.

Phases in the store (role "validator")::

    drawn -> evaluated (metric and salt stored before the commitment is sent) -> committed
          -> revealed -> done (fee withdrawn)
    drawn/evaluated -> missed (the window closed first)
    drawn -> declined (its evaluations queued ahead cannot finish before the commit deadline:
             said at once, and the protocol decides what follows)

Evaluations run at most ``eval_slots`` at a time, earliest commit deadline first; the time one
takes is measured (meta ``eval_seconds``, averaged) and decides whether a queued one can still
make its deadline.

The test-set key arrives on chain (``TestKeysReleased``: one blob per drawn validator, in draw
order; ours is wrapped for this node); the trained
model's key from the worker's mailbox. Both inputs go through ``safe_io`` before evaluation, on
this node's chosen backend (a compiled systolic Program on ``golden``/``rtl``/``fpga``, or
torch on ``cpu``/``cuda``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from morphware.runtime.node.chain import ChainEvent, ChainJob, Status
from morphware.runtime.node.jobmeta import JobMetadata
from morphware.runtime.node.keys import unwrap_bundle
from morphware.runtime.node.peers import fetch_mail
from morphware.runtime.node.role import Role, record_result
from morphware.runtime.node.store import JobRow
from morphware.runtime.node.tasks import NotReady

log = logging.getLogger("morphware.node.validator")

EVAL_GUESS_S = 10.0  # before the first measured evaluation
EVAL_EMA = 0.5


class Validator(Role):
    name = "validator"

    def setup(self) -> None:
        if not self.market.is_registered(self.node.key.address, "validator"):
            self.market.register("validator", self.node.config.validator_stake,
                                 self.node.key.public_key)
            self.node.emit("validator.registered", stake=self.node.config.validator_stake)

    def on_event(self, ev: ChainEvent) -> None:
        me = self.node.key.address.lower()
        if ev.name == "JobPosted":
            self.store.set_meta(f"job_artifacts:{ev.job_id}", str(ev.args.get("artifacts", "")))
            self.store.set_meta(f"job_manifest:{ev.job_id}",
                                bytes(ev.args.get("manifest_hash", b"")).hex())
            self.store.set_meta(f"job_metric:{ev.job_id}", str(ev.args.get("metric", "")))
        elif ev.name == "ResultSubmitted":
            record_result(self.store, ev)
        elif ev.name == "ValidatorsDrawn":
            drawn = [str(v).lower() for v in ev.args.get("validators", [])]
            if me not in drawn:  # not ours: forget what we kept of the job in case we were
                self._forget(ev.job_id)
            elif self.store.job(ev.job_id, self.name) is None:
                self.set_phase(ev.job_id, "drawn", worker=str(ev.args.get("worker", "")) or
                               self._worker(ev.job_id), slot=drawn.index(me),
                               commit_deadline=int(ev.args.get("commit_deadline", 0)))
        elif ev.name == "JobClosed" and self.store.job(ev.job_id, self.name) is None:
            self._forget(ev.job_id)
        elif ev.name == "TestKeysReleased":
            row = self.store.job(ev.job_id, self.name)
            blobs = list(ev.args.get("wrapped_keys", []))
            if row is not None and "slot" in row.facts and row.facts["slot"] < len(blobs):
                self.store.upsert_job(ev.job_id, self.name,
                                      test_key=bytes(blobs[row.facts["slot"]]).hex())

    # -- capacity -----------------------------------------------------------------------------

    def tick(self) -> None:
        self._schedule()
        super().tick()
        self._publish_load()

    def eval_seconds(self) -> float:
        return float(self.store.get_meta("eval_seconds", str(EVAL_GUESS_S)) or EVAL_GUESS_S)

    def _waiting(self) -> list[JobRow]:
        """Drawn jobs whose test key is here and whose evaluation has not started, by deadline."""
        running = set(self.node.tasks.running("evaluate"))
        rows = [j for j in self.store.jobs(self.name, active_only=True)
                if j.phase == "drawn" and "test_key" in j.facts and j.job_id not in running
                and self.node.tasks.get(j.job_id, "evaluate") is None]
        return sorted(rows, key=lambda j: (int(j.facts.get("commit_deadline", 0)), j.job_id))

    def _schedule(self) -> None:
        """Start evaluations, earliest commit deadline first, while a slot is free; decline a
        draw at once when the evaluations ahead of it leave no time before its deadline."""
        slots = self.node.config.eval_slots
        free = slots - len(self.node.tasks.running("evaluate"))
        waiting = self._waiting()
        if not waiting:
            return
        now, per = self.market.now(), self.eval_seconds()
        ahead = len(self.node.tasks.running("evaluate")) * per / slots
        for job in waiting:
            deadline = int(job.facts.get("commit_deadline", 0))
            finish = now + ahead + per
            if deadline and finish > deadline:
                self.set_phase(job.job_id, "declined", reason=(
                    f"evaluations queued ahead: expected done at {finish:.0f}, commit "
                    f"deadline {deadline}"))
                continue
            if free > 0:
                jid = job.job_id
                self.node.tasks.ensure(jid, "evaluate", lambda jid=jid: self._evaluate(jid))
                self.store.upsert_job(jid, self.name, expected_finish=round(time.time() + per, 1))
                free -= 1
            ahead += per / slots

    def _publish_load(self) -> None:
        """Drawn jobs and their expected finish, for `morphware load` and the dashboard."""
        running = self.node.tasks.running("evaluate")
        jobs = [{"job": j.job_id, "phase": j.phase, "evaluating": j.job_id in running,
                 "commit_deadline": j.facts.get("commit_deadline"),
                 "expected_finish": j.facts.get("expected_finish")}
                for j in self.store.jobs(self.name, active_only=True)]
        self.store.set_meta("load:validator", json.dumps({
            "updated": round(time.time(), 1), "slots": self.node.config.eval_slots,
            "evaluating": running, "eval_seconds": round(self.eval_seconds(), 2),
            "jobs": jobs}))

    def _forget(self, job_id: int) -> None:
        """Drop what was kept of a job this validator will not evaluate."""
        self.store.delete_meta(*(f"{k}:{job_id}" for k in (
            "job_artifacts", "job_manifest", "job_metric", "result_magnet", "result_hash")))

    def _worker(self, job_id: int) -> str:
        return self.node.chain_job(job_id).winner or ""

    # -- per job ------------------------------------------------------------------------------

    def step(self, job: JobRow) -> None:
        cj = self.node.chain_job(job.job_id)
        if job.phase == "drawn":
            self._drawn(job, cj)
        elif job.phase == "evaluated":
            self._commit(job, cj)
        elif job.phase == "committed":
            self._reveal(job, cj)
        elif job.phase in ("revealed", "declined") and cj.status == Status.CLOSED:
            self._finish(job, cj)

    def _drawn(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status not in (Status.COMMIT,):
            self.set_phase(job.job_id, "missed", reason=f"job is {cj.status.value}")
            return
        if "test_key" not in job.facts:
            return
        done, value, err = self.task_result(job.job_id, "evaluate")  # started by _schedule
        if not done:
            return
        if err is not None:
            self.node.tasks.reset(job.job_id, "evaluate")  # e.g. the worker's mailbox not ready
            return
        salt = os.urandom(32)
        self.set_phase(job.job_id, "evaluated", metric=value, metric_fixed=self.market.to_fixed(value),
                       salt=salt.hex(), backend=self.node.config.eval_backend)

    def _evaluate(self, job_id: int) -> float:
        from morphware.runtime.node.engine import evaluate

        job = self.store.job(job_id, self.name)
        assert job is not None
        meta = JobMetadata.decode(self.store.get_meta(f"job_artifacts:{job_id}") or "",
                                  bytes.fromhex(self.store.get_meta(f"job_manifest:{job_id}")
                                                or ""))
        worker = job.facts.get("worker") or self._worker(job_id)
        peer = self.node.peer_info(worker)
        if peer is None:
            raise NotReady(f"no peer info for worker {worker}")
        mail = fetch_mail(peer.http_url, job_id, self.node.key.address)
        if "result" not in mail:
            raise NotReady(f"worker {worker} has not left the model key yet")
        model_key = unwrap_bundle(mail["result"], self.node.key.private_key)["result"]
        test_key = unwrap_bundle(bytes.fromhex(job.facts["test_key"]),
                                 self.node.key.private_key)["test"]
        work = self.node.data_dir / "validate" / str(job_id)
        cfg = self.node.config
        ref = meta.artifacts["test"]
        test = self.node.fetch(ref.magnet, ref.content_hash, test_key, dest=work / "test.npz")
        magnet = self.store.get_meta(f"result_magnet:{job_id}") or ""
        rhash = bytes.fromhex(self.store.get_meta(f"result_hash:{job_id}") or "")
        model = self.node.fetch(magnet, rhash, model_key, dest=work / "model.onnx")
        metric = self.store.get_meta(f"job_metric:{job_id}") or "accuracy"
        t0 = time.monotonic()
        value = evaluate(Path(model), Path(test), metric, backend=cfg.eval_backend)
        took = time.monotonic() - t0 + 1.0  # and the two fetches' bookkeeping
        self.store.set_meta("eval_seconds", str((1 - EVAL_EMA) * self.eval_seconds()
                                                + EVAL_EMA * took))
        self.node.emit("validator.metric", job=job_id, metric=metric, value=value,
                       backend=cfg.eval_backend)
        return value

    def _commit(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status != Status.COMMIT:
            self.set_phase(job.job_id, "missed", reason=f"commit window over ({cj.status.value})")
            return
        fixed, salt = int(job.facts["metric_fixed"]), bytes.fromhex(job.facts["salt"])
        if self.node.act("commit_metric", job.job_id,
                         lambda: self.market.commit_metric(job.job_id, fixed, salt)):
            self.set_phase(job.job_id, "committed")

    def _reveal(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status == Status.REVEAL:
            fixed, salt = int(job.facts["metric_fixed"]), bytes.fromhex(job.facts["salt"])
            if self.node.act("reveal_metric", job.job_id,
                             lambda: self.market.reveal_metric(job.job_id, fixed, salt)):
                self.set_phase(job.job_id, "revealed")
        elif cj.status == Status.CLOSED:
            self._finish(job, cj)

    def _finish(self, job: JobRow, cj: ChainJob) -> None:
        self.collect(job.job_id)
        # earned: the validator fee, paid for a revealed metric
        self.set_phase(job.job_id, "done", outcome=cj.outcome,
                       earned=cj.validator_fee if job.phase == "revealed" else 0)
