"""The dashboard in headless Chromium against the real server: the jobs table, a job's page, and
its loss curve growing while the test appends progress events to the node's store, the way the
worker (or the requester pulling from it) does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_store import (
    REQ_JOB,
    WORKER_JOB,
    WORKERS,
    add_loss,
    lost_worker_job,
    make_store,
    post_requester_job,
    run_auction,
    settle,
)
from morphware.runtime.api.server import DashboardServer

pytestmark = pytest.mark.browser

SCREENSHOT = Path("/tmp/morphware-dashboard.png")
JOBS_SCREENSHOT = Path("/tmp/morphware-jobs.png")


def _training_node(data_dir: Path) -> None:
    """A requester whose job is being trained (10 loss steps so far) and a lost worker bid."""
    store = make_store(data_dir)
    post_requester_job(store)
    run_auction(store)
    add_loss(store, REQ_JOB, 0, 10)
    lost_worker_job(store)
    store.close()


def _points(page: Any) -> int:
    return int(page.get_attribute("#loss-chart", "data-points"))


def test_jobs_table_then_job_with_live_loss_curve(tmp_path: Path, page: Any) -> None:
    _training_node(tmp_path)
    with DashboardServer(tmp_path) as srv:
        page.goto(f"{srv.url}/")
        rows = page.locator("#jobs-table tbody tr")
        rows.first.wait_for()
        assert rows.count() == 2
        assert [rows.nth(i).get_attribute("data-job-id") for i in range(2)] == [
            str(WORKER_JOB), str(REQ_JOB)]
        req_row = page.locator(f"#jobs-table tr[data-job-id='{REQ_JOB}']")
        assert req_row.locator(".phase").inner_text() == "working"
        assert req_row.locator("td.price").inner_text() == "1.1"
        assert "digits" in req_row.inner_text()
        assert page.locator(f"tr[data-job-id='{WORKER_JOB}'] .phase").inner_text() == "lost"
        assert "block -1" in page.inner_text("#node-info")
        page.screenshot(path=str(JOBS_SCREENSHOT))

        req_row.click()
        page.wait_for_url(f"**/dashboard/#job={REQ_JOB}")
        page.wait_for_function("document.getElementById('loss-chart').dataset.points === '10'")
        assert page.is_hidden("#jobs-view") and page.is_visible("#job-view")
        assert page.inner_text("#job-title") == f"Job #{REQ_JOB} — digits"
        assert page.inner_text("#job-price") == "1.1 MWT"
        assert "pay-as-bid" in page.inner_text("#job-price-rule")
        bids = page.locator("#bids-table tbody tr")
        assert bids.count() == 3 and "winner" in bids.first.inner_text()
        assert page.get_attribute("#bids-table tbody tr >> nth=0 >> td", "title") == WORKERS[0]
        assert page.locator("#timeline-table tbody tr").count() == 2

        store = make_store(tmp_path)  # a second connection, as the node process would hold
        add_loss(store, REQ_JOB, 10, 15)
        page.wait_for_function("document.getElementById('loss-chart').dataset.points === '25'",
                               timeout=5_000)
        line = page.get_attribute("#loss-line", "points")
        assert len(line.split()) == 25
        assert "25 steps" in page.inner_text("#loss-status")
        add_loss(store, REQ_JOB, 25, 15)
        settle(store)
        store.close()
        page.wait_for_function("document.getElementById('loss-chart').dataset.points === '40'",
                               timeout=5_000)
        page.locator("#job-phase .phase", has_text="done").wait_for(timeout=5_000)
        assert len(page.get_attribute("#epoch-line", "points").split()) == 4  # 10 steps each
        assert page.locator("#metrics-table tbody tr").count() == 3
        assert "median 0.9123" in page.inner_text("#metrics-summary")
        assert "accuracy 0.9123" in page.inner_text("#job-metric")
        payments = page.inner_text("#payments-table")
        assert "worker paid" in payments and "1.85 MWT" in payments
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        page.click("#back")
        page.locator("#jobs-table tbody tr").first.wait_for()
        assert page.is_visible("#jobs-view")


def test_unknown_job_shows_the_api_error(tmp_path: Path, page: Any) -> None:
    _training_node(tmp_path)
    with DashboardServer(tmp_path) as srv:
        page.goto(f"{srv.url}/dashboard/#job=99")
        page.locator("#error", has_text="this node knows no job 99").wait_for()
        assert page.get_attribute("#conn", "class") == "conn bad"


def test_empty_node_says_so(tmp_path: Path, page: Any) -> None:
    make_store(tmp_path).close()
    with DashboardServer(tmp_path) as srv:
        page.goto(f"{srv.url}/")
        page.locator("#jobs-empty", has_text="knows no jobs yet").wait_for()
        assert page.locator("#jobs-table tbody tr").count() == 0
        assert "roles none yet" in page.inner_text("#node-info")
