"""`studbook worker`: takes queued eval runs, runs them, and signs what they produced.

One worker process supervises one run at a time per slot (`--concurrency`):

1. It claims the run (`queued` -> `running`, stamped with its name, host and pid).
2. It starts the eval in a child process (`registry.evals.child`) at low priority, and while the
   child runs it writes one heartbeat a few seconds with the latest progress and status lines,
   and reads back `cancel_requested`. A cancelled run is told to stop at its next progress
   report, and is ended after `eval_cancel_grace_s` if it does not.
3. When the eval succeeds, it registers the run's lineage (base -> teacher -> generated data ->
   filtered data -> students, as the result's `lineage` section declares) and then an
   eval-result statement about the students and teachers, each signed with the worker's own
   key and accepted through `attestations.service.submit`: the same verification, log append
   and risk refresh as any write, so the results are in the log and the graph like everything
   else. Then it stores the result and the figure and marks the run `succeeded`.
4. Any other end is recorded with its reason: `failed` (the eval's error, the child's exit
   status or signal, the worker being stopped) or `cancelled`.

If the worker itself dies, nobody is left to record that; `service.reap`, run by every API
process and every worker, fails the run from its stale heartbeat or its vanished process.

Identity. The worker signs as the principal `eval_worker_principal` (role registrar), created on
first start like the first admin, with an Ed25519 key kept in `eval_worker_key_file` (created
with mode 0600) and registered to that principal. Workers on several hosts each have their own
key, all registered to the same principal.

Queues. On SQLite the worker polls the `eval_runs` table (`queue.claim`); on PostgreSQL it runs
a procrastinate worker whose task is this same supervision (see `queue`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue as queue_module
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from lineage import dsse
from lineage.digests import file_sha256
from lineage.evalresult import eval_result_statement, run_registrations
from lineage.private_files import PRIVATE_DIR_MODE, ensure_private_dir, write_private
from lineage.statements import registration_statement, sign_statement

from ..auth import Caller, Role
from ..db import begin_write
from ..errors import RegistryError
from ..keys.service import verified_key_row
from ..models import Artifact, EvalPlot, EvalRun, Principal, SigningKey, utcnow
from ..settings import Settings
from . import child, queue
from .schemas import EvalStatus

log = logging.getLogger("studbook.evals")
_R = EvalRun.__table__  # type: ignore[attr-defined]
_A = Artifact.__table__  # type: ignore[attr-defined]
MAX_MESSAGES = 30


class WorkerSetupError(RegistryError):
    """The worker cannot take up its identity (a misconfiguration an operator must fix)."""


# ---------------------------------------------------------------------------- identity


@dataclass(frozen=True)
class Identity:
    """Who the worker signs as."""

    caller: Caller
    signer: dsse.Signer


def _load_or_create_key(path: Path) -> dsse.Signer:
    if not path.exists():
        if not path.parent.exists():
            ensure_private_dir(path.parent)
        key = dsse.generate_private_key()
        # Written whole, 0600 from creation; without overwrite, two workers starting together
        # keep the first one's key.
        with contextlib.suppress(FileExistsError):
            write_private(path, dsse.private_key_pem(key))
    return dsse.Signer(dsse.load_private_key(path.read_bytes()))


def ensure_identity(engine: Engine, settings: Settings) -> Identity:
    """The worker's principal and key, created and registered on first start.

    Raises:
        WorkerSetupError: the principal exists with another role, or the key is revoked or
            registered to someone else.
    """
    signer = _load_or_create_key(settings.eval_worker_key_path)
    name = settings.eval_worker_principal
    for attempt in (1, 2):
        try:
            with Session(engine, expire_on_commit=False) as session:
                begin_write(session)
                principal = session.scalars(
                    select(Principal).where(Principal.name == name)  # type: ignore[arg-type]
                ).first()
                if principal is None:
                    principal = Principal(name=name, role=Role.REGISTRAR.value)
                    session.add(principal)
                    session.flush()
                elif principal.role not in (Role.REGISTRAR.value, Role.ADMIN.value):
                    raise WorkerSetupError(
                        f"principal {name!r} has role {principal.role!r}; the eval worker "
                        "registers lineage and needs 'registrar'",
                        field="eval_worker_principal",
                    )
                key = session.get(SigningKey, signer.keyid)
                if key is None:  # registered like any key: with its proof of possession
                    proof = dsse.key_possession_proof(signer, name)
                    assert principal.id is not None
                    session.add(verified_key_row(signer.public_key, name, proof, principal.id))
                elif key.principal_id != principal.id:
                    raise WorkerSetupError(
                        f"the worker key {signer.keyid} is registered to another principal",
                        field="eval_worker_key_file",
                    )
                elif key.revoked_at is not None:
                    raise WorkerSetupError(
                        f"the worker key {signer.keyid} was revoked; remove "
                        f"{settings.eval_worker_key_path} to make a new one",
                        field="eval_worker_key_file",
                    )
                assert principal.id is not None
                caller = Caller(principal.id, name, Role(principal.role))
                session.commit()
                return Identity(caller, signer)
        except IntegrityError:  # another worker created the same principal or key meanwhile
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def install_ingest(engine: Engine, settings: Settings) -> None:
    """Set up what `submit` needs in a worker process, as `create_app` does in the API: the
    log's hooks and key, the risk engine, weights findings, and the eval-result predicate."""
    from ..log.service import install as install_log
    from ..risk import install as install_risk
    from ..weights import install as install_weights
    from . import install_predicates

    install_log(engine, settings)
    install_risk()
    install_weights()  # after risk, as in create_app
    install_predicates()


