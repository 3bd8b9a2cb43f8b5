"""The FastAPI app: JSON endpoints over one node's store, and the dashboard's static files.

Every endpoint only reads. Unknown jobs are HTTP 404 with a message naming the job; the app
itself refuses to start on a data dir that is missing or of another schema version
(``SourceError``), so a wrong ``--data-dir`` is never an empty dashboard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from morphware.runtime.api import views
from morphware.runtime.api.source import open_store
from morphware.runtime.dashboard import STATIC_DIR
from morphware.runtime.node.store import Store


def create_app(source: str | Path | Store) -> FastAPI:
    """The API for a node: ``source`` is its data dir (checked, opened here) or an open
    ``Store`` (a daemon serving its own state; the caller keeps ownership)."""
    owned = not isinstance(source, Store)
    store = open_store(source) if owned else source

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            store.close()

    app = FastAPI(title="Morphware node API", version="1", lifespan=lifespan,
                  description="Read-only view of one Morphware node's state.")
    app.state.store = store
    _add_error_handler(app)
    _add_api_routes(app, store)
    _add_dashboard(app)
    return app


def _add_error_handler(app: FastAPI) -> None:
    @app.exception_handler(views.NotFound)
    async def _not_found(_: Request, exc: views.NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})


def _add_api_routes(app: FastAPI, store: Store) -> None:
    @app.get("/api/node")
    def node() -> dict[str, Any]:
        """Who this node is, which roles it has played, how far it followed the chain."""
        return views.node_info(store)

    @app.get("/api/jobs")
    def jobs() -> dict[str, Any]:
        """Every job this node knows (newest first) and the submissions it queued."""
        return {"jobs": views.jobs_list(store), "submissions": views.submissions_list(store)}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: int) -> dict[str, Any]:
        """One job: phase and facts per role, phase timeline, bids, metrics, payments."""
        return views.job_detail(store, job_id)

    @app.get("/api/jobs/{job_id}/timeline")
    def job_timeline(job_id: int) -> dict[str, Any]:
        views.job_rows(store, job_id)
        return {"job_id": job_id, "timeline": views.timeline(store, job_id)}

    @app.get("/api/jobs/{job_id}/bids")
    def bids(job_id: int) -> dict[str, Any]:
        """Sealed and revealed bids, our own bid, the clearing price and its rule."""
        return views.bids_view(store, job_id)

    @app.get("/api/jobs/{job_id}/price")
    def price(job_id: int) -> dict[str, Any]:
        """The clearing price alone (what the requester pays the worker if accepted)."""
        b = views.bids_view(store, job_id)
        return {k: b[k] for k in ("job_id", "clearing_price", "max_price", "winner", "rule")}

    @app.get("/api/jobs/{job_id}/metrics")
    def metrics(job_id: int) -> dict[str, Any]:
        return views.metrics_view(store, job_id)

    @app.get("/api/jobs/{job_id}/payments")
    def payments(job_id: int) -> dict[str, Any]:
        return views.payments_view(store, job_id)

    @app.get("/api/jobs/{job_id}/loss")
    def loss(job_id: int, after: int = Query(-1, ge=-1, description="last step already seen")
             ) -> dict[str, Any]:
        """Live loss events with step > ``after``: poll with the last step you have."""
        return views.loss_view(store, job_id, after)

    @app.get("/api/{rest:path}", include_in_schema=False)
    def unknown(rest: str) -> None:
        raise HTTPException(status_code=404, detail=f"no API endpoint /api/{rest}")


def _add_dashboard(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard")
