"""The eval service: queued trait-transfer runs, workers, and signed results in the graph.

`install` is what `create_app` calls; `install_predicates` is the part a worker process needs
too (it ingests what it produces through the same `submit` as the API). Nothing here imports
torch: the experiments run in worker child processes only (`worker`, `child`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

log = logging.getLogger("studbook.evals")


def install_predicates() -> None:
    """Accept eval-result statements (from registrars and reviewers), rebuild their links on a
    replay, and serve `/v1/artifacts/<ref>/evals`."""
    from .. import replay
    from ..artifacts import controllers as artifacts
    from ..attestations import service as attestations
    from ..auth import Role
    from ..models import Artifact
    from . import service

    handler = attestations.PredicateHandler(
        (Role.REGISTRAR, Role.REVIEWER), service.apply_eval_result
    )
    for predicate in service.PREDICATES:
        attestations.register_predicate(predicate, handler)
    for table in service.DERIVED_TABLES:
        replay.register_derived(table)

    def evals_view(session: Session, artifact: Artifact, params: dict[str, str]) -> Any:
        return service.results_for(session, artifact)

    artifacts.register_view("evals", evals_view)


def install(engine: Engine, settings: Any) -> Callable[[Any], Any]:
    """Register the predicate and views; return the app lifespan that fails dead runs.

    Every API process looks for runs whose worker died (see `service.reap`), so that a run is
    never left `running` even when no worker is left to notice.
    """
    install_predicates()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(
            target=_reap_until, args=(engine, settings, stop), name="eval-reaper", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    return lifespan


def _reap_until(engine: Engine, settings: Any, stop: threading.Event) -> None:
    from .service import reap

    while not stop.wait(settings.eval_reap_interval_s):
        try:
            with Session(engine) as session:
                for run_id in reap(session, settings):
                    log.warning("eval run %s: its worker is gone; marked failed", run_id)
        except Exception:  # a failed pass is retried at the next tick
            log.exception("looking for dead eval runs failed")
