"""The Litestar application.

`create_app` builds a stateless app around one SQLAlchemy engine: several replicas can serve the
same PostgreSQL database. Domain routers are plain Controllers; dependencies provide the session
and the authenticated caller; one exception handler turns every error into a JSON answer.
`serve_app` is the app as `studbook serve` runs it in each server process.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components
from sqlalchemy.engine import Engine

from .artifacts.controllers import ArtifactController
from .attestations.controllers import AttestationController
from .bom import install as install_bom
from .boundary import StrictRequest, check_request_text
from .db import make_engine, wal_checkpointer
from .deps import provide_db_session, provide_request_caller
from .errors import exception_handler
from .evals import install as install_evals
from .imports import install as install_imports
from .keys.controllers import KeyController
from .log.service import install as install_log
from .openapi import SECURITY_SCHEMES
from .openapi import describe as describe_operations
from .principals.controllers import PrincipalController, whoami
from .reviews import install as install_reviews
from .risk import install as install_risk
from .settings import Settings, get_settings
from .web.controllers import security_headers
from .web.docs import LocalSwaggerPlugin
from .weights import install as install_weights


@get("/healthz", sync_to_thread=True, tags=["meta"], summary="Liveness and database check")
def healthz(state: State) -> dict[str, str]:
    """Answers once the database answers.

    A pooled connection and the driver's cursor: an engine connection would add statement
    compilation and a transaction (BEGIN, ROLLBACK) around one `SELECT 1`.
    """
    conn = state.engine.raw_connection()
    try:
        cur = conn.cursor()
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            cur.close()
    finally:
        conn.close()
    return {"status": "ok"}


# Litestar runs a sync hook in a worker thread: two thread hops on every request for a few
# microseconds of pure computation each. As coroutines they run on the event loop.
async def _check_request_text(request: Request[Any, Any, Any]) -> None:
    check_request_text(request)


async def _security_headers(response: Response[Any]) -> Response[Any]:
    return security_headers(response)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """Build the app for `settings` (default: from the environment).

    Args:
        settings: configuration; `get_settings()` when omitted.
        engine: an existing engine to share (tests); created from settings when omitted.
    """
    settings = settings or get_settings()
    engine = engine or make_engine(settings.resolved_database_url)
    route_handlers: list[Any] = [
        healthz,
        whoami,
        PrincipalController,
        KeyController,
        AttestationController,
        ArtifactController,
    ]
    for extra in _domain_routers():
        route_handlers.append(extra)
    install_log(engine, settings)  # every process that ingests appends to the log
    install_risk()  # after the log: mark refreshes run under its append lock
    install_bom()  # the artifacts' `bom` view (SPDX 3, CycloneDX)
    install_imports()  # the artifacts' `signatures` view (model-signing bundles)
    install_reviews()  # risk acceptances; the artifacts' `report` and `statements` views
    install_weights()  # after risk: fingerprints, findings and decisions on them
    evals_lifespan = install_evals(engine, settings)  # fails runs whose worker died
    checkpointer = wal_checkpointer(engine)  # SQLite, engines made for a server process
    app = Litestar(
        route_handlers=route_handlers,
        dependencies={
            "db_session": Provide(provide_db_session),
            "caller": Provide(provide_request_caller),
        },
        exception_handlers={Exception: exception_handler, HTTPException: exception_handler},
        state=State({"engine": engine, "settings": settings}),
        request_max_body_size=settings.max_body_bytes,
        request_class=StrictRequest,  # JSON bodies: UTF-8, depth, scalar values, int64
        before_request=_check_request_text,  # path and query: UTF-8 without NUL
        after_request=_security_headers,  # CSP 'self' on every page, nosniff everywhere
        openapi_config=OpenAPIConfig(
            title="Studbook",
            version="0.1.0",
            description="Model-provenance registry: signed lineage, trait-transfer risk, and a "
            "transparency log. Authenticate with `Authorization: Bearer <token>`; the log's "
            "key, checkpoint and proofs and /healthz need no token. Every error answers the "
            "`ErrorBody` shape naming the `field` at fault; a method a path does not offer "
            "answers 405 with `Allow`.",
            path="/docs",
            # Served from the package (no CDN), so /docs works offline and under CSP 'self'.
            render_plugins=[LocalSwaggerPlugin(path=["/", "/swagger"])],
            components=Components(security_schemes=SECURITY_SCHEMES),
        ),
        on_startup=[checkpointer.start] if checkpointer else [],
        # Run in reverse: the checkpointer finishes before the engine closes its connections.
        on_shutdown=[
            lambda: engine.dispose(),
            *([lambda: checkpointer.stop()] if checkpointer else []),
        ],
        lifespan=[evals_lifespan],
    )
    describe_operations(app)  # per-route security and every error answer, from the routes
    return app


# The collector's thresholds in a server process (CPython's defaults are 700, 10, 10).
GC_THRESHOLDS = (10_000, 20, 100)


def serve_app() -> Litestar:
    """The app for one `studbook serve` process (uvicorn's factory, in every worker).

    What `create_app` builds, with two settings for a long-running process that tests and
    one-shot commands do not want:

    - On SQLite, WAL checkpoints run in a background thread (`db.WalCheckpointer`) instead of
      in the commit that crosses 1,000 pages, which on a large registry is every batch commit.
    - The garbage collector leaves alone the objects that exist once the app is built
      (`gc.freeze`: modules, routes, models, compiled statements) and runs its young
      generation every 10,000 allocations instead of 700. A batch of 1,000 registrations
      keeps tens of thousands of objects alive until it answers; with the defaults each batch
      ran about 100 collections, one in ten of them re-scanning the startup heap too (90 ms a
      batch, measured in process; a sixth of the time under the write lock on a registry of
      1.6M artifacts), against 5 collections and 8 ms once tuned. Nothing here holds
      reference cycles for long, and memory is still reclaimed by reference counts.

    Measured with `bench/hub_import.py` (README, Performance).
    """
    import gc

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url, background_checkpoints=True)
    app = create_app(settings, engine)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def _domain_routers() -> list[Any]:
    """Routers of domains that extend the core (risk, log, evals, web page)."""
    from .evals.controllers import EvalController
    from .imports.controllers import ImportController
    from .log.controllers import LogController
    from .reviews.controllers import ReviewController
    from .risk.controllers import RiskController
    from .sessions.controllers import SessionController
    from .web.controllers import routers as web_routers
    from .weights.controllers import WeightsController

    return [
        *web_routers(),
        LogController,
        RiskController,
        EvalController,
        SessionController,
        ReviewController,
        ImportController,
        WeightsController,
    ]
