"""The validator role: when drawn, evaluate the trained model on the held-out test set and
commit, then reveal, the metric.

Phases in the store (role "validator")::

    drawn -> evaluated (metric and salt stored before the commitment is sent) -> committed
          -> revealed -> done (fee withdrawn)
    drawn/evaluated -> missed (the window closed first)

The test-set key arrives on chain (``TestKeysReleased``: one blob per drawn validator, in draw
order; ours is wrapped for this node); the trained
model's key from the worker's mailbox. Both inputs go through ``safe_io`` before evaluation, on
this node's chosen backend (a compiled systolic Program on ``golden``/``rtl``/``fpga``, or
torch on ``cpu``/``cuda``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from morphware.runtime.node.chain import ChainEvent, ChainJob, Status
from morphware.runtime.node.jobmeta import JobMetadata
from morphware.runtime.node.keys import unwrap_bundle
from morphware.runtime.node.peers import fetch_mail
from morphware.runtime.node.role import Role, record_result
from morphware.runtime.node.store import JobRow
from morphware.runtime.node.tasks import NotReady

log = logging.getLogger("morphware.node.validator")


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
            if me in drawn and self.store.job(ev.job_id, self.name) is None:
                self.set_phase(ev.job_id, "drawn", worker=self._worker(ev.job_id),
                               slot=drawn.index(me))
        elif ev.name == "TestKeysReleased":
            row = self.store.job(ev.job_id, self.name)
            blobs = list(ev.args.get("wrapped_keys", []))
            if row is not None and "slot" in row.facts and row.facts["slot"] < len(blobs):
                self.store.upsert_job(ev.job_id, self.name,
                                      test_key=bytes(blobs[row.facts["slot"]]).hex())

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
        elif job.phase == "revealed" and cj.status == Status.CLOSED:
            self._finish(job, cj)

    def _drawn(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status not in (Status.COMMIT,):
            self.set_phase(job.job_id, "missed", reason=f"job is {cj.status.value}")
            return
        if "test_key" not in job.facts:
            return
        self.node.tasks.ensure(job.job_id, "evaluate", lambda: self._evaluate(job.job_id))
        done, value, err = self.task_result(job.job_id, "evaluate")
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
        value = evaluate(Path(model), Path(test), metric, backend=cfg.eval_backend)
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
