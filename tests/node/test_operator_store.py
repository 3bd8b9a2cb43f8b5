"""The store's operator bookkeeping: the daemon's heartbeat, cancelling a queued submission
(a cancel always wins against the daemon), and per-job payments when one withdrawal carries
the credits of several jobs."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from morphware.runtime.node.chain import ChainJob, Status
from morphware.runtime.node.requester import Requester
from morphware.runtime.node.store import Store
from morphware.runtime.node.validator import Validator
from morphware.runtime.node.worker import Worker

ME = "0x" + "ab" * 20
TOKEN = 10**18


def test_heartbeat_is_written_and_cleared(tmp_path):
    s = Store(tmp_path / "node.db")
    assert s.heartbeat() is None
    s.beat(1234, ("requester", "worker"), 0.2)
    hb = s.heartbeat()
    assert hb is not None and hb["pid"] == 1234 and hb["roles"] == ["requester", "worker"]
    s.stop_beating()
    assert s.heartbeat() is None


def test_cancel_wins_against_the_daemon_and_only_before_posting(tmp_path):
    s = Store(tmp_path / "node.db")
    a, b = s.add_submission("/a/job.toml"), s.add_submission("/b/job.toml")
    assert s.cancel_submission(a)
    # the daemon, holding a stale copy, tries to move it on: the cancel stands
    assert s.update_submission(a, state="prepared", name="x").state == "cancelled"
    assert s.update_submission(a, state="posting").state == "cancelled"
    assert [x.local_id for x in s.submissions(pending_only=True)] == [b]
    assert not s.cancel_submission(a)  # already cancelled
    s.update_submission(b, state="posting")
    assert not s.cancel_submission(b)  # the post may be on its way: too late
    s.update_submission(b, state="posted", job_id=7)
    assert not s.cancel_submission(b) and not s.cancel_submission(99)


def _job(job_id: int, price: int, outcome: str = "accepted", winner: str = ME) -> ChainJob:
    return ChainJob(job_id=job_id, requester="0x" + "01" * 20, status=Status.CLOSED,
                    deadline=0, reveal_end=0, max_price=100 * TOKEN, validator_fee=2 * TOKEN,
                    bid_stake=TOKEN, n_validators=3, threshold=0, winner=winner, price=price,
                    outcome=outcome, metrics=(900_000, 950_000))


class _OneWithdrawal:
    """A market whose whole balance leaves in the first withdrawal: two jobs settled
    together, the first to finish collects both."""

    decimals = 18

    def __init__(self, owed: int) -> None:
        self.owed = owed

    def withdraw(self) -> int:
        amount, self.owed = self.owed, 0
        return amount


def _node(tmp_path, market):  # noqa: ANN001, ANN202
    return SimpleNamespace(store=Store(tmp_path / "node.db"), market=market,
                           key=SimpleNamespace(address=ME), name="n",
                           stop_event=threading.Event(), emit=lambda *a, **k: None)


def test_jobs_settled_together_each_keep_their_own_payment(tmp_path):
    market = _OneWithdrawal(owed=(30 + 2 + 12 + 2) * TOKEN)  # prices + returned stakes
    node = _node(tmp_path, market)
    w = Worker(node)
    for j in (3, 4):
        node.store.upsert_job(j, "worker", "submitted")
    w._finish(node.store.job(3, "worker"), _job(3, 30 * TOKEN))
    w._finish(node.store.job(4, "worker"), _job(4, 12 * TOKEN))
    assert node.store.job(3, "worker").facts["earned"] == 30 * TOKEN
    assert node.store.job(4, "worker").facts["earned"] == 12 * TOKEN
    assert [(x["amount"], x["job_id"]) for x in node.store.withdrawals()] == [(46 * TOKEN, 3)]
    node.store.upsert_job(5, "worker", "submitted")
    w._finish(node.store.job(5, "worker"), _job(5, 9 * TOKEN, outcome="rejected"))
    assert node.store.job(5, "worker").facts["earned"] == 0  # nothing owed, nothing booked
    assert len(node.store.withdrawals()) == 1


def test_requester_and_validator_book_their_own_share(tmp_path):
    node = _node(tmp_path, _OneWithdrawal(owed=200 * TOKEN))
    node.tasks = SimpleNamespace()
    node.store.upsert_job(6, "validator", "revealed")
    Validator(node)._finish(node.store.job(6, "validator"), _job(6, 30 * TOKEN))
    assert node.store.job(6, "validator").facts["earned"] == 2 * TOKEN
    node.store.upsert_job(7, "requester", "closed")
    Requester(node)._close(7, _job(7, 30 * TOKEN, outcome="rejected"))
    assert node.store.job(7, "requester").facts["spent"] == 4 * TOKEN  # two fees, no price
