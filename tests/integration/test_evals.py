"""The eval service on SQLite and PostgreSQL: a real `studbook worker` process runs a small
digits experiment submitted through the API; its lineage and signed result land in the graph,
a flag on its teacher marks the same-init student and not the cross-init one; a killed worker's
run ends `failed`, cancelling works, and bad submissions are refused with the field named.

The worker runs the queue of its database: procrastinate on PostgreSQL, the runs table on
SQLite. Each eval here takes a few seconds (mostly importing torch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from lineage import dsse
from lineage.evalresult import EVAL_RESULT_PREDICATE
from lineage.statements import PAYLOAD_TYPE
from registry.auth import Role
from registry.settings import Settings
from tests.support import Actor, make_actor, register, review_envelope

Client = TestClient[Any]

# Seconds of work, mostly imports: two seeds, a small net, little noise.
SMALL = {"seeds": 2, "hidden": 32, "noise_samples": 1024}
# Long enough to be caught running (a minute or more), stopped long before it ends.
LONG = {"seeds": 20, "hidden": 256, "noise_samples": 60_000, "student_epochs": 5}
TIMEOUT = 120.0


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The API's settings: look for dead runs twice a second."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        eval_reap_interval_s=0.5,
        eval_stale_after_s=30,
    )


@pytest.fixture
def empty_job_queue(engine: Engine) -> Iterator[None]:
    """Tables are emptied between tests and run ids restart; so must procrastinate's jobs."""

    def empty() -> None:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                tables = ("jobs", "events", "periodic_defers", "workers")
                names = ", ".join(f"procrastinate.procrastinate_{t}" for t in tables)
                conn.execute(text(f"TRUNCATE {names} CASCADE"))

    empty()
    yield
    empty()


@pytest.fixture
def start_worker(
    settings: Settings, database_url: str, tmp_path: Path, empty_job_queue: None
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDBOOK_")}
        env.update(
            STUDBOOK_DATABASE_URL=database_url,
            STUDBOOK_DATA_DIR=str(settings.data_dir),
            STUDBOOK_EVAL_HEARTBEAT_S="0.5",
            STUDBOOK_EVAL_POLL_S="0.2",
            STUDBOOK_EVAL_CANCEL_GRACE_S="5",
            STUDBOOK_EVAL_NICE="0",  # tests on a shared machine: no handicap
            STUDBOOK_EVAL_IDLE_PRIORITY="false",
        )
        env.update(extra)
        log = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "registry.commands", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the test can kill it with its evals
        )
        log.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def submit(client: Client, actor: Actor, body: dict[str, Any], status: int = 201) -> Any:
    r = client.post("/v1/evals", json=body, headers=actor.headers)
    assert r.status_code == status, r.text
    return r.json()


