"""The risk engine's write-time derived tables, on SQLite and PostgreSQL, held to the reference.

`weights_ancestors` and `data_sources` index the lineage so that a fine-tune check and a mark's
recomputation are indexed lookups (`registry/risk/derived.py`); the marks and the check are then
computed from them. These property tests drive random lineages through the API in random order,
with parents added later by amendment and flags and clearances interleaved anywhere, and hold
every derived table, every stored mark and the check's answer to `lineage`'s in-memory rule on
the final graph. A rebuild from the edges must reach the same tables, and the audit must rebuild
them from envelopes and notice tampering.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage.graph import Direction, LineageGraph
from lineage.risk import Clearance, Flag, Severity, compute_risk, fine_tune_check
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ParentLink, Registration, Relation
from tests.integration.test_risk import _reference_marks, _stored_marks, chain, flag, submit
from tests.strategies import RiskCase, risk_cases
from tests.support import Actor, digest_of, review_envelope

Client = TestClient[Any]


def _json(v: Any) -> Any:
    return v if isinstance(v, list) else json.loads(v)


def stored_weights(engine: Engine) -> set[tuple[str, str]]:
    sql = text(
        "SELECT m.digest, a.digest FROM weights_ancestors w JOIN artifacts m ON m.id = w.model_id "
        "JOIN artifacts a ON a.id = w.ancestor_id"
    )
    with engine.connect() as conn:
        return {(m, a) for m, a in conn.execute(sql)}


def stored_sources(engine: Engine) -> dict[tuple[str, str], tuple[str, list[tuple[str, ...]]]]:
    with engine.connect() as conn:
        digest = dict(conn.execute(text("SELECT id, digest FROM artifacts")).all())
        out = {}
        for d, s, kind, path in conn.execute(
            text("SELECT dataset_id, source_id, kind, path FROM data_sources")
        ):
            hops, here = [], digest[d]
            for p, rel in _json(path):
                hops.append((here, digest[p], rel))
                here = digest[p]
            out[(digest[d], digest[s])] = (kind, hops)
        return out


def reference_weights(graph: LineageGraph) -> set[tuple[str, str]]:
    return {(m, a) for m in graph.models() for a in graph.weights_ancestors(m)}


def reference_sources(
    graph: LineageGraph,
) -> dict[tuple[str, str], tuple[str, list[tuple[str, ...]]]]:
    out: dict[tuple[str, str], tuple[str, list[tuple[str, ...]]]] = {}
    for d in graph.datasets():
        out[(d, d)] = ("dataset", [])
        for r in graph.walk(d, Direction.UP, relations=(Relation.DERIVED_FROM,)):
            out[(d, r.digest)] = (
                "dataset",
                [(e.child, e.parent, e.relation.value) for e in r.path],
            )
        for r in graph.generators(d):
            out[(d, r.digest)] = ("model", [(e.child, e.parent, e.relation.value) for e in r.path])
    return out


def check_answer(client: Client, actor: Actor, base: str, chosen: list[str]) -> list[Any]:
    got = client.post(
        "/v1/checks/fine-tune",
        json={"base": f"sha256:{base}", "datasets": [f"sha256:{d}" for d in chosen]},
        headers=actor.headers,
    )
    assert got.status_code == 201 or got.status_code == 200, got.text
    body = got.json()
    return [
        body["verdict"],
        [
            (
                r["kind"],
                r["trait"],
                r["dataset"],
                r["via"],
                r["source"],
                [(e["child"], e["parent"], e["relation"]) for e in r["path"]],
                r["shared_base"],
            )
            for r in body["reasons"]
        ],
    ]


def reference_answer(graph: LineageGraph, rc: RiskCase, base: str, chosen: list[str]) -> list[Any]:
    want = fine_tune_check(graph, compute_risk(graph, rc.flags, rc.clearances), base, chosen)
    return [
        want.verdict.value,
        [
            (
                r.kind.value,
                r.trait,
                r.dataset,
                r.via,
                r.source,
                [(e.child, e.parent, e.relation.value) for e in r.path],
                list(r.shared_base),
            )
            for r in want.reasons
        ],
    ]


def _ingest_shuffled(
    client: Client, registrar: Actor, reviewer: Actor, rc: RiskCase, data: st.DataObject
) -> None:
    """Every artifact registered parents first but with some parent links held back and sent
    later as amendments, in a drawn order; statements sent in seq order at drawn moments once
    their artifact exists."""
    regs = {r.artifact.digest: r for r in rc.lineage.registrations()}
    order = rc.lineage.graph().topological_order()
    held: list[tuple[str, ParentLink]] = []
    ops: list[tuple[str, Any]] = []
    for digest in order:
        reg = regs[digest]
        later = (
            data.draw(st.lists(st.sampled_from(reg.parents), unique=True)) if reg.parents else []
        )
        ops.append(
            (
                "register",
                Registration(reg.artifact, tuple(p for p in reg.parents if p not in later)),
            )
        )
        held.extend((digest, p) for p in later)
    # Amendments go anywhere after both ends exist; shuffle them into the tail.
    amendments = data.draw(st.permutations(held))
    for digest, link in amendments:
        ops.append(("amend", Registration(regs[digest].artifact, (link,))))
    pending = sorted([*rc.flags, *rc.clearances], key=lambda s: s.seq)
    known: set[str] = set()

    def send_statements(force: bool) -> None:
        while pending and pending[0].artifact in known and (force or data.draw(st.booleans())):
            s = pending.pop(0)
            env = review_envelope(
                reviewer.signer,
                s.artifact,
                s.trait,
                severity=s.severity.value if isinstance(s, Flag) else None,
                evidence=s.evidence,
            )
            submit(client, reviewer, env)

    for _, reg in ops:
        submit(
            client,
            registrar,
            sign_statement(registration_statement(reg), registrar.signer).to_json(),
        )
        known.add(reg.artifact.digest)
        send_statements(force=False)
    send_statements(force=True)
    assert not pending
    assert all(isinstance(s, Flag | Clearance) for s in [*rc.flags, *rc.clearances])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(rc=risk_cases(), data=st.data())
def test_derived_tables_marks_and_check_equal_the_reference(
    client: Client,
    engine: Engine,
    registrar: Actor,
    reviewer: Actor,
    rc: RiskCase,
    data: st.DataObject,
) -> None:
    from registry.risk import derived
    from tests.integration.conftest import _truncate_data

    _truncate_data(engine)
    _ingest_shuffled(client, registrar, reviewer, rc, data)
    graph = rc.lineage.graph()
    assert stored_weights(engine) == reference_weights(graph)
    assert stored_sources(engine) == reference_sources(graph)
    assert _stored_marks(engine) == _reference_marks(compute_risk(graph, rc.flags, rc.clearances))

    models, datasets = rc.lineage.models(), rc.lineage.datasets()
    if models:
        base = data.draw(st.sampled_from(models))
        chosen = (
            data.draw(st.lists(st.sampled_from(datasets), unique=True, max_size=3))
            if datasets
            else []
        )
        assert check_answer(client, registrar, base, chosen) == reference_answer(
            graph, rc, base, chosen
        )

    # A rebuild from the edges reaches the incremental state.
    before = (stored_weights(engine), stored_sources(engine))
    with Session(engine) as s:
        derived.rebuild(s)
        s.commit()
    assert (stored_weights(engine), stored_sources(engine)) == before


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(rc=risk_cases(), data=st.data())
def test_batches_keep_the_derived_tables_equal_the_reference(
    client: Client,
    engine: Engine,
    registrar: Actor,
    reviewer: Actor,
    rc: RiskCase,
    data: st.DataObject,
) -> None:
    """The batch route's bulk path indexes a batch at once and refreshes the marks once: the
    registrations, parents first, cut into batches of drawn sizes, with the flags and
    clearances sent between batches at drawn moments once their artifact exists."""
    from tests.integration.conftest import _truncate_data

    _truncate_data(engine)
    regs = {r.artifact.digest: r for r in rc.lineage.registrations()}
    order = rc.lineage.graph().topological_order()
    pending = sorted([*rc.flags, *rc.clearances], key=lambda s: s.seq)
    known: set[str] = set()

    def send_statements(force: bool) -> None:
        while pending and pending[0].artifact in known and (force or data.draw(st.booleans())):
            s = pending.pop(0)
            severity = s.severity.value if isinstance(s, Flag) else None
            env = review_envelope(
                reviewer.signer, s.artifact, s.trait, severity=severity, evidence=s.evidence
            )
            submit(client, reviewer, env)

    start = 0
    while start < len(order):
        part = order[start : start + data.draw(st.integers(1, len(order) - start))]
        start += len(part)
        envs = [
            sign_statement(registration_statement(regs[d]), registrar.signer).to_json()
            for d in part
        ]
        r = client.post(
            "/v1/attestations/batch", json={"envelopes": envs}, headers=registrar.headers
        )
        assert r.status_code == 201, r.text
        assert [a["artifact"]["digest"] for a in r.json()["data"]] == list(part)
        known.update(part)
        send_statements(force=False)
    send_statements(force=True)
    graph = rc.lineage.graph()
    assert stored_weights(engine) == reference_weights(graph)
    assert stored_sources(engine) == reference_sources(graph)
    assert _stored_marks(engine) == _reference_marks(compute_risk(graph, rc.flags, rc.clearances))


def test_every_kind_of_artifact_is_indexed(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    chain(client, registrar)
    kinds = _kinds(engine)
    weights = {m for m, _ in stored_weights(engine)}
    sources = {d for d, _ in stored_sources(engine)}
    assert weights == {d for d, k in kinds.items() if k == ArtifactKind.MODEL.value}
    assert sources == {d for d, k in kinds.items() if k == ArtifactKind.DATASET.value}


def _kinds(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT digest, kind FROM artifacts")).all())


def test_audit_rebuilds_the_lineage_indexes_and_sees_tampering(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    from registry.log.audit import audit
    from registry.replay import ReplayFinding

    chain(client, registrar)
    flag(client, reviewer, digest_of("c/teacher@1"))
    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]
    assert report.replay is not None
    n_weights, n_sources = len(stored_weights(engine)), len(stored_sources(engine))
    assert report.replay.tables["weights_ancestors"] == (n_weights, n_weights)
    assert report.replay.tables["data_sources"] == (n_sources, n_sources)
    with engine.begin() as conn:  # an insider hides a shared base: the check would say "warn"
        conn.execute(
            text(
                "DELETE FROM weights_ancestors WHERE model_id = "
                "(SELECT id FROM artifacts WHERE name = 'c/student') AND model_id <> ancestor_id"
            )
        )
    kinds = {(str(f.kind), f.where.split("[")[0]) for f in audit(engine).findings}
    assert (str(ReplayFinding.DERIVED_MISSING), "weights_ancestors") in kinds


def graph_from_db(engine: Engine) -> LineageGraph:
    """The registry's graph as the reference sees it."""
    from lineage.graph import Node
    from lineage.types import Edge

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, digest, kind, opaque FROM artifacts")).all()
        digest = {r.id: r.digest for r in rows}
        edges = [
            Edge(digest[c], digest[p], Relation(r))
            for c, p, r in conn.execute(text("SELECT child_id, parent_id, relation FROM edges"))
        ]
    return LineageGraph([Node(r.digest, ArtifactKind(r.kind), bool(r.opaque)) for r in rows], edges)


