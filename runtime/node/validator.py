"""The validator role: when drawn, evaluate the trained model on the held-out test set and
commit, then reveal, a verdict: the metric, or "model unusable" (the worker's model or its key
never arrived or does not decrypt) or "test data unusable" (the same for the requester's test
set). The market settles by the median verdict and slashes only validators that reveal nothing,
so a validator always has something true to reveal, in time.

Phases in the store (role "validator")::

    drawn -> evaluated (metric and salt stored before the commitment is sent) -> committed
          -> revealed -> done (fee withdrawn)
    drawn -> declined (the DECLINED verdict and its salt stored) -> committed -> revealed
          -> done (earned 0: a decline is paid nothing, and it is not slashed)
    drawn/evaluated/declined -> missed (the window closed first)

A draw is declined when this node cannot evaluate it before the commit deadline: at once when
the evaluations queued ahead of it leave no time (it never starts), or as the deadline comes
with its evaluation still running on inputs that did arrive. An input still missing at the
deadline (the test-set key, the model, a fetch that keeps failing) is instead its owner's fault
and said so ("model unusable" / "test data unusable").

Evaluations run at most ``eval_slots`` at a time, earliest commit deadline first; the time one
takes is measured (meta ``eval_seconds``, averaged) and decides whether a queued one can still
make its deadline (before the first measurement nothing is declined early: a guess would turn
away draws this node can serve).

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

from morphware.runtime.node.chain import (
    DATA_UNUSABLE,
    DECLINED,
    MODEL_UNUSABLE,
    ChainEvent,
    ChainJob,
    MarketError,
    Status,
)
from morphware.runtime.node.jobmeta import JobMetadata
from morphware.runtime.node.keys import unwrap_bundle
from morphware.runtime.node.peers import fetch_mail
from morphware.runtime.node.role import Role, record_result
from morphware.runtime.node.store import JobRow
from morphware.runtime.node.tasks import NotReady

log = logging.getLogger("morphware.node.validator")

EVAL_GUESS_S = 10.0  # before the first measured evaluation
EVAL_EMA = 0.5


class Unusable(Exception):
    """An input that will never work: ``fault`` is "model" (the worker's) or "data" (the
    requester's)."""

    def __init__(self, fault: str, why: str) -> None:
        super().__init__(why)
        self.fault = fault


class Missing(NotReady):
    """An input not there yet (mailbox empty, key not released, seeder away): ``fault`` says
    whose it is, for the verdict if it is still missing when the commit window runs out."""

    def __init__(self, fault: str, why: str) -> None:
        super().__init__(why)
        self.fault = fault


VERDICTS = {"model": MODEL_UNUSABLE, "data": DATA_UNUSABLE}


class Validator(Role):
    name = "validator"

    def setup(self) -> None:
        floor, need = self.market.min_window(), self.node.config.reaction
        if floor < need:
            raise MarketError(
                f"this market lets a job give its validators {floor} s to commit a verdict; this "
                f"node needs {need:g} s to act, so a draw could get it slashed through no fault "
                "of its own: not serving as a validator here (lower --poll or use a market with "
                "longer windows)")
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
                               commit_deadline=int(ev.args.get("commit_deadline", 0)),
                               waiting_for="model")  # until fetched, the model is missing
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
        draw at once when the evaluations ahead of it leave no time to finish and commit
        before its deadline. (A draw already tried once, whose input was missing, is retried
        instead: if the input never comes, its owner is blamed at the deadline.)"""
        slots = self.node.config.eval_slots
        free = slots - len(self.node.tasks.running("evaluate"))
        waiting = self._waiting()
        if not waiting:
            return
        now, per = self.market.now(), self.eval_seconds()
        # Decline early only on a measured evaluation time: a guess would turn away draws this
        # node could serve (and a draw it cannot finish is still declined at its deadline).
        measured = self.store.get_meta("eval_seconds") is not None
        ahead = len(self.node.tasks.running("evaluate")) * per / slots
        for job in waiting:
            deadline = int(job.facts.get("commit_deadline", 0))
            finish = now + ahead + per
            if measured and deadline and finish > deadline - self.node.config.reaction \
                    and "expected_finish" not in job.facts:
                self._decline(job.job_id, f"evaluations queued ahead: expected done at "
                              f"{finish:.0f}, commit deadline {deadline}")
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
                 "declined": j.facts.get("verdict") == "declined",
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
        elif job.phase == "declined" and "salt" not in job.facts:  # declined by an older node
            self._decline(job.job_id, str(job.facts.get("reason", "declined")))
        elif job.phase in ("evaluated", "declined"):
            self._commit(job, cj)
        elif job.phase == "committed":
            self._reveal(job, cj)
        elif job.phase == "revealed" and cj.status == Status.CLOSED:
            self._finish(job, cj)

    def _drawn(self, job: JobRow, cj: ChainJob) -> None:
        if cj.status not in (Status.COMMIT,):
            self.set_phase(job.job_id, "missed", reason=f"job is {cj.status.value}")
            return
        salt = os.urandom(32).hex()
        if "test_key" not in job.facts:  # the requester's to release: its fault if it never does
            if job.facts.get("waiting_for") != "data":
                self.store.upsert_job(job.job_id, self.name, waiting_for="data")
            if cj.deadline - self.market.now() <= self.node.config.reaction:
                self._judge_unusable(job.job_id, "data",
                                     "the requester never released our test-set key", salt)
            return
        done, value, err = self.task_result(job.job_id, "evaluate")  # started by _schedule
        if done and err is None:
            try:
                fixed = self.market.to_fixed(value)
            except ValueError as e:  # not a number: nothing the model can be judged by
                self._judge_unusable(job.job_id, "model", f"the model's metric: {e}", salt)
                return
            self.set_phase(job.job_id, "evaluated", metric=value, verdict="metric",
                           metric_fixed=fixed, salt=salt, backend=self.node.config.eval_backend)
            return
        # Whose input is still missing (``waiting_for``: set to "model" when drawn and moved on by
        # the evaluation as each input arrives): an error that names nobody (the evaluation
        # itself failed on the delivered model) counts against the model.
        fault = getattr(err, "fault", "model") if done else job.facts.get("waiting_for")
        if done and isinstance(err, Unusable):
            self._judge_unusable(job.job_id, err.fault, str(err), salt)
            return
        if done:
            self.node.tasks.reset(job.job_id, "evaluate")  # not there yet: try again
            if fault is not None:
                self.store.upsert_job(job.job_id, self.name, waiting_for=fault)
        if cj.deadline - self.market.now() > self.node.config.reaction:
            return
        if fault and (done or "expected_finish" in job.facts):
            # Out of time with an input still missing after trying: its owner's fault, said so.
            self._judge_unusable(job.job_id, fault, f"{fault} still missing at the deadline", salt)
        else:
            # Out of time with the inputs here (or never tried): this node was too slow.
            self._decline(job.job_id, "evaluation still running at the commit deadline"
                          if "expected_finish" in job.facts
                          else "evaluation never started before the commit deadline")

    def _decline(self, job_id: int, why: str) -> None:
        """Commit DECLINED (salt stored first, like any verdict): no fee, and not slashed."""
        self.set_phase(job_id, "declined", verdict="declined", reason=why,
                       metric_fixed=DECLINED, salt=os.urandom(32).hex())

    def _judge_unusable(self, job_id: int, fault: str, why: str, salt: str) -> None:
        self.node.emit("validator.unusable", job=job_id, fault=fault, reason=why)
        self.set_phase(job_id, "evaluated", verdict=f"{fault} unusable", reason=why,
                       metric_fixed=VERDICTS[fault], salt=salt)

    def _evaluate(self, job_id: int) -> float:
        from morphware.runtime.node.engine import evaluate, transient_errors, unsafe_input_error

        job = self.store.job(job_id, self.name)
        assert job is not None
        work = self.node.data_dir / "validate" / str(job_id)
        cfg = self.node.config
        model = self._open("model", lambda: self._fetch_model(job_id, job.facts, work),
                           transient_errors())
        self.store.upsert_job(job_id, self.name, waiting_for="data")
        test = self._open("data", lambda: self._fetch_test(job_id, job.facts, work),
                          transient_errors())
        self.store.upsert_job(job_id, self.name, waiting_for=None)  # both here: evaluating
        metric = self.store.get_meta(f"job_metric:{job_id}") or "accuracy"
        t0 = time.monotonic()
        try:
            value = evaluate(Path(model), Path(test), metric, backend=cfg.eval_backend)
        except unsafe_input_error() as e:
            raise Unusable("model", f"the model or test data was refused as unsafe: {e}") from e
        took = time.monotonic() - t0 + 1.0  # and the two fetches' bookkeeping
        self.store.set_meta("eval_seconds", str((1 - EVAL_EMA) * self.eval_seconds()
                                                + EVAL_EMA * took))
        self.node.emit("validator.metric", job=job_id, metric=metric, value=value,
                       backend=cfg.eval_backend)
        return value

    @staticmethod
    def _open(fault: str, fn, transient: tuple[type[BaseException], ...]) -> Path:  # type: ignore[no-untyped-def]
        """Run one fetch: a key or ciphertext that does not decrypt is ``fault``'s Unusable, a
        transient failure is Missing (retried until the commit window runs out)."""
        from morphware.runtime.delivery.crypto import DecryptionError
        from morphware.runtime.node.keys import KeyBundleError

        try:
            return Path(fn())
        except Missing:
            raise
        except (KeyBundleError, DecryptionError, KeyError) as e:
            raise Unusable(fault, f"{fault}: {e}") from e
        except transient as e:
            raise Missing(fault, f"{fault}: {e}") from e

    def _fetch_model(self, job_id: int, facts: dict, work: Path) -> Path:  # type: ignore[type-arg]
        worker = facts.get("worker") or self._worker(job_id)
        peer = self.node.peer_info(worker)
        if peer is None:
            raise Missing("model", f"no peer info for worker {worker}")
        mail = fetch_mail(peer.http_url, job_id, self.node.key.address)
        if "result" not in mail:
            raise Missing("model", f"worker {worker} has not left the model key yet")
        model_key = unwrap_bundle(mail["result"], self.node.key.private_key)["result"]
        magnet = self.store.get_meta(f"result_magnet:{job_id}") or ""
        rhash = bytes.fromhex(self.store.get_meta(f"result_hash:{job_id}") or "")
        return self.node.fetch(magnet, rhash, model_key, dest=work / "model.onnx")

    def _fetch_test(self, job_id: int, facts: dict, work: Path) -> Path:  # type: ignore[type-arg]
        if "test_key" not in facts:
            raise Missing("data", "the requester has not released our test-set key")
        test_key = unwrap_bundle(bytes.fromhex(facts["test_key"]), self.node.key.private_key)["test"]
        meta = JobMetadata.decode(self.store.get_meta(f"job_artifacts:{job_id}") or "",
                                  bytes.fromhex(self.store.get_meta(f"job_manifest:{job_id}")
                                                or ""))
        ref = meta.artifacts["test"]
        return self.node.fetch(ref.magnet, ref.content_hash, test_key, dest=work / "test.npz")

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
        # earned: the validator fee, paid for a revealed verdict (a DECLINED one is paid nothing)
        paid = job.phase == "revealed" and job.facts.get("verdict") != "declined"
        self.set_phase(job.job_id, "done", outcome=cj.outcome,
                       earned=cj.validator_fee if paid else 0)