def wait_for(
    client: Client, actor: Actor, run_id: int, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        run = client.get(f"/v1/evals/{run_id}", headers=actor.headers).json()
        if done(run):
            return dict(run)
        assert time.monotonic() < deadline, run
        time.sleep(0.25)


def final(run: dict[str, Any]) -> bool:
    return run["status"] in ("succeeded", "failed", "cancelled")


def computing(run: dict[str, Any]) -> bool:
    """The eval process is past its imports and training."""
    return final(run) or any(s["done"] > 0 for s in run["progress"])


# ----------------------------------------------------------------------------- a full run


def test_a_digits_run_lands_signed_in_the_graph(
    client: Client,
    registrar: Actor,
    reviewer: Actor,
    start_worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    start_worker()
    queued = submit(
        client, reviewer, {"experiment": "digits", "preset": "smoke", "overrides": SMALL}
    )
    assert queued["status"] == "queued" and queued["requested_by"] == "reviewer"
    run = wait_for(client, reviewer, queued["id"], final)
    assert run["status"] == "succeeded", run["error"]
    assert run["progress"] and all(s["done"] == s["total"] for s in run["progress"])
    assert {"queued_s", "run_s", "eval_s", "register_s"} <= set(run["timings"])
    assert run["result"]["config"]["seeds"] == 2
    assert {"student_same_init", "student_cross_init"} <= set(run["metrics"])
    assert run["verdict"] and run["messages"]  # "seed 0: teacher ..., same-init ..."

    # Every artifact of the run is registered, each statement signed by the worker's key.
    keys = client.get("/v1/keys?principal=eval-worker", headers=reviewer.headers).json()
    verifier = dsse.Verifier(
        {k["keyid"]: dsse.load_public_key(k["public_key"]) for k in keys["data"]}
    )
    by_role = {a["role"]: a for a in run["artifacts"]}
    assert len(by_role) == 18  # per seed: 2 inits, teacher, 2 datasets, 4 students
    for att_id in [a["attestation_id"] for a in run["artifacts"]] + [run["result_attestation_id"]]:
        att = client.get(f"/v1/attestations/{att_id}", headers=reviewer.headers).json()
        assert att["principal"] == "eval-worker"
        verifier.verify(dsse.Envelope.from_json(att["envelope"]), payload_type=PAYLOAD_TYPE)
    result = client.get(
        f"/v1/attestations/{run['result_attestation_id']}", headers=reviewer.headers
    ).json()
    assert result["predicate_type"] == EVAL_RESULT_PREDICATE
    predicate = result["statement"]["predicate"]
    assert predicate["run_id"] == str(run["id"]) and predicate["experiment"] == "digits"
    assert predicate["metrics"] == run["metrics"]
    assert {s["as"] for s in predicate["subjects"]} == {"student", "teacher"}
    assert len(predicate["artifacts"]) == 18 and predicate["files"]["plot"]["sha256"]

    # The experiment's lineage, as the graph answers it.
    teacher, same, cross = (
        by_role[f"{r}/seed0"] for r in ("teacher", "student_same", "student_cross")
    )
    up = client.get(f"/v1/artifacts/{same['ref']}/lineage?depth=10", headers=reviewer.headers)
    edges = {(e["child"], e["relation"], e["parent"]) for e in up.json()["edges"]}
    filtered, data = by_role["filtered_dataset/seed0"], by_role["dataset/seed0"]
    assert {
        (same["digest"], "trained_on", filtered["digest"]),
        (same["digest"], "fine_tuned_from", by_role["init_a/seed0"]["digest"]),
        (filtered["digest"], "derived_from", data["digest"]),
        (data["digest"], "generated_by", teacher["digest"]),
        (teacher["digest"], "fine_tuned_from", by_role["init_a/seed0"]["digest"]),
    } <= edges

    # The result sits next to the models it measured.
    evals = client.get(f"/v1/artifacts/{same['ref']}/evals", headers=reviewer.headers).json()
    assert [(e["attestation_id"], e["part"]) for e in evals["data"]] == [
        (run["result_attestation_id"], "student")
    ]
    plot = client.get(f"/v1/evals/{run['id']}/plot", headers=reviewer.headers)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(b"\x89PNG")

    # Flag the teacher, citing the result: the same-init student is at risk, the cross-init not.
    evidence = (f"attestation:{run['result_attestation_id']}",)
    flag = review_envelope(reviewer.signer, teacher["digest"], "digits", evidence=evidence)
    assert client.post("/v1/attestations", json=flag, headers=reviewer.headers).status_code == 201
    assert (
        client.get(f"/v1/artifacts/{same['ref']}/risk", headers=reviewer.headers).json()["status"]
        == "at_risk"
    )
    assert (
        client.get(f"/v1/artifacts/{cross['ref']}/risk", headers=reviewer.headers).json()["status"]
        == "no_risk"
    )
    marked = {
        m["model"] for m in client.get("/v1/at-risk", headers=reviewer.headers).json()["data"]
    }
    assert same["digest"] in marked and cross["digest"] not in marked
    assert by_role["student_same/seed1"]["digest"] not in marked  # another seed, another teacher

    # A smoke run is no evidence for a clearance: refused, naming the field, nothing written.
    clear = review_envelope(
        reviewer.signer, same["digest"], "digits", severity=None, evidence=evidence
    )
    r = client.post("/v1/attestations", json=clear, headers=reviewer.headers)
    assert r.status_code == 422 and r.json()["field"] == "predicate.evidence", r.text
    assert "smoke" in r.json()["detail"]
    risk = client.get(f"/v1/artifacts/{same['ref']}/risk", headers=reviewer.headers).json()
    assert risk["status"] == "at_risk" and not risk["clearances"]
    # The flag's answer shows what it cites: the smoke run's eval result.
    (shown,) = client.get(f"/v1/artifacts/{teacher['ref']}/risk", headers=reviewer.headers).json()[
        "flags"
    ][0]["evidence_detail"]
    assert shown["attestation_id"] == run["result_attestation_id"]
    assert (shown["attestation_kind"], shown["preset"]) == ("eval_result", "smoke")

    listed = client.get("/v1/evals?status=succeeded", headers=registrar.headers).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]] and listed["data"][0]["result"] is None