def test_equal_length_routes_are_chosen_by_first_step(
    client: Client, engine: Engine, registrar: Actor, reviewer: Actor
) -> None:
    """Two derived_from parents reaching the same generators at the same distance: the least
    first step wins, as in `LineageGraph.generators`, whatever the registration order."""
    from tests.support import register

    register(client, registrar, "model", "t/base@1")
    register(client, registrar, "model", "t/g@1", [("fine_tuned_from", "t/base@1")])
    register(client, registrar, "model", "t/h@1", [("fine_tuned_from", "t/base@1")])
    names = [f"t/d{i}@1" for i in range(4)]
    for name in names:  # some generated by g, some by h, some by both
        register(client, registrar, "dataset", name, [("generated_by", "t/g@1")])
    register(client, registrar, "dataset", "t/e@1", [("generated_by", "t/h@1")])
    register(client, registrar, "dataset", "t/mix@1", [("derived_from", n) for n in names])
    register(
        client,
        registrar,
        "dataset",
        "t/mix2@1",
        [("derived_from", "t/mix@1"), ("derived_from", "t/e@1")],
    )
    # An amendment adds a shorter route to g for mix2: both rows must move.
    register(client, registrar, "dataset", "t/mix2@1", [("derived_from", names[2])])
    register(
        client,
        registrar,
        "model",
        "t/student@1",
        [("fine_tuned_from", "t/base@1"), ("trained_on", "t/mix2@1")],
    )
    flag(client, reviewer, digest_of("t/g@1"))
    graph = graph_from_db(engine)
    assert stored_sources(engine) == reference_sources(graph)
    assert stored_weights(engine) == reference_weights(graph)
    with engine.connect() as conn:
        flags = [
            Flag(d, t, Severity.HIGH, "r", (), str(seq), seq)
            for d, t, seq in conn.execute(
                text(
                    "SELECT a.digest, s.trait, s.seq FROM risk_statements s "
                    "JOIN artifacts a ON a.id = s.artifact_id"
                )
            )
        ]
    state = compute_risk(graph, flags, [])
    assert _stored_marks(engine) == _reference_marks(state)
    rc = RiskCase(None, tuple(flags), ())  # type: ignore[arg-type]
    for base in ("t/base@1", "t/h@1", "t/student@1"):
        for chosen in (["t/mix2@1"], ["t/mix@1", "t/e@1"]):
            got = check_answer(client, registrar, digest_of(base), [digest_of(c) for c in chosen])
            want = reference_answer(graph, rc, digest_of(base), [digest_of(c) for c in chosen])
            assert got == want


