"""The node API over a real SQLite store filled through ``Store``'s own API."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from api_store import (
    ASKS,
    REQ_JOB,
    VALIDATORS,
    WORKER_JOB,
    WORKERS,
    add_loss,
    full_store,
    make_store,
    post_requester_job,
    won_worker_job,
)
from fastapi.testclient import TestClient
from morphware.runtime.api import create_app
from morphware.runtime.api.source import SourceError
from morphware.runtime.dashboard import STATIC_DIR
from morphware.runtime.node.pricing import to_base_units
from morphware.runtime.node.store import SCHEMA_VERSION, Store


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = full_store(tmp_path)
    yield s
    s.close()


@pytest.fixture()
def client(store: Store) -> TestClient:
    with TestClient(create_app(store)) as c:
        yield c


def test_node_info_names_roles_jobs_and_block(client: TestClient, store: Store) -> None:
    store.set_last_block(41)
    n = client.get("/api/node").json()
    assert n["roles"] == ["requester", "worker"]
    assert n["jobs"] == 2 and n["submissions"] == 1
    assert n["last_block"] == 41 and n["schema_version"] == SCHEMA_VERSION
    assert n["data_dir"] == str(store.path.parent)


def test_empty_node(tmp_path: Path) -> None:
    make_store(tmp_path).close()
    with TestClient(create_app(tmp_path)) as c:
        n = c.get("/api/node").json()
        assert n["roles"] == [] and n["jobs"] == 0 and n["last_block"] == -1
        assert c.get("/api/jobs").json() == {"jobs": [], "submissions": []}


def test_jobs_list_newest_first_with_phase_and_price(client: TestClient) -> None:
    data = client.get("/api/jobs").json()
    jobs = {j["job_id"]: j for j in data["jobs"]}
    assert [j["job_id"] for j in data["jobs"]] == [WORKER_JOB, REQ_JOB]
    assert jobs[REQ_JOB]["phase"] == "done" and jobs[REQ_JOB]["role"] == "requester"
    assert jobs[REQ_JOB]["price"] == pytest.approx(ASKS[WORKERS[1]])
    assert jobs[REQ_JOB]["name"] == "digits" and jobs[REQ_JOB]["outcome"] == "accepted"
    assert jobs[REQ_JOB]["loss_steps"] == 40
    assert jobs[WORKER_JOB]["phase"] == "lost" and jobs[WORKER_JOB]["roles"] == {"worker": "lost"}
    assert data["submissions"][0]["state"] == "posted"


def test_job_detail_timeline_in_phase_order_and_no_secrets(client: TestClient) -> None:
    d = client.get(f"/api/jobs/{REQ_JOB}").json()
    assert [t["phase"] for t in d["timeline"]] == ["auction", "working", "validating",
                                                    "closed", "done"]
    assert all(t["seconds"] is not None and t["seconds"] >= 0 for t in d["timeline"][:-1])
    assert d["timeline"][-1]["seconds"] is None
    facts = d["facts"]["requester"]
    assert facts["spent"] == pytest.approx(0.75)
    assert facts["metrics"] == pytest.approx([0.912345, 0.905, 0.921])
    assert "loss_curve" not in facts
    worker = client.get(f"/api/jobs/{WORKER_JOB}").json()
    assert "artifacts" not in worker["facts"]["worker"]
    assert worker["facts"]["worker"]["ask"] == pytest.approx(1.5)
    body = client.get(f"/api/jobs/{WORKER_JOB}").text + client.get(f"/api/jobs/{REQ_JOB}").text
    assert "01" * 32 not in body and "ef" * 32 not in body  # salt, artifact key
    assert "magnet:" not in body


def test_bids_sorted_by_ask_with_winner_paid_its_ask(client: TestClient) -> None:
    b = client.get(f"/api/jobs/{REQ_JOB}/bids").json()
    assert [x["bidder"] for x in b["bids"]] == WORKERS
    assert [x["ask"] for x in b["bids"]] == pytest.approx([0.6, 1.1, 2.0])
    assert [x["winner"] for x in b["bids"]] == [True, False, False]
    assert b["clearing_price"] == pytest.approx(1.1)
    assert b["rule"] == "the winner's own ask (pay-as-bid)" and b["max_price"] == 5.0
    p = client.get(f"/api/jobs/{REQ_JOB}/price").json()
    assert p == {"job_id": REQ_JOB, "clearing_price": pytest.approx(1.1), "max_price": 5.0,
                 "winner": WORKERS[0], "rule": "the winner's own ask (pay-as-bid)"}


def test_own_bid_shown_without_salt(client: TestClient) -> None:
    b = client.get(f"/api/jobs/{WORKER_JOB}/bids").json()
    assert b["own_bid"] == {"ask": pytest.approx(1.5), "committed": True, "revealed": True}
    assert b["clearing_price"] == pytest.approx(1.8) and b["winner"] == "0x" + "c" * 40


def test_winning_worker_sees_itself_as_winner(client: TestClient, store: Store) -> None:
    won_worker_job(store, 9)
    assert client.get("/api/jobs/9/bids").json()["winner"] == "this node"
    store.set_meta("address", WORKERS[0])
    b = client.get("/api/jobs/9/bids").json()
    assert b["winner"] == WORKERS[0] and b["clearing_price"] == pytest.approx(1.1)
    assert client.get(f"/api/jobs/{WORKER_JOB}/bids").json()["winner"] == "0x" + "c" * 40


def test_sealed_bids_and_single_reveal_pays_its_ask(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    post_requester_job(store)
    store.upsert_job(REQ_JOB, "requester", bids={w: 0 for w in WORKERS})
    with TestClient(create_app(store)) as c:
        b = c.get(f"/api/jobs/{REQ_JOB}/bids").json()
        assert [x["revealed"] for x in b["bids"]] == [False] * 3
        assert b["clearing_price"] is None and b["rule"].startswith("not cleared yet")
        store.upsert_job(REQ_JOB, "requester", "working", winner=WORKERS[2],
                         revealed_bids={WORKERS[2]: to_base_units(2.0)},
                         price=to_base_units(2.0))
        b = c.get(f"/api/jobs/{REQ_JOB}/bids").json()
        assert b["bids"][0] == {"bidder": WORKERS[2], "revealed": True, "ask": 2.0,
                                "winner": True}
        assert b["clearing_price"] == 2.0 and b["rule"] == "the only revealed ask (pay-as-bid)"
    store.close()


def test_metrics_median_threshold_and_per_validator(client: TestClient, store: Store) -> None:
    m = client.get(f"/api/jobs/{REQ_JOB}/metrics").json()
    assert m["metric"] == "accuracy" and m["threshold"] == 0.8 and m["outcome"] == "accepted"
    assert m["revealed"] == pytest.approx([0.912345, 0.905, 0.921])
    assert m["median"] == pytest.approx(0.912345)
    assert [v["validator"] for v in m["validators"]] == VALIDATORS
    assert all(v["metric"] is None for v in m["validators"])  # reveal order is not draw order
    store.upsert_job(REQ_JOB, "requester", revealed_metrics={VALIDATORS[1]: 905_000})
    m = client.get(f"/api/jobs/{REQ_JOB}/metrics").json()
    assert [v["metric"] for v in m["validators"]] == [None, pytest.approx(0.905), None]
    # the market's sentinel verdicts are shown by name, not as 1.8e13
    store.upsert_job(REQ_JOB, "requester", revealed_metrics={
        VALIDATORS[0]: 2**64 - 1, VALIDATORS[1]: 2**64 - 2, VALIDATORS[2]: 2**64 - 3})
    m = client.get(f"/api/jobs/{REQ_JOB}/metrics").json()
    assert [v["metric"] for v in m["validators"]] == ["model unusable", "test data unusable",
                                                      "declined"]


def test_validator_sees_its_own_metric(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.set_meta("job_metric:3", "accuracy")
    store.upsert_job(3, "validator", "drawn", worker=WORKERS[0], slot=1)
    store.upsert_job(3, "validator", "evaluated", metric=0.93, metric_fixed=930_000,
                     salt="99" * 32)
    with TestClient(create_app(store)) as c:
        m = c.get("/api/jobs/3/metrics").json()
        assert m["own"] == 0.93 and m["metric"] == "accuracy" and m["median"] is None
        b = c.get("/api/jobs/3/bids").json()
        assert b["clearing_price"] is None and b["rule"] == "this node took no part in the auction"
        assert "99" * 32 not in c.get("/api/jobs/3").text
    store.close()


def test_payments_settlement_accepted(client: TestClient) -> None:
    p = client.get(f"/api/jobs/{REQ_JOB}/payments").json()
    assert p["roles"]["requester"]["spent"] == pytest.approx(0.75)
    s = p["settlement"]
    assert s["worker"] == WORKERS[0] and s["worker_paid"] == pytest.approx(1.1)
    assert s["validators_paid"] == 3 and s["validator_fees"] == pytest.approx(0.75)
    assert s["requester_cost"] == pytest.approx(1.85)
    assert s["escrowed"] == pytest.approx(5.75) and s["refunded"] == pytest.approx(3.9)
    assert client.get(f"/api/jobs/{WORKER_JOB}/payments").json()["settlement"] is None


def test_payments_rejected_model_pays_no_worker(client: TestClient, store: Store) -> None:
    store.upsert_job(REQ_JOB, "requester", outcome="rejected", metrics=[700_000, 710_000])
    s = client.get(f"/api/jobs/{REQ_JOB}/payments").json()["settlement"]
    assert s["worker_paid"] == 0.0 and s["validator_fees"] == pytest.approx(0.5)
    assert s["refunded"] == pytest.approx(5.25)


def test_loss_incremental_polling(client: TestClient, store: Store) -> None:
    full = client.get(f"/api/jobs/{REQ_JOB}/loss").json()
    assert [e["step"] for e in full["events"]] == list(range(40))
    assert full["last_step"] == 39 and full["more"] is False
    assert full["final_curve"] == [1.9, 0.9, 0.5, 0.3]
    tail = client.get(f"/api/jobs/{REQ_JOB}/loss", params={"after": 29}).json()
    assert [e["step"] for e in tail["events"]] == list(range(30, 40))
    nothing = client.get(f"/api/jobs/{REQ_JOB}/loss", params={"after": 39}).json()
    assert nothing["events"] == [] and nothing["last_step"] == 39
    add_loss(store, REQ_JOB, 40, 5)
    new = client.get(f"/api/jobs/{REQ_JOB}/loss", params={"after": 39}).json()
    assert [e["step"] for e in new["events"]] == [40, 41, 42, 43, 44]
    assert set(new["events"][0]) == {"step", "epoch", "loss"}
    assert client.get(f"/api/jobs/{REQ_JOB}/loss", params={"after": -5}).status_code == 422
    assert client.get(f"/api/jobs/{REQ_JOB}/loss", params={"after": "x"}).status_code == 422


def test_loss_pages_long_curves(client: TestClient, store: Store) -> None:
    from morphware.runtime.api.views import MAX_LOSS_EVENTS

    add_loss(store, REQ_JOB, 40, MAX_LOSS_EVENTS)
    first = client.get(f"/api/jobs/{REQ_JOB}/loss").json()
    assert len(first["events"]) == MAX_LOSS_EVENTS and first["more"] is True
    rest = client.get(f"/api/jobs/{REQ_JOB}/loss",
                      params={"after": first["last_step"]}).json()
    assert len(rest["events"]) == 40 and rest["more"] is False


@pytest.mark.parametrize("path", ["", "/bids", "/price", "/metrics", "/payments", "/loss",
                                  "/timeline"])
def test_unknown_job_is_404_naming_it(client: TestClient, path: str) -> None:
    r = client.get(f"/api/jobs/99{path}")
    assert r.status_code == 404 and r.json() == {"detail": "this node knows no job 99"}


def test_unknown_endpoint_and_bad_job_id(client: TestClient) -> None:
    r = client.get("/api/nothing/here")
    assert r.status_code == 404 and "no API endpoint /api/nothing/here" in r.json()["detail"]
    assert client.get("/api/jobs/seven").status_code == 422


def _snapshot(path: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                           "ORDER BY name")]
        return [(t, sorted(map(repr, db.execute(f"SELECT * FROM {t}")))) for t in tables]
    finally:
        db.close()


def test_served_from_data_dir_and_reads_only(tmp_path: Path) -> None:
    full_store(tmp_path).close()
    before = _snapshot(tmp_path / "node.db")
    with TestClient(create_app(tmp_path)) as c:
        for path in ["/api/node", "/api/jobs", f"/api/jobs/{REQ_JOB}",
                     f"/api/jobs/{REQ_JOB}/loss", f"/api/jobs/{WORKER_JOB}/bids"]:
            assert c.get(path).status_code == 200
    assert _snapshot(tmp_path / "node.db") == before


def test_missing_data_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        create_app(tmp_path / "absent")
    with pytest.raises(SourceError, match="no node state at"):
        create_app(tmp_path)
    assert not (tmp_path / "node.db").exists()  # never creates a store where there was none


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    make_store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "node.db")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
               (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    before = _snapshot(tmp_path / "node.db")
    with pytest.raises(SourceError, match=f"schema version {SCHEMA_VERSION + 1}"):
        create_app(tmp_path)
    assert _snapshot(tmp_path / "node.db") == before


def test_not_a_node_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "node.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SourceError, match="not a Morphware node database"):
        create_app(tmp_path)


def test_dashboard_served_and_self_contained(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/dashboard/"
    page = client.get("/dashboard/")
    assert page.status_code == 200 and 'id="jobs-table"' in page.text
    for name, kind in [("app.js", "javascript"), ("style.css", "text/css")]:
        r = client.get(f"/dashboard/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    for f in STATIC_DIR.iterdir():  # nothing fetched from outside the node (no CDN)
        urls = re.findall(r"https?://[^\s\"')]+", f.read_text())
        assert urls == ["http://www.w3.org/2000/svg"] * len(urls), (f.name, urls)
        assert "src=\"//" not in f.read_text() and "href=\"//" not in f.read_text()