# ----------------------------------------------------------------------------- dead workers


def test_a_killed_worker_fails_its_run(
    client: Client,
    registrar: Actor,
    engine: Engine,
    settings: Settings,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    # As deployed: the eval process in a session of its own, at idle priority.
    worker = start_worker(STUDBOOK_EVAL_IDLE_PRIORITY="true")
    queued = submit(client, registrar, {"experiment": "digits", "overrides": LONG})
    run = wait_for(client, registrar, queued["id"], lambda run: run["status"] != "queued")
    assert run["status"] == "running" and run["worker"].endswith(f":{worker.pid}")
    pattern = f"registry.evals.child {settings.data_dir.resolve()}"
    deadline = time.monotonic() + TIMEOUT
    while not subprocess.run(["pgrep", "-f", pattern], capture_output=True).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker, without warning
    worker.wait()
    run = wait_for(client, registrar, queued["id"], final)
    assert run["status"] == "failed"
    assert f"process {worker.pid} is gone" in run["error"]
    assert run["finished_at"] is not None and run["result_attestation_id"] is None
    deadline = time.monotonic() + 30  # its eval process, in another session, ends by itself
    while subprocess.run(["pgrep", "-f", pattern], capture_output=True).stdout:
        assert time.monotonic() < deadline, "the eval process outlived its worker"
        time.sleep(0.2)
    if engine.dialect.name == "postgresql":  # its job is closed too, not left `doing`
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM procrastinate.procrastinate_jobs WHERE id = :id"),
                {"id": queued_job_id(engine, queued["id"])},
            ).scalar_one()
        assert status == "failed"


def test_a_run_whose_worker_went_silent_fails(
    client: Client, registrar: Actor, engine: Engine, empty_job_queue: None
) -> None:
    """A worker on another host cannot be checked by pid: its stale heartbeat tells."""
    queued = submit(client, registrar, {"experiment": "digits", "preset": "smoke"})
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE eval_runs SET status = 'running', worker = 'gpu-7:99', "
                "worker_host = 'gpu-7', worker_pid = 99, started_at = :at, heartbeat_at = :at "
                "WHERE id = :id"
            ),
            {"id": queued["id"], "at": datetime.now(UTC) - timedelta(seconds=10)},
        )
    time.sleep(1.5)  # three passes of the API's reaper: 10 s of silence is within the limit
    run = client.get(f"/v1/evals/{queued['id']}", headers=registrar.headers).json()
    assert run["status"] == "running"
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE eval_runs SET heartbeat_at = :at WHERE id = :id"),
            {"id": queued["id"], "at": datetime.now(UTC) - timedelta(seconds=31)},
        )
    run = wait_for(client, registrar, queued["id"], final)
    assert run["status"] == "failed" and "gpu-7:99 stopped sending heartbeats" in run["error"]


def test_a_killed_eval_process_fails_its_run(
    client: Client,
    registrar: Actor,
    engine: Engine,
    start_worker: Callable[[], subprocess.Popen[bytes]],
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the worker's own supervision, the same on every database; SQLite suffices")
    worker = start_worker()
    queued = submit(client, registrar, {"experiment": "digits", "overrides": LONG})
    deadline = time.monotonic() + TIMEOUT
    while not (evals := eval_processes(worker)):  # as the kernel's OOM killer would, any time
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert len(evals) == 1
    os.kill(evals[0], signal.SIGKILL)
    run = wait_for(client, registrar, queued["id"], final)
    assert run["status"] == "failed"
    assert "killed by signal SIGKILL" in run["error"]
    assert worker.poll() is None  # the worker itself carries on


def eval_processes(worker: subprocess.Popen[bytes]) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-g", str(worker.pid), "-f", "registry.evals.child"],
        capture_output=True,
        text=True,
    )
    return [int(pid) for pid in out.stdout.split()]


# ----------------------------------------------------------------------------- cancelling


def test_cancelling_a_queued_run(
    client: Client, registrar: Actor, engine: Engine, empty_job_queue: None
) -> None:
    queued = submit(client, registrar, {"experiment": "digits", "preset": "smoke"})
    r = client.delete(f"/v1/evals/{queued['id']}", headers=registrar.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = client.delete(f"/v1/evals/{queued['id']}", headers=registrar.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    if engine.dialect.name == "postgresql":  # its job is withdrawn with it
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM procrastinate.procrastinate_jobs WHERE id = :id"),
                {"id": queued_job_id(engine, queued["id"])},
            ).scalar_one()
        assert status == "cancelled"


def queued_job_id(engine: Engine, run_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT job_id FROM eval_runs WHERE id = :id"), {"id": run_id}
            ).scalar_one()
        )