def test_check_names_the_reference_it_cannot_find(client: Client, registrar: Actor) -> None:
    chain(client, registrar)
    base, data = digest_of("c/base@1"), digest_of("c/numbers@1")
    body = {"base": "c/base@1", "datasets": [f"sha256:{data}", "c/nowhere@1"]}
    r = client.post("/v1/checks/fine-tune", json=body, headers=registrar.headers)
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "datasets[1]"
    # Every accepted form names the same artifacts: id, full digest, digest prefix, name@version.
    ids = {
        a["digest"]: a["id"]
        for a in client.get("/v1/artifacts?limit=100", headers=registrar.headers).json()["data"]
    }
    answers = []
    for b, d in (
        ("c/base@1", "c/numbers@1"),
        (str(ids[base]), str(ids[data])),
        (base, f"sha256:{data}"),
        (base[:16], f"sha256:{data[:20]}"),
    ):
        r = client.post(
            "/v1/checks/fine-tune", json={"base": b, "datasets": [d]}, headers=registrar.headers
        )
        assert r.status_code == 200, r.text
        answers.append((r.json()["base"], r.json()["datasets"]))
    assert answers == [(base, [data])] * 4
    r = client.post(
        "/v1/checks/fine-tune",
        json={"base": "c/numbers@1", "datasets": []},
        headers=registrar.headers,
    )
    assert r.status_code == 400 and r.json()["field"] == "base"