# ---------------------------------------------------------------------------- one run


_DIGEST = re.compile(r"[0-9a-f]{64}")
# Stat signature of a candidate (every file's relative path, size, inode and mtime) -> its digest:
# a model is hashed once per worker process, not once per run, while any change to its files
# changes the signature and so forces a new hash.
_DIGEST_CACHE: dict[tuple[str, tuple[tuple[str, int, int, int], ...]], str] = {}
MAX_CANDIDATES = 10_000
"""Entries of the model directory a lookup considers at most (a guard, not a tuning knob)."""


def _signature(path: Path) -> tuple[tuple[str, int, int, int], ...] | None:
    """Every file under `path` as (relative path, size, inode, mtime), or None when the candidate
    holds a symlink or a special file (the digest would refuse it anyway)."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        return (("", st.st_size, st.st_ino, st.st_mtime_ns),)
    out: list[tuple[str, int, int, int]] = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        for name in [*dirs, *files]:
            full = os.path.join(folder, name)
            est = os.lstat(full)
            if stat.S_ISDIR(est.st_mode):
                continue
            if not stat.S_ISREG(est.st_mode):
                return None
            out.append((os.path.relpath(full, path), est.st_size, est.st_ino, est.st_mtime_ns))
    return tuple(sorted(out))


def _candidates(root: Path) -> list[Path]:
    """Entries of the model directory that may hold one model, never following a link.

    A candidate is a plain file directly under the root (a single-file model: GGUF,
    safetensors), or a folder at any depth that directly holds a plain file (a model folder,
    however the operator nests them: `acme/tiny/1`). A folder named by the digest itself is
    listed first by the caller. Symlinks are skipped: they could point anywhere.
    """
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink())
        plain = [f for f in sorted(files) if stat.S_ISREG(os.lstat(here / f).st_mode)]
        if here == root:
            found.extend(here / f for f in plain)
        elif plain:
            found.append(here)
        if len(found) > MAX_CANDIDATES:
            break
    return found[:MAX_CANDIDATES]


def _inside(root: Path, path: Path) -> bool:
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([real_root, real]) == real_root and real != real_root


def find_model_files(settings: Settings, digest: str, label: str) -> Path:
    """The file or folder in the configured model directory whose content digest is `digest`.

    Names are never made into paths: an artifact's name is whatever a registrar typed
    (`/etc@ssl`, `../x@1`), so the worker looks its files up by what they are, not by what they
    are called. It walks the configured directory without following links, digests the
    candidates (cached per process by their files' stat signature) and returns the first one
    whose digest is `digest`. A symlink, or anything that resolves outside the directory, is
    never a candidate, and the error names no file of the directory.

    Args:
        settings: gives `eval_model_dir`.
        digest: the registered artifact's 64-hex digest.
        label: the artifact's `name@version`, for messages only.

    Raises:
        WorkerSetupError: no model directory is configured, or nothing in it has that digest.
    """
    from lineage.digests import artifact_digest
    from lineage.errors import DigestError

    configured = settings.eval_model_dir
    if configured is None:
        raise WorkerSetupError(
            f"this worker has no files for {label}: STUDBOOK_EVAL_MODEL_DIR is not set",
            field="base",
        )
    if not _DIGEST.fullmatch(digest):
        raise WorkerSetupError(f"{label} has no content digest to look up", field="base")
    root = Path(os.path.realpath(configured))
    if not root.is_dir():
        raise WorkerSetupError(
            f"this worker has no files for {label}: the model directory does not exist",
            field="base",
        )
    named = root / digest  # the digest is 64 hex digits: a safe name, never a path
    ordered = [named] if os.path.lexists(named) else []
    ordered += [c for c in _candidates(root) if c != named]
    for candidate in ordered:
        try:
            if candidate.is_symlink() or not _inside(root, candidate):
                continue
            signature = _signature(candidate)
            if signature is None:
                continue
            key = (str(candidate), signature)
            got = _DIGEST_CACHE.get(key)
            if got is None:
                got = artifact_digest(candidate)
                _DIGEST_CACHE[key] = got
        except (OSError, DigestError):
            continue  # unreadable, changing under us or holding a link: not this model
        if got == digest:
            return candidate
    raise WorkerSetupError(
        f"this worker has no files for {label}: nothing in its model directory has digest {digest}",
        field="base",
    )


class RunStopped(Exception):
    """The supervision ended without a result; `status` and `reason` say how."""

    def __init__(self, status: EvalStatus, reason: str | None) -> None:
        super().__init__(reason or status.value)
        self.status = status
        self.reason = reason


@dataclass
class Supervisor:
    """Runs one claimed run to its end and records that end."""

    engine: Engine
    settings: Settings
    identity: Identity
    run_id: int
    worker: str
    should_stop: Callable[[], bool] = lambda: False
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None

    def run(self) -> EvalStatus:
        """Supervise the run; returns its final status."""
        t0 = time.perf_counter()
        try:
            spec = self._spec()
            code = self._run_child(spec)
            self.timings["eval_s"] = round(time.perf_counter() - t0, 3)
            out_dir = Path(spec["out_dir"])
            if code == child.EXIT_OK:
                self._finish(out_dir, spec)
                return EvalStatus.SUCCEEDED
            raise self._stopped(code, out_dir)
        except RunStopped as stop:
            self._close(stop.status, stop.reason)
            return stop.status
        except Exception as exc:  # every failure is recorded on the run
            log.exception("eval run %s failed", self.run_id)
            message = exc.message if isinstance(exc, RegistryError) else f"{exc}"
            self._close(EvalStatus.FAILED, f"{type(exc).__name__}: {message}")
            return EvalStatus.FAILED

    # -- the child

    def _spec(self) -> dict[str, Any]:
        with Session(self.engine) as session:
            run = session.get(EvalRun, self.run_id)
            assert run is not None
            spec: dict[str, Any] = {
                "experiment": run.experiment,
                "preset": run.preset,
                "overrides": dict(run.overrides),
                "nice": self.settings.eval_nice,
                "idle_priority": self.settings.eval_idle_priority,
            }
            for key, art_id in (("base", run.base_id), ("cross_base", run.cross_base_id)):
                if art_id is not None:
                    art = session.get(Artifact, art_id)
                    assert art is not None
                    label = f"{art.name}@{art.version}"
                    path = find_model_files(self.settings, art.digest, label)
                    spec["model_dir"] = os.path.realpath(self.settings.eval_model_dir or "")
                    spec[key] = {
                        "path": str(path),
                        "digest": art.digest,
                        "ref": f"{art.name}@{art.version}",
                    }
        # Run directories hold what the eval wrote (generated data, weights, logs): readable by
        # the worker's user only, like the rest of the data folder.
        runs = ensure_private_dir(self.settings.eval_runs_path).resolve()
        out_dir = runs / f"run-{self.run_id}"
        if out_dir.exists():  # a retried attempt starts clean
            shutil.rmtree(out_dir)
        os.mkdir(out_dir, PRIVATE_DIR_MODE)
        spec["out_dir"] = str(out_dir)
        return spec

    def _run_child(self, spec: dict[str, Any]) -> int:
        out_dir = Path(spec["out_dir"])
        spec_file = out_dir / "spec.json"
        write_private(spec_file, json.dumps(spec).encode("utf-8"))
        read_fd, write_fd = os.pipe()
        with open(out_dir / child.LOG_FILE, "wb") as logfile:
            proc = subprocess.Popen(
                [sys.executable, "-m", "registry.evals.child", str(spec_file), str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                close_fds=True,
                # A session of its own, so that its scheduling group can be the lowest (see
                # `child._idle_priority`); it still ends with the worker (its stdin closes).
                start_new_session=self.settings.eval_idle_priority,
            )
        os.close(write_fd)
        inbox: queue_module.Queue[dict[str, Any]] = queue_module.Queue()
        reader = threading.Thread(target=_read_lines, args=(read_fd, inbox), daemon=True)
        reader.start()
        try:
            return self._watch(proc, inbox)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            reader.join(timeout=5)
            self._drain(inbox)

    def _watch(self, proc: subprocess.Popen[bytes], inbox: queue_module.Queue[Any]) -> int:
        beat_every = self.settings.eval_heartbeat_s
        next_beat = 0.0
        stop_asked_at: float | None = None
        while True:
            code = proc.poll()
            if code is not None:
                return code
            self._drain(inbox, wait=min(0.2, beat_every))
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + beat_every
                # A database blip costs one beat; if the database stays away, the heartbeat
                # goes stale and a reaper fails the run.
                try:
                    cancel = self._beat()
                except OperationalError as exc:
                    log.warning("run %s: heartbeat failed: %s", self.run_id, exc)
                    cancel = False
                if cancel and self.stop_reason is None:
                    self.stop_reason = "cancelled"
                if self.should_stop() and self.stop_reason is None:
                    self.stop_reason = "the worker was stopped during the run; submit it again"
            if self.stop_reason is not None and stop_asked_at is None:
                stop_asked_at = now
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.write(b"cancel\n")
                    proc.stdin.flush()
            grace = self.settings.eval_cancel_grace_s
            if stop_asked_at is not None and now - stop_asked_at > grace:
                proc.terminate()
                try:
                    return proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    return proc.wait()

    def _drain(self, inbox: queue_module.Queue[Any], wait: float = 0.0) -> None:
        try:
            msg = inbox.get(timeout=wait) if wait else inbox.get_nowait()
        except queue_module.Empty:
            return
        while True:
            if msg.get("t") == "progress":
                self.progress[str(msg["stage"])] = {
                    "stage": str(msg["stage"]),
                    "done": int(msg["done"]),
                    "total": int(msg["total"]),
                }
            elif msg.get("t") == "log":
                self.messages = [*self.messages, str(msg.get("msg", ""))][-MAX_MESSAGES:]
            try:
                msg = inbox.get_nowait()
            except queue_module.Empty:
                return

    def _beat(self) -> bool:
        """Heartbeat with progress; returns whether a cancel was requested.

        Raises:
            RunStopped: the run is not ours any more (a reaper failed it meanwhile).
        """
        with Session(self.engine) as session:
            begin_write(session)
            row = session.execute(
                update(_R)
                .where(_R.c.id == self.run_id, _R.c.status == EvalStatus.RUNNING.value)
                .where(_R.c.worker == self.worker)
                .values(
                    heartbeat_at=utcnow(),
                    progress=list(self.progress.values()),
                    messages=self.messages,
                )
                .returning(_R.c.cancel_requested)
            ).first()
            session.commit()
        if row is None:
            raise RunStopped(EvalStatus.FAILED, None)  # already recorded by whoever took it
        return bool(row.cancel_requested)

    def _stopped(self, code: int, out_dir: Path) -> RunStopped:
        if self.stop_reason == "cancelled":
            return RunStopped(EvalStatus.CANCELLED, None)
        if self.stop_reason is not None:
            return RunStopped(EvalStatus.FAILED, self.stop_reason)
        error: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            error = json.loads((out_dir / child.ERROR_FILE).read_text())
        if code == child.EXIT_EVAL_ERROR:
            return RunStopped(EvalStatus.FAILED, str(error.get("message", "the eval failed")))
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            return RunStopped(
                EvalStatus.FAILED, f"the eval process was killed by signal {name}{hint}"
            )
        detail = error.get("message") or f"see {out_dir / child.LOG_FILE} on {self.worker}"
        return RunStopped(
            EvalStatus.FAILED, f"the eval process exited with status {code}: {detail}"
        )

    # -- the end

    def _close(self, status: EvalStatus, reason: str | None, **values: Any) -> None:
        with Session(self.engine) as session:
            begin_write(session)
            stmt = (
                update(_R)
                .where(_R.c.id == self.run_id, _R.c.status == EvalStatus.RUNNING.value)
                .where(_R.c.worker == self.worker)
                .values(
                    status=status.value,
                    finished_at=utcnow(),
                    heartbeat_at=utcnow(),
                    progress=list(self.progress.values()),
                    messages=self.messages,
                    timings=self.timings,
                    **({"error": reason[:4000]} if reason else {}),
                    **values,
                )
            )
            session.execute(stmt)
            session.commit()

    def _finish(self, out_dir: Path, spec: dict[str, Any]) -> None:
        """Register the run's lineage and result, signed by the worker; store the figure."""
        t0 = time.perf_counter()
        result = json.loads((out_dir / "result.json").read_text())
        _pin_bases(result, spec)
        self.timings.update(result.get("timings") or {})  # the experiment's own stages
        plot = _plot(result, out_dir)
        files = {"plot": {"path": result["files"]["plot"], "sha256": plot[0]}} if plot else {}
        artifacts, attestation_id = register_result(
            self.engine, self.identity, result, run_id=str(self.run_id), files=files
        )
        self.timings["register_s"] = round(time.perf_counter() - t0, 3)
        with Session(self.engine) as session:
            begin_write(session)
            if plot is not None:
                session.execute(
                    insert(EvalPlot.__table__).values(  # type: ignore[attr-defined]
                        run_id=self.run_id, sha256=plot[0], png=plot[1]
                    )
                )
            session.commit()
        self._close(
            EvalStatus.SUCCEEDED,
            None,
            result=_public_result(result),
            artifacts=artifacts,
            result_attestation_id=attestation_id,
        )


def _read_lines(fd: int, inbox: queue_module.Queue[dict[str, Any]]) -> None:
    with os.fdopen(fd, "r") as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                inbox.put(json.loads(line))


def _pin_bases(result: dict[str, Any], spec: dict[str, Any]) -> None:
    """Name registered bases by digest in the recorded config, not by this host's paths."""
    config = result.get("config") or {}
    for key, setting in (("base", "model"), ("cross_base", "cross_model")):
        base = spec.get(key)
        if base and config.get(setting) == base["path"]:
            config[setting] = f"sha256:{base['digest']}"


def _plot(result: dict[str, Any], out_dir: Path) -> tuple[str, bytes] | None:
    rel = (result.get("files") or {}).get("plot")
    if not rel or not (out_dir / rel).is_file():
        return None
    path = out_dir / rel
    return file_sha256(path), path.read_bytes()


def _public_result(result: dict[str, Any]) -> dict[str, Any]:
    """The result as stored on the run: all of it but the worker's local paths."""
    out = {k: v for k, v in result.items() if k != "out_dir"}
    lineage = dict(out.get("lineage") or {})
    lineage["artifacts"] = [
        {k: v for k, v in a.items() if k != "path"} for a in lineage.get("artifacts", [])
    ]
    out["lineage"] = lineage
    return out


def register_result(
    engine: Engine,
    identity: Identity,
    result: dict[str, Any],
    *,
    run_id: str,
    files: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Sign and submit a run's lineage, then its eval-result statement.

    Returns:
        The run's artifacts as registered (role, kind, digest, ref, attestation id) and the id
        of the eval-result attestation.
    """
    from ..attestations.service import submit

    lineage = result.get("lineage") or {}
    digests = [a["digest"] for a in lineage.get("artifacts", [])]
    with Session(engine) as session:
        known = {
            r.digest: (r.name, r.version)
            for r in session.execute(
                select(_A.c.digest, _A.c.name, _A.c.version).where(_A.c.digest.in_(digests))
            )
        }
    version = f"run-{run_id}"
    attested: dict[str, int] = {}
    for reg in run_registrations(result, run_id=run_id, version=version, known=known):
        envelope = sign_statement(registration_statement(reg), identity.signer)
        with Session(engine, expire_on_commit=False) as session:
            sub = submit(session, identity.caller, envelope.to_json())
            assert sub.attestation.id is not None
            attested[reg.artifact.digest] = sub.attestation.id
    statement = eval_result_statement(result, run_id, files=files)
    with Session(engine, expire_on_commit=False) as session:
        sub = submit(session, identity.caller, sign_statement(statement, identity.signer).to_json())
        assert sub.attestation.id is not None
        result_id = sub.attestation.id
    with Session(engine) as session:
        refs = {
            r.digest: f"{r.name}@{r.version}"
            for r in session.execute(
                select(_A.c.digest, _A.c.name, _A.c.version).where(_A.c.digest.in_(digests))
            )
        }
    artifacts = [
        {
            "role": a["role"],
            "kind": a["kind"],
            "digest": a["digest"],
            "ref": refs.get(a["digest"], "?"),
            "attestation_id": attested.get(a["digest"]),
        }
        for a in lineage.get("artifacts", [])
    ]
    return artifacts, result_id


# ---------------------------------------------------------------------------- the worker


@dataclass
class Worker:
    """A worker process: its name, its identity, and the stop flag its signals set.

    The identity (principal and key) is taken up at the first run, not at start: a registry
    whose local worker never ran an eval has no eval-worker principal.
    """

    engine: Engine
    settings: Settings
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stopping: threading.Event = field(default_factory=threading.Event)
    parent_pid: int | None = None
    _identity: Identity | None = None
    _identity_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def identity(self) -> Identity:
        """Who this worker signs as (created and registered on first use)."""
        with self._identity_lock:
            if self._identity is None:
                self._identity = ensure_identity(self.engine, self.settings)
                log.info(
                    "eval worker %s signs as %s (key %s)",
                    self.name,
                    self._identity.caller.name,
                    self._identity.signer.keyid[:16],
                )
            return self._identity

    def should_stop(self) -> bool:
        """Stop on a signal, or when the server that started this worker is gone."""
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.warning("the server that started this worker is gone; stopping")
            self.stopping.set()
        return self.stopping.is_set()

    def process(self, run_id: int, should_stop: Callable[[], bool] | None = None) -> EvalStatus:
        """Claim and supervise one run; `cancelled` without doing anything when it is no longer
        queued (cancelled, or taken by another worker).

        Raises:
            WorkerSetupError: the worker cannot sign (then it takes no run at all).
        """
        identity = self.identity
        with Session(self.engine) as session:
            if not queue.claim(session, run_id, self.name, socket.gethostname(), os.getpid()):
                run = session.get(EvalRun, run_id)
                return EvalStatus(run.status) if run else EvalStatus.CANCELLED
        log.info("run %s: started by %s", run_id, self.name)
        status = Supervisor(
            self.engine,
            self.settings,
            identity,
            run_id,
            self.name,
            should_stop=should_stop or self.should_stop,
        ).run()
        log.info("run %s: %s", run_id, status.value)
        return status

    def reap_forever(self) -> None:
        """Fail dead runs every `eval_reap_interval_s` until the worker stops."""
        from .service import reap

        while True:
            with contextlib.suppress(OperationalError), Session(self.engine) as session:
                for run_id in reap(session, self.settings):
                    log.warning("run %s: its worker is gone; marked failed", run_id)
            if self.stopping.wait(self.settings.eval_reap_interval_s):
                return

    def poll_table(self, once: bool = False) -> None:
        """SQLite: claim and run queued runs until stopped (or the parent process is gone)."""
        while not self.should_stop():
            with Session(self.engine) as session:
                run_id = queue.next_queued(session)
            if run_id is not None:
                try:
                    self.process(run_id)
                except WorkerSetupError as exc:  # nothing can run until an operator fixes it
                    log.error("cannot run evals: %s", exc.message)
                    self.stopping.set()
                continue
            if once:
                return
            self.stopping.wait(self.settings.eval_poll_s)

    def run_procrastinate(self, concurrency: int, once: bool = False) -> None:
        """PostgreSQL: a procrastinate worker on the eval queue."""
        from procrastinate import RetryStrategy

        app = queue.procrastinate_app(self.settings.resolved_database_url)

        @app.task(
            name=queue.TASK,
            queue=queue.QUEUE,
            pass_context=True,
            # Retries cover losing the database before the run was claimed; a run that started
            # is never silently restarted: its failure is recorded on the run.
            retry=RetryStrategy(max_attempts=3, wait=5, retry_exceptions={OperationalError}),
        )
        def run_eval(context: Any, run_id: int) -> str:
            def stop() -> bool:
                return self.should_stop() or bool(context.should_abort())

            status = self.process(run_id, should_stop=stop)
            if status is EvalStatus.FAILED:
                raise RuntimeError(f"eval run {run_id} failed (see GET /v1/evals/{run_id})")
            return status.value

        app.run_worker(
            queues=[queue.QUEUE],
            concurrency=concurrency,
            name=self.name,
            wait=not once,
            # SIGTERM/SIGINT: procrastinate stops fetching, gives the run this long to end,
            # then asks it to abort (`context.should_abort`), which the supervisor obeys.
            shutdown_graceful_timeout=self.settings.eval_cancel_grace_s,
        )


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 1,
    parent_pid: int | None = None,
    once: bool = False,
) -> None:
    """The body of `studbook worker`: set up, then serve the queue until SIGTERM/SIGINT."""
    from ..db import make_engine

    engine = make_engine(settings.resolved_database_url)
    install_ingest(engine, settings)
    worker = Worker(engine, settings, parent_pid=parent_pid)
    reaper = threading.Thread(target=worker.reap_forever, name="reaper", daemon=True)
    reaper.start()
    postgres = queue.is_postgres(engine)
    log.info(
        "eval worker %s, queue: %s",
        worker.name,
        "procrastinate" if postgres else "eval_runs table",
    )
    try:
        if postgres:
            worker.identity  # noqa: B018  (a worker started for evals fails now if it cannot sign)
            worker.run_procrastinate(concurrency, once=once)
        else:
            _serve_table(worker, concurrency, once)
    finally:
        worker.stopping.set()
        engine.dispose()


def _serve_table(worker: Worker, concurrency: int, once: bool) -> None:
    def on_signal(signum: int, _frame: Any) -> None:
        log.warning("received %s: stopping", signal.Signals(signum).name)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    slots = [
        threading.Thread(target=worker.poll_table, args=(once,), daemon=True)
        for _ in range(max(1, concurrency))
    ]
    for t in slots:
        t.start()
    while any(t.is_alive() for t in slots):
        for t in slots:
            t.join(timeout=0.5)


# ---------------------------------------------------------------------------- local worker


class LocalWorker:
    """The worker `studbook serve` runs beside itself on SQLite, restarted if it dies, so that
    `serve` alone can run evals while the API process never does."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._keep, name="local-eval-worker", daemon=True)

    def start(self) -> LocalWorker:
        """Start the worker process and its keeper thread."""
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "registry.commands", "worker", "--parent-pid", str(os.getpid())]
        )

    def _keep(self) -> None:
        while not self._stop.wait(1.0):
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None and not self._stop.is_set():
                log.error("the local eval worker exited with status %s; restarting it", code)
                if self._stop.wait(5.0):
                    return
                self._spawn()

    def stop(self) -> None:
        """Stop the worker (its current run is recorded as failed) and wait for it."""
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(self._settings.eval_cancel_grace_s + 10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def start_local_worker(settings: Settings) -> LocalWorker | None:
    """For `studbook serve`: a local worker on SQLite (unless disabled), else None."""
    if not settings.eval_local_worker or not settings.resolved_database_url.startswith("sqlite"):
        return None
    return LocalWorker(settings).start()