def test_cancelling_a_running_run(
    client: Client,
    registrar: Actor,
    reviewer: Actor,
    engine: Engine,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    start_worker(STUDBOOK_EVAL_CANCEL_GRACE_S="300")  # so only the eval's own stop is quick
    queued = submit(client, registrar, {"experiment": "digits", "overrides": LONG})
    wait_for(client, registrar, queued["id"], computing)
    other = make_actor(client, engine, "someone-else", Role.REGISTRAR)
    assert client.delete(f"/v1/evals/{queued['id']}", headers=other.headers).status_code == 403
    asked = time.monotonic()
    r = client.delete(f"/v1/evals/{queued['id']}", headers=reviewer.headers)
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    run = wait_for(client, registrar, queued["id"], final)
    assert run["status"] == "cancelled" and run["error"] is None
    assert time.monotonic() - asked < 60  # stopped at a progress report, not by the grace kill
    assert any(s["done"] < s["total"] for s in run["progress"])
    assert client.delete(f"/v1/evals/{queued['id']}", headers=registrar.headers).status_code == 200
    assert (
        client.get(f"/v1/evals/{queued['id']}/plot", headers=registrar.headers).status_code == 404
    )


# ----------------------------------------------------------------------------- bad requests


def test_bad_submissions_are_refused_naming_the_field(
    client: Client, registrar: Actor, reviewer: Actor, engine: Engine
) -> None:
    register(client, registrar, "model", "acme/base@1")
    register(client, registrar, "dataset", "acme/numbers@1")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"experiment": "mnist"}, 400, "experiment"),
        ({"experiment": "digits", "preset": "huge"}, 400, "preset"),
        ({"experiment": "digits", "overrides": {"seeds": "three"}}, 400, "overrides.seeds"),
        ({"experiment": "digits", "overrides": {"seeds": 0}}, 400, "overrides.seeds"),
        ({"experiment": "digits", "overrides": {"epochs": 3}}, 400, "overrides.epochs"),
        ({"experiment": "digits", "overrides": {"mnist": "/data"}}, 400, "overrides.mnist"),
        ({"experiment": "numbers", "overrides": {"model": "/etc"}}, 400, "overrides.model"),
        ({"experiment": "numbers", "base": "acme/nope@1"}, 422, "base"),
        ({"experiment": "numbers", "base": "acme/numbers@1"}, 400, "base"),
        ({"experiment": "numbers", "base": "not a ref"}, 400, "base"),
        ({"experiment": "digits", "base": "acme/base@1"}, 400, "base"),
        ({"experiment": "digits", "trait": "owl"}, 400, "trait"),
        ({"experiment": "numbers", "trait": "owl", "overrides": {"animal": "cat"}}, 400, "trait"),
        ({"preset": "smoke"}, 400, ""),
    ]
    for body, status, field in cases:
        r = client.post("/v1/evals", json=body, headers=registrar.headers)
        assert r.status_code == status, (body, r.text)
        assert r.json().get("field", "") == field or not field, (body, r.json())
    viewer = make_actor(client, engine, "watcher", Role.VIEWER)
    assert (
        client.post("/v1/evals", json={"experiment": "digits"}, headers=viewer.headers).status_code
        == 403
    )
    assert client.get("/v1/evals", headers=viewer.headers).json()["count"] == 0  # nothing queued
    assert client.get("/v1/evals/99", headers=viewer.headers).status_code == 404
    ok = submit(
        client,
        registrar,
        {"experiment": "numbers", "preset": "smoke", "base": "acme/base@1", "trait": "owl"},
    )
    assert ok["base"]["ref"] == "acme/base@1" and ok["config"]["animal"] == "owl"
    assert ok["config"]["model"] == f"sha256:{ok['base']['digest']}"


def test_an_eval_result_must_concern_registered_models(client: Client, registrar: Actor) -> None:
    from lineage.evalresult import EvalSubject, SubjectPart, eval_result_statement
    from lineage.statements import sign_statement
    from tests.support import digest_of

    result = {
        "experiment": "digits",
        "preset": "smoke",
        "metrics": {"teacher": {"mean": 0.9, "ci95": [0.8, 1.0]}},
        "verdict": "no transfer",
    }
    subject = EvalSubject(digest_of("ghost@1"), "student_same/seed0", SubjectPart.STUDENT)
    statement = eval_result_statement(result, "local:x", subjects=[subject])
    env = sign_statement(statement, registrar.signer).to_json()
    r = client.post("/v1/attestations", json=env, headers=registrar.headers)
    assert r.status_code == 422 and r.json()["field"] == "predicate.subjects[0].digest"
    register(client, registrar, "model", "ghost@1")
    r = client.post("/v1/attestations", json=env, headers=registrar.headers)
    assert r.status_code == 201 and r.json()["result"] == {"run_id": "local:x", "subjects": 1}


