"""The queue of eval runs, on each database.

PostgreSQL: procrastinate. A run is deferred as a job (`run_id` in its arguments, a lock and a
queueing lock named after the run) inside the same transaction that inserts the `eval_runs` row,
through that transaction's own connection: either both exist or neither does, and there is no
window in which a worker could pick up a job whose run it cannot see. `studbook worker`
processes, on any number of hosts, fetch jobs with procrastinate (LISTEN/NOTIFY, row locks,
retries) and run them. Procrastinate's tables and functions live in the `procrastinate` schema
(migration 0004), so every connection that speaks to them puts it on its search path.

SQLite: there is no job library for SQLite, and no other host to share it with; the `eval_runs`
table is the queue. A worker claims the oldest queued run with one conditional UPDATE under the
database write lock, so two local workers never claim the same run.

On both, `eval_runs.status` is the single source of truth for a run: a job whose run is no
longer `queued` when it is fetched (cancelled meanwhile) does nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..db import begin_write
from ..models import EvalRun, utcnow
from .schemas import EvalStatus

QUEUE = "studbook-evals"
TASK = "studbook.evals.run"
SCHEMA = "procrastinate"
_R = EvalRun.__table__  # type: ignore[attr-defined]


def is_postgres(bind: Session | Engine) -> bool:
    """True when the registry runs on PostgreSQL (the procrastinate queue)."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def lock_name(run_id: int) -> str:
    """The procrastinate lock and queueing lock of a run's job."""
    return f"studbook-eval-run-{run_id}"


def conninfo(database_url: str) -> str:
    """A libpq connection string for procrastinate from the registry's SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def procrastinate_app(database_url: str | None = None) -> Any:
    """A procrastinate App for the eval queue.

    Without a URL it can only act through a connection it is handed (deferring and cancelling
    inside the API's own transaction); workers pass the URL and open it.
    """
    import procrastinate

    kwargs: dict[str, Any] = {}
    if database_url is not None:
        kwargs = {
            "conninfo": conninfo(database_url),
            "kwargs": {"options": f"-c search_path={SCHEMA}"},
            "min_size": 1,
            "max_size": 4,
        }
    return procrastinate.App(connector=procrastinate.PsycopgConnector(**kwargs))


def _procrastinate_connection(session: Session) -> Any:
    """The psycopg connection under the session's transaction, with procrastinate's schema on
    its search path until the transaction ends."""
    session.execute(text(f"SET LOCAL search_path TO {SCHEMA}, public"))
    return session.connection().connection.driver_connection


def enqueue(session: Session, run_id: int) -> int | None:
    """Queue a run inside the session's transaction; returns the job id (PostgreSQL) or None
    (SQLite, where the queued row is the queue)."""
    if not is_postgres(session):
        return None
    app = procrastinate_app()
    deferrer = app.configure_task(
        TASK,
        queue=QUEUE,
        lock=lock_name(run_id),
        queueing_lock=lock_name(run_id),
        connection=_procrastinate_connection(session),
    )
    return int(deferrer.defer(run_id=run_id))


def cancel_job(session: Session, job_id: int | None) -> None:
    """Withdraw a queued run's job, inside the session's transaction (PostgreSQL)."""
    if job_id is None or not is_postgres(session):
        return
    app = procrastinate_app()
    app.job_manager.cancel_job_by_id(job_id, connection=_procrastinate_connection(session))


def fail_job(session: Session, job_id: int | None) -> None:
    """Close the job of a run whose worker died: procrastinate would otherwise keep it `doing`
    until a worker restarts and prunes the dead one (PostgreSQL)."""
    if job_id is None or not is_postgres(session):
        return
    _procrastinate_connection(
        session
    )  # the schema on the search path, for the function's own queries
    session.execute(
        text(
            "SELECT procrastinate_finish_job_v1(id, 'failed', false) FROM procrastinate_jobs "
            "WHERE id = :id AND status = 'doing'"
        ),
        {"id": job_id},
    )


def next_queued(session: Session) -> int | None:
    """The oldest queued run (a read; claiming it is a separate write)."""
    return session.scalar(
        select(_R.c.id).where(_R.c.status == EvalStatus.QUEUED.value).order_by(_R.c.id).limit(1)
    )


def claim(session: Session, run_id: int, worker: str, host: str, pid: int) -> bool:
    """Move a queued run to `running` for `worker`; commits. False if it was not queued any
    more (another worker claimed it, or it was cancelled)."""
    begin_write(session)
    now = utcnow()
    claimed = session.execute(
        update(_R)
        .where(_R.c.id == run_id, _R.c.status == EvalStatus.QUEUED.value)
        .values(
            status=EvalStatus.RUNNING.value,
            started_at=now,
            heartbeat_at=now,
            worker=worker,
            worker_host=host,
            worker_pid=pid,
            attempts=_R.c.attempts + 1,
        )
    ).rowcount
    session.commit()
    return bool(claimed == 1)
