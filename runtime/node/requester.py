"""The requester role: package, seed, post; follow the auction; release keys; settle; collect.

Phases in the store (role "requester")::

    submission: queued -> prepared (packaged, every artifact seeded) -> posting -> posted
    job:        auction -> working (key released to the winner; loss curve pulled from the
                worker) -> validating (test-set key released on chain to each drawn validator)
                -> closed (accepted: trained model downloaded and decrypted; non-revealing
                validators slashed; everything owed withdrawn) -> done

The artifact keys never leave this node unwrapped: the winner's bundle (model, training set,
recipe) goes on chain with ``release_key``; each validator's bundle (test set) with
``release_test_keys``. Every step checks the chain first, so repeating one is harmless.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from morphware.runtime.job.spec import JobSpec
from morphware.runtime.node.chain import ChainEvent, ChainJob, MarketError, Status
from morphware.runtime.node.jobmeta import (
    ARTIFACTS_FOR_VALIDATORS,
    ARTIFACTS_FOR_WINNER,
    ArtifactRef,
    JobMetadata,
    manifest_hash,
)
from morphware.runtime.node.keys import unwrap_bundle, wrap_bundle
from morphware.runtime.node.peers import fetch_mail, fetch_progress
from morphware.runtime.node.pricing import to_base_units
from morphware.runtime.node.role import Role, record_result
from morphware.runtime.node.store import JobRow, Submission
from morphware.runtime.node.tasks import NotReady

log = logging.getLogger("morphware.node.requester")

BID_STAKE_FRACTION = 0.1  # of the max price: enough to make an unrevealed bid cost something


def market_terms(spec: JobSpec) -> dict[str, Any]:
    """The on-chain terms of a job.toml. The key window (the requester's own reaction time)
    equals the reveal window; the validation window is split into metric commit (all of it)
    and metric reveal (half of it, at least 30 s)."""
    m = spec.market
    return {"max_price": m.max_price, "validator_fee": m.validator_fee,
            "validators": m.validators, "threshold": spec.metric.threshold,
            "metric": spec.metric.name, "lower_is_better": not spec.metric.higher_is_better,
            # The market wants a bid stake that covers the validators' fees: a worker whose
            # result is rejected then pays for its own validation.
            "bid_stake": max(m.max_price * BID_STAKE_FRACTION, m.validators * m.validator_fee),
            "windows": [m.bid_window_s, m.reveal_window_s, m.reveal_window_s, m.work_window_s,
                        m.validation_window_s, max(30, m.validation_window_s // 2)]}


class Requester(Role):
    name = "requester"

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, spec_path: str | Path) -> int:
        """Queue a job.toml; the loop packages, seeds and posts it. Returns the local id."""
        from morphware.runtime.job.spec import load_job

        load_job(spec_path)  # fail now, with the field named, not later in the loop
        return self.store.add_submission(Path(spec_path).resolve())

    def submit_package(self, name: str, files: dict[str, Path], manifest: dict[str, Any],
                       terms: dict[str, Any]) -> int:
        """Queue an already-packaged job (model.onnx, train/test .npz, recipe TOML) as is."""
        local_id = self.store.add_submission(f"package:{name}", state="publishing")
        self._publish(local_id, name, files, manifest, terms)
        return local_id

    def on_event(self, ev: ChainEvent) -> None:
        me = self.node.key.address.lower()
        if ev.name == "JobPosted" and str(ev.args.get("requester", "")).lower() == me:
            mh = bytes(ev.args.get("manifest_hash", b"")).hex()
            for sub in self.store.submissions(pending_only=True):
                if sub.facts.get("manifest_hash") == mh:
                    self._link(sub, ev.job_id)
            return
        row = self.store.job(ev.job_id, self.name)
        if row is None:
            return
        if ev.name == "ResultSubmitted":
            record_result(self.store, ev)
        elif ev.name == "TestKeysReleased":
            self.store.upsert_job(ev.job_id, self.name, test_keys_released=True)
        elif ev.name in ("BidCommitted", "BidRevealed"):
            key = "bids" if ev.name == "BidCommitted" else "revealed_bids"
            seen = dict(row.facts.get(key, {}))
            seen[str(ev.args.get("bidder", ""))] = int(ev.args.get("price", 0))
            self.store.upsert_job(ev.job_id, self.name, **{key: seen})
        elif ev.name == "MetricRevealed":  # which validator revealed which value (the contract
            seen = dict(row.facts.get("revealed_metrics", {}))  # lists them in reveal order only)
            seen[str(ev.args.get("validator", ""))] = int(ev.args.get("metric", 0))
            self.store.upsert_job(ev.job_id, self.name, revealed_metrics=seen)

    def tick(self) -> None:
        for sub in self.store.submissions(pending_only=True):
            try:
                self._advance_submission(sub)
            except MarketError as e:  # e.g. not enough tokens to escrow: retried next tick,
                # and never in the way of the jobs already posted
                if sub.facts.get("post_error") != str(e):
                    self.store.update_submission(sub.local_id, post_error=str(e))
                    log.warning("[%s] posting submission %d refused: %s", self.node.name,
                                sub.local_id, e)
        super().tick()

    def _advance_submission(self, sub: Submission) -> None:
        key = -sub.local_id  # artifacts live under the negative local id until posted
        if sub.state == "queued":
            self.node.tasks.ensure(key, "prepare", lambda: self._prepare(sub))
            done, _, err = self.task_result(key, "prepare")
            if done and err is not None:
                self.store.update_submission(sub.local_id, state="failed", error=str(err))
                self.node.emit("requester.failed", submission=sub.local_id, error=str(err))
            return
        if sub.state in ("prepared", "posting"):
            self._post(sub)

    def _prepare(self, sub: Submission) -> None:
        """Package (runs the requester's own model code, here only) and seed every artifact."""
        from morphware.runtime.job.spec import load_job
        from morphware.runtime.node.engine import package

        spec = load_job(sub.spec_path)
        inputs = sub.facts.get("inputs") or {}  # a search's job: its split, parent model, ...
        if inputs:
            spec = spec.with_inputs(**{k: (v if k == "threshold" else Path(v))
                                       for k, v in inputs.items()})
        if sub.facts.get("hparams") or inputs:  # one job of a search (runtime/job/hpo.py)
            spec = replace(spec.with_hparams(sub.facts.get("hparams") or {}),
                           name=str(sub.facts.get("name") or spec.name))
        out = self.node.data_dir / "packages" / str(sub.local_id)
        if out.exists():
            shutil.rmtree(out)
        pkg = package(spec, out)
        self._publish(sub.local_id, spec.name, pkg.files, pkg.manifest, market_terms(spec))

    def _publish(self, local_id: int, name: str, files: dict[str, Path],
                 manifest: dict[str, Any], terms: dict[str, Any]) -> None:
        missing = [a for a in ARTIFACTS_FOR_WINNER + ARTIFACTS_FOR_VALIDATORS if a not in files]
        if missing:
            raise ValueError(f"job {name!r} lacks artifact(s) {missing}")
        refs = {}
        for art, path in files.items():
            pub = self.node.publish(path)
            self.store.put_artifact(-local_id, art, magnet=pub.magnet,
                                    content_hash=pub.content_hash.hex(), key=pub.key.hex(),
                                    path=str(path))
            refs[art] = ArtifactRef(pub.magnet, pub.content_hash)
        meta = JobMetadata(name=name, manifest=manifest, artifacts=refs,
                           requester_pubkey=self.node.key.public_key)
        self.store.update_submission(local_id, state="prepared", name=name,
                                     metadata=meta.encode(),
                                     manifest_hash=manifest_hash(manifest).hex(), terms=terms)
        self.node.emit("requester.seeded", submission=local_id, name=name,
                       artifacts=sorted(files))

    def _windows_problem(self, windows: list[int]) -> str | None:
        """Why these windows cannot be posted (or served by this node), or None."""
        floor = self.market.min_window()
        names = ("bid", "reveal", "key", "work", "verdict commit", "verdict reveal")
        short = [f"{n} {w} s" for n, w in zip(names, windows, strict=True) if w < floor]
        if short:
            return (f"window(s) {', '.join(short)} below the market's floor of {floor} s "
                    "(raise them in the job's [market] table)")
        if windows[2] < self.node.config.reaction:
            return (f"key window {windows[2]} s is shorter than this node needs to release the "
                    f"key ({self.node.config.reaction:g} s); raise reveal_window_s")
        return None

    def _post(self, sub: Submission) -> None:
        from morphware.runtime.node.chain import MarketError

        t = sub.facts["terms"]
        dec = self.market.decimals
        problem = self._windows_problem([int(w) for w in t["windows"]])
        if problem is not None:
            self.store.update_submission(sub.local_id, state="failed", error=problem)
            self.node.emit("requester.failed", submission=sub.local_id, error=problem)
            return
        if self.store.update_submission(sub.local_id, state="posting").state != "posting":
            return  # cancelled by `morphware cancel` before we started posting
        try:
            job_id = self._send_post(sub, t, dec)
        except MarketError as e:
            self.store.update_submission(sub.local_id, state="failed", error=str(e))
            self.node.emit("requester.failed", submission=sub.local_id, error=str(e))
            return
        self._link(sub, job_id)

    def _send_post(self, sub: Submission, t: dict[str, Any], dec: int) -> int:
        return self.market.post_job(
            manifest_hash=bytes.fromhex(sub.facts["manifest_hash"]), metric=t["metric"],
            threshold=int(round(t["threshold"] * self.market.metric_scale)),
            lower_is_better=bool(t["lower_is_better"]), n_validators=int(t["validators"]),
            max_price=to_base_units(t["max_price"], dec),
            validator_fee=to_base_units(t["validator_fee"], dec),
            bid_stake=to_base_units(t["bid_stake"], dec),
            windows=tuple(int(w) for w in t["windows"]),  # type: ignore[arg-type]
            artifacts=sub.facts["metadata"])

    def _link(self, sub: Submission, job_id: int) -> None:
        """Bind a submission to its job id (idempotent: the post's event may be seen again)."""
        if self.store.job(job_id, self.name) is not None:
            return
        for a in self.store.artifacts(-sub.local_id):
            self.store.put_artifact(job_id, a.name, magnet=a.magnet,
                                    content_hash=a.content_hash, key=a.key, path=a.path)
        self.store.update_submission(sub.local_id, state="posted", job_id=job_id)
        self.set_phase(job_id, "auction", local_id=sub.local_id, name=sub.facts.get("name"))

    # -- following a posted job ---------------------------------------------------------------

    def step(self, job: JobRow) -> None:
        cj = self.node.chain_job(job.job_id)
        phase = job.phase
        if phase == "auction":
            phase = self._auction(job, cj)
            cj = self.node.chain_job(job.job_id)
        if phase == "working":
            phase = self._working(job, cj)
            cj = self.node.chain_job(job.job_id)
        if phase == "validating":
            phase = self._validating(job, cj)
            cj = self.node.chain_job(job.job_id)
        if phase == "closed":
            self._close(job.job_id, cj)

    def _auction(self, job: JobRow, cj: ChainJob) -> str:
        if cj.status == Status.FINALIZABLE:
            self.node.act("finalize", job.job_id, lambda: self.market.finalize(job.job_id))
            cj = self.node.chain_job(job.job_id)
        if cj.status == Status.AWAITING_KEY and cj.winner:
            blob = wrap_bundle(self._keys(job.job_id, ARTIFACTS_FOR_WINNER),
                               self.market.pubkey_of(cj.winner))
            self.node.act("release_key", job.job_id,
                          lambda: self.market.release_key(job.job_id, blob))
            cj = self.node.chain_job(job.job_id)
        if cj.status == Status.CLOSED:
            self.set_phase(job.job_id, "closed", outcome=cj.outcome)
            return "closed"
        if cj.status not in (Status.BIDDING, Status.REVEALING, Status.FINALIZABLE,
                             Status.AWAITING_KEY):
            self.set_phase(job.job_id, "working", winner=cj.winner, price=cj.price)
            return "working"
        return "auction"

    def _working(self, job: JobRow, cj: ChainJob) -> str:
        self._pull_progress(job.job_id, cj.winner)
        if cj.status == Status.WORKING and self.market.now() > cj.deadline:
            self.node.act("advance", job.job_id, lambda: self.market.advance(job.job_id))
            cj = self.node.chain_job(job.job_id)
        if cj.status == Status.DRAWING and self.market.head() > cj.deadline:
            self.node.act("draw", job.job_id, lambda: self.market.draw(job.job_id))
            cj = self.node.chain_job(job.job_id)
        if cj.status == Status.CLOSED:
            self.set_phase(job.job_id, "closed", outcome=cj.outcome)
            return "closed"
        if cj.status in (Status.COMMIT, Status.REVEAL):
            self.set_phase(job.job_id, "validating", validators=list(cj.validators))
            return "validating"
        return "working"

    def _validating(self, job: JobRow, cj: ChainJob) -> str:
        row = self.store.job(job.job_id, self.name)
        if cj.status in (Status.COMMIT, Status.REVEAL):
            if cj.validators and not (row and row.facts.get("test_keys_released")):
                keys = self._keys(job.job_id, ARTIFACTS_FOR_VALIDATORS)
                blobs = {v: wrap_bundle(keys, self.market.pubkey_of(v)) for v in cj.validators}
                if self.node.act("release_test_keys", job.job_id,
                                 lambda: self.market.release_test_keys(job.job_id, blobs)):
                    self.store.upsert_job(job.job_id, self.name, test_keys_released=True)
                    self.node.emit("requester.test_keys_released", job=job.job_id,
                                   validators=len(blobs))
            if self.market.now() > cj.deadline:
                self.node.act("advance", job.job_id, lambda: self.market.advance(job.job_id))
            cj = self.node.chain_job(job.job_id)
        if cj.status == Status.CLOSED:
            self.set_phase(job.job_id, "closed", outcome=cj.outcome, median=cj.median,
                           metrics=list(cj.metrics))
            return "closed"
        return "validating"

    def _close(self, job_id: int, cj: ChainJob) -> None:
        if cj.passed:
            self.node.tasks.ensure(job_id, "download", lambda: self._download(job_id, cj))
            done, path, err = self.task_result(job_id, "download")
            if not done:
                return
            if err is not None:
                self.node.tasks.reset(job_id, "download")  # the worker may be back later
                return
            self.store.upsert_job(job_id, self.name, model_path=str(path))
        for v in cj.extra.get("unrevealed", ()):
            if self.node.act("slash_validator", job_id,
                             lambda v=v: self.market.slash_validator(job_id, v)):
                self.node.emit("requester.validator_slashed", job=job_id, validator=v)
        self.collect(job_id)
        # spent: the worker's price if the model passed, plus a fee per revealed metric
        spent = (cj.price if cj.passed else 0) + cj.validator_fee * len(cj.metrics)
        self.set_phase(job_id, "done", outcome=cj.outcome, price=cj.price, spent=spent)

    def _download(self, job_id: int, cj: ChainJob) -> Path:
        """Fetch the trained model, with the key the worker left in its mailbox for us."""
        from morphware.runtime.node.engine import read_curve

        if cj.winner is None:
            raise RuntimeError(f"job {job_id} has no winner to download from")
        peer = self.node.peer_info(cj.winner)
        if peer is None:
            raise NotReady(f"no peer info for the winner {cj.winner}")
        mail = fetch_mail(peer.http_url, job_id, self.node.key.address)
        if "result" not in mail:
            raise NotReady(f"worker {cj.winner} has not left the result key yet")
        keys = unwrap_bundle(mail["result"], self.node.key.private_key)
        magnet = self.store.get_meta(f"result_magnet:{job_id}") or ""
        result_hash = self.store.get_meta(f"result_hash:{job_id}") or ""
        dest = self.node.data_dir / "results" / str(job_id) / "model.onnx"
        path = self.node.fetch(magnet, bytes.fromhex(result_hash), keys["result"], dest=dest)
        self.store.upsert_job(job_id, self.name, loss_curve=read_curve(Path(path)))
        self.node.emit("requester.model_received", job=job_id, path=str(path))
        return Path(path)

    # -- helpers ------------------------------------------------------------------------------

    def _keys(self, job_id: int, names: tuple[str, ...]) -> dict[str, bytes]:
        out = {}
        for n in names:
            a = self.store.artifact(job_id, n)
            if a is None or not a.key:
                raise RuntimeError(f"job {job_id}: key of artifact {n!r} missing from the store")
            out[n] = bytes.fromhex(a.key)
        return out

    def _pull_progress(self, job_id: int, winner: str | None) -> None:
        peer = self.node.peer_info(winner) if winner else None
        if peer is None:
            return
        have = self.store.progress(job_id)
        after = have[-1]["step"] if have else -1
        for ev in fetch_progress(peer.http_url, job_id, after):
            self.store.add_progress(job_id, int(ev["step"]), ev)