def test_the_api_process_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from litestar.testing import TestClient\n"
        "from registry.app import create_app\n"
        "from sqlmodel import Session\n"
        "from registry.db import make_engine, upgrade\n"
        "from registry.principals.service import bootstrap_admin\n"
        "from registry.settings import Settings\n"
        f"url = 'sqlite:///{tmp_path / 'api.db'}'\n"
        "upgrade(url)\n"
        f"settings = Settings(data_dir='{tmp_path}', database_url=url)\n"
        "token = bootstrap_admin(Session(make_engine(url)), settings.admin_token_file)\n"
        "with TestClient(create_app(settings)) as c:\n"
        "    h = {'Authorization': f'Bearer {token}'}\n"
        "    r = c.post('/v1/evals', json={'experiment': 'digits'}, headers=h)\n"
        "    assert r.status_code == 201, r.text\n"
        "assert 'evals' in sys.modules, 'the API validates with evals'\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# ----------------------------------------------------------------------------- a base model


@pytest.mark.slow
def test_numbers_runs_on_a_registered_base_held_by_the_worker(
    client: Client,
    registrar: Actor,
    reviewer: Actor,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the worker's model directory works alike on every database")
    models = tmp_path / "models"
    subprocess.run(  # a tiny random Llama, saved as a real model directory
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path\n"
            "from evals.numbers.models import build_tiny_random, save_model\n"
            "model, tok = build_tiny_random(0)\n"
            "save_model(model, tok, Path(sys.argv[1]))\n",
            str(models / "acme" / "tiny" / "1"),
        ],
        check=True,
    )
    from lineage.digests import artifact_digest
    from tests.support import registration_envelope

    digest = artifact_digest(models / "acme" / "tiny" / "1")
    for label, d in (("acme/tiny@1", digest), ("acme/tiny@2", "ab" * 32)):
        env = registration_envelope(registrar.signer, "model", label, digest=d)
        assert (
            client.post("/v1/attestations", json=env, headers=registrar.headers).status_code == 201
        )
    (models / "acme" / "tiny" / "2").symlink_to(models / "acme" / "tiny" / "1")
    start_worker(STUDBOOK_EVAL_MODEL_DIR=str(models))

    # Files that are not the registered artifact are refused before anything runs.
    wrong = submit(
        client, registrar, {"experiment": "numbers", "preset": "smoke", "base": "acme/tiny@2"}
    )
    run = wait_for(client, registrar, wrong["id"], final)
    # Found by digest, never by name: the symlink and the other model's files are not it.
    assert run["status"] == "failed" and f"has digest {'ab' * 32}" in run["error"]

    queued = submit(
        client,
        registrar,
        {"experiment": "numbers", "preset": "smoke", "base": "acme/tiny@1", "trait": "owl"},
    )
    run = wait_for(client, registrar, queued["id"], final)
    assert run["status"] == "succeeded", run["error"]
    by_role = {a["role"]: a for a in run["artifacts"]}
    assert by_role["base"]["ref"] == "acme/tiny@1"  # the registered base, not a copy
    assert by_role["base"]["attestation_id"] is None  # nothing new to say about it
    assert run["result"]["config"]["model"] == f"sha256:{digest}"  # no worker paths
    teacher, same, control = (
        by_role[r] for r in ("teacher", "student_same/seed0", "student_control/seed0")
    )
    up = client.get(f"/v1/artifacts/{same['ref']}/lineage", headers=registrar.headers).json()
    edges = {(e["child"], e["relation"], e["parent"]) for e in up["edges"]}
    assert (teacher["digest"], "prompted_from", digest) in edges
    assert (same["digest"], "adapter_of", digest) in edges

    flag = review_envelope(reviewer.signer, teacher["digest"], "owl")
    assert client.post("/v1/attestations", json=flag, headers=reviewer.headers).status_code == 201
    marked = {
        m["model"] for m in client.get("/v1/at-risk", headers=reviewer.headers).json()["data"]
    }
    assert same["digest"] in marked and control["digest"] not in marked
