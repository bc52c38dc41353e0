"""The risk engine inside the registry: flags, clearances, at-risk marks, fine-tune checks.

`lineage.risk` holds the rule. Here the registry feeds it the part of the graph each question
depends on, read with SQL, and stores the answers:

- A mark of model M depends only on M's upstream closure (its ancestors over every relation: the
  teachers, their data, their bases). So to answer a question about some models we load their
  upstream closure and run the reference rule on that subgraph: the answers are those the rule
  gives on the whole graph, at the cost of the closure only.
- A write (new edges, a flag, a clearance) can only change the marks of the artifact it touches
  and of its descendants. After every such write, inside the same transaction, we recompute the
  marks of that downstream region and replace the stored ones. Writes are serialised (the log's
  append lock on PostgreSQL, the write lock on SQLite), so each recomputation sees every earlier
  write. While no flag has ever been accepted there is nothing to do, and ingest pays nothing.
- `seq`, which orders a flag against a clearance of the same (artifact, trait), is the accepting
  attestation's id: acceptance order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, exists, func, insert, select, text, update
from sqlmodel import Session

from lineage.graph import LineageGraph, Node
from lineage.review import CLEARANCE_PREDICATE, FLAG_PREDICATE, parse_review
from lineage.risk import (
    CheckReason,
    CheckResult,
    Clearance,
    Flag,
    ReasonKind,
    RiskMark,
    RiskState,
    Severity,
    Verdict,
    compute_risk,
)
from lineage.statements import VerifiedStatement
from lineage.types import ArtifactKind, Edge, Relation

from ..artifacts.service import ArtifactKey, resolve
from ..db import fetch, holds_write_lock, loads
from ..errors import BadRequestError, NotFoundError, UnprocessableError
from ..models import (
    Artifact,
    Attestation,
    DataSource,
    LineageEdge,
    RiskMarkRow,
    RiskStatement,
    utcnow,
)
from . import derived
from .evidence import check_evidence
from .evidence import describe as describe_evidence
from .schemas import (
    ClearancePublic,
    FineTuneCheckPublic,
    FlagPublic,
    MarkPublic,
    PathEdge,
    ReasonPublic,
    RiskPublic,
)

_A = Artifact.__table__  # type: ignore[attr-defined]
_E = LineageEdge.__table__  # type: ignore[attr-defined]
_S = RiskStatement.__table__  # type: ignore[attr-defined]
_M = RiskMarkRow.__table__  # type: ignore[attr-defined]
_DS = DataSource.__table__  # type: ignore[attr-defined]
_CHUNK = 500

_UP = text(
    "WITH RECURSIVE up(id) AS (SELECT id FROM artifacts WHERE id IN :ids "
    "UNION SELECT e.parent_id FROM edges e JOIN up ON e.child_id = up.id) SELECT id FROM up"
).bindparams(bindparam("ids", expanding=True))
_DOWN = text(
    "WITH RECURSIVE down(id) AS (SELECT id FROM artifacts WHERE id IN :ids "
    "UNION SELECT e.child_id FROM edges e JOIN down ON e.parent_id = down.id) SELECT id FROM down"
).bindparams(bindparam("ids", expanding=True))


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])


def closure(session: Session, seeds: Iterable[int], *, up: bool) -> set[int]:
    """Seeds plus all their ancestors (`up`) or descendants, over every relation."""
    out: set[int] = set()
    for part in _chunks(sorted(set(seeds))):
        out.update(session.execute(_UP if up else _DOWN, {"ids": part}).scalars())
    return out


class Subgraph:
    """A part of the registry's graph loaded for the reference rule, with id <-> digest maps."""

    def __init__(self, session: Session, ids: set[int]) -> None:
        self.digest: dict[int, str] = {}
        self.id: dict[str, int] = {}
        self.ref: dict[str, str] = {}
        nodes: list[Node] = []
        edges: list[Edge] = []
        ordered = sorted(ids)
        for part in _chunks(ordered):
            for row in session.execute(
                select(_A.c.id, _A.c.digest, _A.c.kind, _A.c.opaque, _A.c.name, _A.c.version).where(
                    derived.among(session, _A.c.id, part)
                )
            ):
                self.digest[row.id] = row.digest
                self.id[row.digest] = row.id
                self.ref[row.digest] = f"{row.name}@{row.version}"
                nodes.append(Node(row.digest, ArtifactKind(row.kind), row.opaque))
        for part in _chunks(ordered):
            for c, p, r in session.execute(
                select(_E.c.child_id, _E.c.parent_id, _E.c.relation).where(
                    derived.among(session, _E.c.child_id, part)
                )
            ):
                if p in self.digest:
                    edges.append(Edge(self.digest[c], self.digest[p], Relation(r)))
        self.graph = LineageGraph(nodes, edges)
        self.flags: list[Flag] = []
        self.clearances: list[Clearance] = []
        for part in _chunks(ordered):
            for s in session.execute(
                select(_S).where(derived.among(session, _S.c.artifact_id, part))
            ):
                digest = self.digest[s.artifact_id]
                if s.statement == "flag":
                    self.flags.append(
                        Flag(
                            digest,
                            s.trait,
                            Severity(s.severity),
                            s.reason,
                            tuple(s.evidence),
                            str(s.attestation_id),
                            s.seq,
                        )
                    )
                else:
                    self.clearances.append(
                        Clearance(digest, s.trait, s.reason, tuple(s.evidence), s.seq)
                    )

    def risk(self) -> RiskState:
        """The reference rule on this subgraph."""
        return compute_risk(self.graph, self.flags, self.clearances)


def upstream(session: Session, ids: Iterable[int]) -> Subgraph:
    """The upstream closure of `ids`, loaded."""
    return Subgraph(session, closure(session, ids, up=True))


def _any_statement(session: Session) -> bool:
    """Whether any flag or clearance was ever accepted (fixed SQL: it runs on every write).

    Statements are never deleted, so once seen the answer is kept for the session (a request,
    or a batch of envelopes). A "no" read under the write lock holds until that transaction
    ends (no other writer can add one meanwhile), so a batch asks once, not per envelope; a
    statement accepted in the transaction turns it into a "yes" (`apply_review`).
    """
    known = session.info.get(_ANY_STATEMENT)
    if known is True:
        return True
    tx = session.get_transaction()
    if known is not None and known is tx:
        return False
    found = bool(fetch(session, "SELECT EXISTS (SELECT 1 FROM risk_statements)", {})[0][0])
    if found:
        session.info[_ANY_STATEMENT] = True
    elif holds_write_lock(session):
        session.info[_ANY_STATEMENT] = session.get_transaction()  # "no", for this transaction
    return found


_ANY_STATEMENT = "studbook_any_risk_statement"


# ---------------------------------------------------------------------------- writes


def apply_review(
    session: Session, attestation: Attestation, verified: VerifiedStatement
) -> dict[str, Any]:
    """Predicate handler for flags and clearances: store the statement (no commit).

    Marks are recomputed by `after_accept`, once the write lock is held.

    Raises:
        InvalidStatementError: malformed predicate.
        UnprocessableError: the artifact is not registered.
    """
    claim = parse_review(verified.statement)
    artifact_id = session.scalar(select(_A.c.id).where(_A.c.digest == claim.artifact))
    if artifact_id is None:
        raise UnprocessableError(
            f"unknown artifact sha256:{claim.artifact}: register it before reviewing it",
            field="subject[0].digest",
            digest=claim.artifact,
        )
    # What a clearance cites must exist and concern this model (422 naming predicate.evidence,
    # before anything is written); see registry/risk/evidence.py.
    check_evidence(session, claim, artifact_id)
    session.info[_ANY_STATEMENT] = True  # before the insert: a failed insert only costs a query
    session.execute(
        insert(_S).values(
            attestation_id=attestation.id,
            artifact_id=artifact_id,
            statement="flag" if claim.is_flag else "clearance",
            trait=claim.trait,
            severity=claim.severity.value if claim.severity else None,
            reason=claim.reason,
            evidence=list(claim.evidence),
            seq=attestation.id,
            created_at=attestation.received_at,
        )
    )
    return {
        "risk_seed": [artifact_id],
        "result": {"trait": claim.trait, "artifact": claim.artifact},
    }


def after_accept(
    session: Session, attestation: Attestation, verified: VerifiedStatement, outcome: dict[str, Any]
) -> None:
    """AFTER_ACCEPT hook: index a registration's new lineage, then bring the marks downstream of
    what this write touched up to date."""
    seeds: list[int] = list(outcome.get("risk_seed", ()))
    if "new_edges" in outcome and "artifact_id" in outcome:
        derived.record(session, outcome)
        if outcome.get("edges_added"):
            seeds.append(int(outcome["artifact_id"]))
    if seeds and _any_statement(session):
        refresh(session, seeds)


def after_accept_many(
    session: Session, accepted: list[tuple[Attestation, VerifiedStatement, dict[str, Any]]]
) -> None:
    """The batch form of `after_accept` (`AFTER_ACCEPT_MANY`): index the batch's new
    registrations at once (`derived.record_new`), then refresh the marks downstream of all of
    them in one pass. The marks after it equal those of `after_accept` run envelope by envelope:
    each is a function of the final lineage and statements, and one region covering every seed,
    derived once the whole batch is indexed, holds every model those refreshes would touch."""
    outcomes = [outcome for _, _, outcome in accepted]
    if not all(o.get("created") and "artifact" in o for o in outcomes):
        for attestation, verified, outcome in accepted:
            after_accept(session, attestation, verified, outcome)
        return
    derived.record_new(session, outcomes)
    seeds = [int(o["artifact_id"]) for o in outcomes if o.get("edges_added")]
    seeds += [int(s) for o in outcomes for s in o.get("risk_seed", ())]
    if seeds and _any_statement(session):
        refresh(session, seeds)


def refresh(session: Session, seeds: Iterable[int], *, now: datetime | None = None) -> int:
    """Recompute the marks of `seeds` and of everything downstream; returns how many changed.

    The region is the downstream closure (a superset of what can change: `lineage.risk.
    affected_by`). Its marks are derived from the lineage indexes and the stored statuses of the
    models just upstream of it (`_derive_marks`), and written back with one statement per kind of
    change, so a flag over ten thousand descendants is a few dozen statements, not one per mark.
    """
    region = closure(session, seeds, up=False)
    return _store(session, region, _derive_marks(session, region), now or utcnow())


_Path = tuple[tuple[str, str, str], ...]


def _key(path: _Path) -> tuple[int, tuple[tuple[str, str], ...]]:
    """`lineage.graph.path_key` of a path of (child, parent, relation) digests."""
    return (len(path), tuple((p, r) for _, p, r in path))


def _in_force(
    session: Session, ids: Iterable[int]
) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """Per artifact, the traits with a flag in force and the traits cleared (the later statement
    on an (artifact, trait) wins, as in `lineage.risk`)."""
    seen: set[tuple[int, str]] = set()
    last_clear: dict[tuple[int, str], int] = {}
    last_flag: dict[tuple[int, str], int] = {}
    wanted = sorted({int(i) for i in ids})
    for a, t, st, seq in fetch(session, _IN_FORCE, {"ids": wanted}) if wanted else ():
        seen.add((a, t))
        held = last_clear if st == "clearance" else last_flag
        held[(a, t)] = max(held.get((a, t), -1), seq)
    flagged: dict[int, set[str]] = {}
    cleared: dict[int, set[str]] = {}
    for a, t in sorted(seen):
        if last_flag.get((a, t), -1) > last_clear.get((a, t), -1):
            flagged.setdefault(a, set()).add(t)
        elif (a, t) in last_clear:
            cleared.setdefault(a, set()).add(t)
    return flagged, cleared


_MODEL_DIGESTS = "SELECT id, digest FROM artifacts WHERE id IN_INTS(:ids) AND kind = 'model'"
_UP_EDGES = (
    "SELECT child_id, parent_id, relation FROM edges WHERE child_id IN_INTS(:ids) AND relation IN ("
    + ", ".join(f"'{r}'" for r in (*derived.WEIGHTS, Relation.TRAINED_ON.value))
    + ")"
)
_MODEL_SOURCES = (
    "SELECT dataset_id, source_id, distance, CAST(path AS TEXT) FROM data_sources "
    "WHERE dataset_id IN_INTS(:ids) AND kind = 'model'"
)
_IN_FORCE = (
    "SELECT artifact_id, trait, statement, seq FROM risk_statements WHERE artifact_id IN_INTS(:ids)"
)


def _digests(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    return dict(fetch(session, _DIGESTS, {"ids": wanted}))  # type: ignore[arg-type]


_DIGESTS = "SELECT id, digest FROM artifacts WHERE id IN_INTS(:ids)"


def _derive_marks(session: Session, region: set[int]) -> dict[tuple[int, str], dict[str, Any]]:
    """The marks the rule gives the models in `region`, from indexed lookups only.

    Every step of the rule out of a region model is read in bulk: weights parents from the edges,
    teachers (with their least shortest routes) from `data_sources` behind the model's
    `trained_on` datasets, shared bases from `weights_ancestors`. What flows in from outside the
    region is the stored marks and statuses of the steps' targets, which the change cannot have
    affected. The region is then walked parents first, exactly as `lineage.risk._propagate`
    walks the whole graph.
    """
    digest: dict[int, str] = {}
    if region:
        digest.update(fetch(session, _MODEL_DIGESTS, {"ids": sorted(region)}))  # type: ignore[arg-type]
    models = set(digest)
    if not models:
        return {}
    weights: list[tuple[int, int, str]] = []
    routes: dict[tuple[int, int], tuple[int, int, list[Any]]] = {}  # (m, G) -> (dist, D, path)
    # Two index lookups per model, not a join: planned as a join, the databases hash whole
    # tables once the region is a few thousand models.
    trained: list[tuple[int, int]] = []
    for c, p, r in fetch(session, _UP_EDGES, {"ids": sorted(models)}):
        if r == Relation.TRAINED_ON.value:
            trained.append((c, p))
        else:
            weights.append((c, p, r))
    sources: dict[int, list[tuple[int, int, str]]] = {}
    datasets = sorted({d for _, d in trained})
    for d, g, dist, path in fetch(session, _MODEL_SOURCES, {"ids": datasets}) if datasets else ():
        sources.setdefault(d, []).append((g, dist, path))  # path decoded only if chosen
    route_cands = [
        (m, g, dist, d, path) for m, d in trained for g, dist, path in sources.get(d, ())
    ]
    path_ids = {d for _, _, _, d, _ in route_cands} | {p for _, p, _ in weights}
    digest.update(_digests(session, path_ids - digest.keys()))
    for m, g, dist, d, path in route_cands:
        held = routes.get((m, g))
        if held is None or (dist, digest[d]) < (held[0], digest[held[1]]):
            routes[(m, g)] = (dist, d, path)
    routes = {k: (dist, d, loads(path)) for k, (dist, d, path) in routes.items()}
    path_ids = {int(p) for _, _, path in routes.values() for p, _ in path}
    digest.update(_digests(session, path_ids - digest.keys()))
    anc = derived.ancestor_sets(session, {x for pair in routes for x in pair})
    steps: dict[int, list[tuple[str, int, _Path]]] = {m: [] for m in models}
    for c, p, r in weights:
        steps[c].append(("weights", p, ((digest[c], digest[p], r),)))
    for (m, g), (_, d, path) in routes.items():
        if anc.get(m, {m}) & anc.get(g, {g}):
            hops = derived.expand(d, path)
            steps[m].append(
                (
                    "data",
                    g,
                    (
                        (digest[m], digest[d], Relation.TRAINED_ON.value),
                        *((digest[c], digest[p], r) for c, p, r in hops),
                    ),
                )
            )
    vias = {v for ss in steps.values() for _, v, _ in ss}
    flagged, cleared = _in_force(session, models | vias)
    # What each model passes on, per trait: (path to the source, source, the path's step keys).
    carried: dict[int, dict[str, tuple[_Path, int, tuple[tuple[str, str], ...]]]] = {}
    outside = sorted(vias - models)
    for v in outside:
        carried[v] = {t: ((), v, ()) for t in flagged.get(v, ())}
    for part in derived.whole(outside):
        for mark in session.execute(
            select(_M.c.model_id, _M.c.trait, _M.c.source_id, _M.c.path).where(
                derived.among(session, _M.c.model_id, part)
            )
        ):
            stored: _Path = tuple((c, p, rel) for c, p, rel in mark.path)
            carried[mark.model_id].setdefault(mark.trait, (stored, mark.source_id, _key(stored)[1]))
    order = derived._topological(
        models, {m: [v for _, v, _ in ss if v in models] for m, ss in steps.items()}
    )
    keyed = {m: [(k, v, sp, _key(sp)[1]) for k, v, sp in ss] for m, ss in steps.items()}
    chosen: dict[tuple[int, str], tuple[str, int, _Path, int]] = {}
    for m in order:
        # Per trait the least (length, step keys), as `path_key` orders paths; the keys are only
        # joined when the lengths tie, and the path only for the winner.
        mine: dict[str, tuple[int, Any, str, int, _Path, _Path, int]] = {}
        skip = flagged.get(m, set()) | cleared.get(m, set())
        for kind, via, spath, skey in keyed[m]:
            ups = carried.get(via)
            if not ups:
                continue
            for t, (upath, source, ukey) in ups.items():
                if t in skip:
                    continue
                length = len(spath) + len(upath)
                held = mine.get(t)
                if held is not None and length > held[0]:
                    continue
                key = skey + ukey
                if held is None or length < held[0] or key < held[1]:
                    mine[t] = (length, key, kind, via, spath, upath, source)
        here: dict[str, tuple[_Path, int, tuple[tuple[str, str], ...]]] = {
            t: ((), m, ()) for t in flagged.get(m, ())
        }
        for t, (_, key, kind, via, spath, upath, source) in mine.items():
            full: _Path = (*spath, *upath)
            here[t] = (full, source, key)
            chosen[(m, t)] = (kind, via, full, source)
        carried[m] = here
    pairs = {(m, via) for (m, _), (kind, via, _, _) in chosen.items() if kind == "data"}
    shared = {(m, g): anc[m] & anc[g] for m, g in pairs}
    members = {s for ss in shared.values() for s in ss}
    anc.update(derived.ancestor_sets(session, members - anc.keys()))
    nearest = {k: derived.nearest(ss, anc) for k, ss in shared.items()}
    digest.update(_digests(session, {s for ns in nearest.values() for s in ns} - digest.keys()))
    return {
        (m, t): {
            "kind": kind,
            "source_id": source,
            "via_id": via,
            "path": path,  # tuples: JSON writes them as lists; `_store` compares them as tuples
            "shared_base": sorted(digest[s] for s in nearest[(m, via)]) if kind == "data" else [],
        }
        for (m, t), (kind, via, path, source) in chosen.items()
    }


def _store(
    session: Session,
    region: set[int],
    wanted: dict[tuple[int, str], dict[str, Any]],
    now: datetime,
) -> int:
    """Make the stored marks of `region` exactly `wanted`, set-based; returns rows changed."""
    # The stored marks of the region, their JSON columns left as text: most of them are only
    # kept or deleted, and only a mark the change also derives needs its values compared.
    have: dict[tuple[int, str], tuple[Any, ...]] = {}
    if region:
        for m, t, *held in fetch(session, _HELD_MARKS, {"ids": sorted(region)}):
            have[(m, t)] = tuple(held)
    gone = [{"m": m, "t": t} for m, t in have if (m, t) not in wanted]
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for (m, t), values in wanted.items():
        held = have.get((m, t))
        if held is None:
            new.append({"model_id": m, "trait": t, "created_at": now, **values})
        elif any(
            _same(loads(h) if k in _JSON_COLUMNS else h) != _same(values[k])
            for k, h in zip(_MARK_COLUMNS, held, strict=True)
        ):
            changed.append({"m": m, "t": t, **{f"v_{k}": v for k, v in values.items()}})
    if gone:
        session.execute(
            delete(_M).where(_M.c.model_id == bindparam("m"), _M.c.trait == bindparam("t")), gone
        )
    if new:
        _insert_marks(session, new)
    if changed:
        session.execute(
            update(_M)
            .where(_M.c.model_id == bindparam("m"), _M.c.trait == bindparam("t"))
            .values({k: bindparam(f"v_{k}") for k in _MARK_COLUMNS}),
            changed,
        )
    return len(gone) + len(new) + len(changed)


_MARK_COLUMNS = ("kind", "source_id", "via_id", "path", "shared_base")
_JSON_COLUMNS = ("path", "shared_base")
_HELD_MARKS = (
    "SELECT model_id, trait, kind, source_id, via_id, CAST(path AS TEXT), "
    "CAST(shared_base AS TEXT) FROM risk_marks WHERE model_id IN_INTS(:ids)"
)


def _same(value: Any) -> Any:
    """A stored or computed mark value in one comparable form (JSON lists read back as lists;
    paths are computed as tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_same(v) for v in value)
    return value


_INSERT_COLUMNS = ("model_id", "trait", *_MARK_COLUMNS, "created_at")


def _insert_marks(session: Session, rows: list[dict[str, Any]]) -> None:
    """Driver-level writes: SQLAlchemy's per-row parameter processing would cost more than the
    insert itself for the ten thousand marks of one propagation. PostgreSQL takes them with one
    COPY (an executemany is a round of protocol messages per row); SQLite with one executemany.
    Values are encoded as SQLAlchemy would encode them (its JSON and timestamp encodings), so
    reads see no difference.
    """
    conn = session.connection()
    names = ", ".join(_INSERT_COLUMNS)
    dumps = json.dumps
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY risk_marks ({names}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(
                        tuple(dumps(r[c]) if c in _JSON_COLUMNS else r[c] for c in _INSERT_COLUMNS)
                    )
        finally:
            cursor.close()
        return
    # SQLAlchemy stores JSON on SQLite as json.dumps text; the timestamp goes through its
    # own processor (once: every row of one write has the same `created_at`).
    stamp = _M.c.created_at.type.bind_processor(conn.dialect)
    stamps = {r["created_at"] for r in rows}
    when = {t: stamp(t) if stamp else t for t in stamps}
    sql = f"INSERT INTO risk_marks ({names}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})"
    params = [
        (
            r["model_id"],
            r["trait"],
            r["kind"],
            r["source_id"],
            r["via_id"],
            dumps(r["path"]),
            dumps(r["shared_base"]),
            when[r["created_at"]],
        )
        for r in rows
    ]
    conn.exec_driver_sql(sql, params)


def _store_marks(
    session: Session,
    sub: Subgraph,
    region: set[int],
    wanted: dict[tuple[int, str], RiskMark],
    now: datetime,
) -> int:
    return _store(session, region, {k: _mark_values(sub, m) for k, m in wanted.items()}, now)


def _mark_values(sub: Subgraph, m: RiskMark) -> dict[str, Any]:
    return {
        "kind": m.kind.value,
        "source_id": sub.id[m.source],
        "via_id": sub.id[m.via],
        "path": [[e.child, e.parent, e.relation.value] for e in m.path],
        "shared_base": list(m.shared_base),
    }


def rebuild_all(session: Session) -> int:
    """Recompute every mark from the stored statements and graph (no commit).

    The incremental updates must always leave the same state; `studbook risk rebuild --check`
    uses this to prove it.
    """
    ids = set(session.execute(select(_A.c.id)).scalars())
    sub = Subgraph(session, ids)
    state = sub.risk()
    wanted = {(sub.id[m.model], m.trait): m for m in state.marks}
    return _store_marks(session, sub, ids, wanted, utcnow())


# ---------------------------------------------------------------------------- reads


def _refs(session: Session, digests: Iterable[str]) -> dict[str, str]:
    items = sorted(set(digests))
    if not items:
        return {}
    return {d: f"{n}@{v}" for d, n, v in fetch(session, _REFS, {"ds": items})}


_REFS = "SELECT digest, name, version FROM artifacts WHERE digest IN_STRS(:ds)"


def _path(raw: Iterable[Sequence[str]], refs: dict[str, str]) -> list[PathEdge]:
    return [
        PathEdge(child=c, child_ref=refs[c], parent=p, parent_ref=refs[p], relation=Relation(r))
        for c, p, r in raw
    ]


def _marks_public(session: Session, rows: Sequence[Any]) -> list[MarkPublic]:
    ids: set[int] = set()
    digests: set[str] = set()
    for r in rows:
        ids.update((r.model_id, r.source_id, r.via_id))
        digests.update(r.shared_base)
        for c, p, _ in r.path:
            digests.update((c, p))
    id_digest: dict[int, str] = {}
    refs: dict[str, str] = {}
    if rows:  # the marks' own ids and the digests their paths name, in one indexed read
        for i, d, n, v in fetch(
            session, _IDS_OR_DIGESTS, {"ids": sorted(ids), "ds": sorted(digests)}
        ):
            id_digest[i] = d
            refs[d] = f"{n}@{v}"
    cited = _flag_evidence(session, {(r.source_id, r.trait) for r in rows})
    detail = describe_evidence(session, cited.values())
    out = []
    for r in rows:
        model, source, via = id_digest[r.model_id], id_digest[r.source_id], id_digest[r.via_id]
        out.append(
            MarkPublic(
                model=model,
                model_ref=refs[model],
                trait=r.trait,
                kind=r.kind,
                source=source,
                source_ref=refs[source],
                via=via,
                via_ref=refs[via],
                path=_path(r.path, refs),
                shared_base=list(r.shared_base),
                shared_base_refs=[refs[d] for d in r.shared_base],
                source_evidence=[detail[e] for e in cited.get((r.source_id, r.trait), ())],
                since=r.created_at,
            )
        )
    return out


def _flag_evidence(
    session: Session, pairs: set[tuple[int, str]]
) -> dict[tuple[int, str], tuple[str, ...]]:
    """What the flag behind each (source, trait) cites: the latest flag of the pair (a mark
    exists only while its source's flag is in force), in one query."""
    if not pairs:
        return {}
    sources = sorted({a for a, _ in pairs})
    out: dict[tuple[int, str], tuple[str, ...]] = {}
    for artifact_id, trait, evidence in fetch(session, _FLAG_EVIDENCE, {"ids": sources}):
        if (artifact_id, trait) in pairs:
            out[(artifact_id, trait)] = tuple(loads(evidence) or ())
    return out


_IDS_OR_DIGESTS = (
    "SELECT id, digest, name, version FROM artifacts WHERE id IN_INTS(:ids) OR digest IN_STRS(:ds)"
)
_FLAG_EVIDENCE = (
    "SELECT artifact_id, trait, evidence FROM risk_statements "
    "WHERE artifact_id IN_INTS(:ids) AND statement = 'flag' ORDER BY seq"
)
_STATEMENTS = (
    "SELECT s.attestation_id, s.statement, s.trait, s.severity, s.reason, s.evidence, s.seq, "
    "s.created_at, a.digest, a.kind, a.name, a.version "
    "FROM risk_statements s JOIN artifacts a ON a.id = s.artifact_id WHERE {where}"
)
_MARKS_FULL = (
    "SELECT model_id, trait, kind, source_id, via_id, path, shared_base, created_at "
    "FROM risk_marks WHERE model_id = :m ORDER BY trait"
)


class _StatementRow(NamedTuple):
    attestation_id: int
    statement: str
    trait: str
    severity: str | None
    reason: str
    evidence: list[str]
    seq: int
    created_at: datetime
    digest: str
    kind: str
    name: str
    version: str


class _FullMarkRow(NamedTuple):
    model_id: int
    trait: str
    kind: str
    source_id: int
    via_id: int
    path: list[Any]
    shared_base: list[str]
    created_at: datetime


def _datetime(session: Session) -> Any:
    """How a timestamp column reads through `fetch` (text on SQLite), as SQLAlchemy reads it."""
    dialect = session.get_bind().dialect
    proc = _DATETIME.get(dialect.name)
    if proc is None:
        proc = _S.c.created_at.type.result_processor(dialect, None) or (lambda v: v)
        _DATETIME[dialect.name] = proc
    return proc


_DATETIME: dict[str, Any] = {}


def _statements_in_force(
    session: Session, where: str, params: dict[str, Any]
) -> tuple[list[FlagPublic], list[ClearancePublic]]:
    """Flags and clearances in force among the statements matching `where` (SQL on `s`, the
    statements, for `registry.db.fetch`), by the reference rule (the later statement on an
    (artifact, trait) wins)."""
    when = _datetime(session)
    rows = [
        _StatementRow(a, st, t, sev, rsn, loads(ev), seq, when(at), *rest)
        for a, st, t, sev, rsn, ev, seq, at, *rest in fetch(
            session, _STATEMENTS.format(where=where), params
        )
    ]
    if not rows:
        return [], []
    nodes = {r.digest: Node(r.digest, ArtifactKind(r.kind)) for r in rows}
    flags = [
        Flag(
            r.digest,
            r.trait,
            Severity(r.severity),
            r.reason,
            tuple(r.evidence),
            str(r.attestation_id),
            r.seq,
        )
        for r in rows
        if r.statement == "flag"
    ]
    clears = [
        Clearance(r.digest, r.trait, r.reason, tuple(r.evidence), r.seq)
        for r in rows
        if r.statement == "clearance"
    ]
    state = compute_risk(LineageGraph(nodes.values(), ()), flags, clears)
    by_seq = {r.seq: r for r in rows}
    detail = describe_evidence(
        session, [f.evidence for f in state.flags] + [c.evidence for c in state.clearances]
    )
    f_out = [
        FlagPublic(
            artifact=f.artifact,
            artifact_ref=f"{by_seq[f.seq].name}@{by_seq[f.seq].version}",
            trait=f.trait,
            severity=f.severity,
            reason=f.reason,
            evidence=list(f.evidence),
            evidence_detail=[detail[e] for e in f.evidence],
            attestation_id=by_seq[f.seq].attestation_id,
            created_at=by_seq[f.seq].created_at,
        )
        for f in state.flags
    ]
    c_out = [
        ClearancePublic(
            artifact=c.artifact,
            artifact_ref=f"{by_seq[c.seq].name}@{by_seq[c.seq].version}",
            trait=c.trait,
            reason=c.reason,
            evidence=list(c.evidence),
            evidence_detail=[detail[e] for e in c.evidence],
            attestation_id=by_seq[c.seq].attestation_id,
            created_at=by_seq[c.seq].created_at,
        )
        for c in state.clearances
    ]
    return f_out, c_out


def risk_of(session: Session, artifact: Artifact | ArtifactKey) -> RiskPublic:
    """Flags, clearances and at-risk marks of one artifact, with explanations."""
    flags, clears = _statements_in_force(session, "s.artifact_id = :a", {"a": artifact.id})
    when = _datetime(session)
    rows = [
        _FullMarkRow(m, t, k, s, v, loads(p), loads(sb), when(at))
        for m, t, k, s, v, p, sb, at in fetch(session, _MARKS_FULL, {"m": artifact.id})
    ]
    marks = _marks_public(session, rows)
    status = "flagged" if flags else "at_risk" if marks else "cleared" if clears else "no_risk"
    return RiskPublic(
        artifact=artifact.digest,
        artifact_ref=f"{artifact.name}@{artifact.version}",
        status=status,
        flags=flags,
        clearances=clears,
        at_risk=marks,
    )


def list_flags(session: Session, trait: str | None) -> list[FlagPublic]:
    """Flags in force, optionally for one trait."""
    if trait:
        flags, _ = _statements_in_force(session, "s.trait = :t", {"t": trait})
    else:
        flags, _ = _statements_in_force(session, "1 = 1", {})
    return flags


def at_risk_queue(
    session: Session,
    trait: str | None,
    limit: int,
    offset: int,
    *,
    include_accepted: bool = False,
) -> tuple[list[MarkPublic], int]:
    """The review queue: at-risk models, newest first.

    A mark exists only while its model is neither flagged nor cleared for the trait, so every
    entry is one no reviewer has ruled on yet; flagging or clearing it takes it off the queue.
    A risk accepted by a reviewer (`registry/reviews/acceptance.py`) is off the queue until the
    acceptance expires, unless `include_accepted`.
    """
    stmt = select(_M)
    if not include_accepted:
        from ..models import RiskAcceptance

        acc = RiskAcceptance.__table__  # type: ignore[attr-defined]
        stmt = stmt.where(
            ~exists().where(
                acc.c.artifact_id == _M.c.model_id,
                acc.c.trait == _M.c.trait,
                acc.c.expires_at > utcnow(),
            )
        )
    if trait:
        stmt = stmt.where(_M.c.trait == trait)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(_M.c.created_at.desc(), _M.c.model_id.desc(), _M.c.trait)
        .limit(limit)
        .offset(offset)
    ).all()
    return _marks_public(session, rows), total


def node_marks(
    session: Session, ids: Sequence[int]
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
    """Flags in force and marks of many nodes, for decorating lineage answers."""
    flags: dict[int, list[dict[str, Any]]] = {}
    marks: dict[int, list[dict[str, Any]]] = {}
    if not ids or not _any_statement(session):
        return flags, marks
    id_of: dict[str, int] = {}
    for part in _chunks(list(ids)):
        f, _ = _statements_in_force(session, "s.artifact_id IN_INTS(:ids)", {"ids": part})
        for x in f:
            if x.artifact not in id_of:
                id_of[x.artifact] = session.scalar(select(_A.c.id).where(_A.c.digest == x.artifact))  # type: ignore[assignment]
            flags.setdefault(id_of[x.artifact], []).append(
                {"trait": x.trait, "severity": x.severity.value}
            )
        for r in session.execute(
            select(_M.c.model_id, _M.c.trait, _M.c.kind).where(
                derived.among(session, _M.c.model_id, part)
            )
        ):
            marks.setdefault(r.model_id, []).append({"trait": r.trait, "kind": r.kind})
    return flags, marks


def check_fine_tune(
    session: Session, base_ref: str, dataset_refs: Sequence[str]
) -> FineTuneCheckPublic:
    """The verdict for fine-tuning `base_ref` on `dataset_refs`, with paths.

    Raises:
        NotFoundError: a reference is unknown.
        BadRequestError: the base is a dataset or a dataset is a model.
    """
    found = _resolve_refs(
        session, [("base", base_ref), *((f"datasets[{i}]", r) for i, r in enumerate(dataset_refs))]
    )
    base, datasets = found[0], found[1:]
    if base.kind != ArtifactKind.MODEL.value:
        raise BadRequestError(f"base {base_ref} is a dataset, expected a model", field="base")
    for i, (ref, d) in enumerate(zip(dataset_refs, datasets, strict=True)):
        if d.kind != ArtifactKind.DATASET.value:
            raise BadRequestError(
                f"datasets[{i}] {ref} is a model, expected a dataset", field=f"datasets[{i}]"
            )
    result, refs = _check(session, base, datasets)
    return FineTuneCheckPublic(
        verdict=result.verdict,
        base=base.digest,
        base_ref=f"{base.name}@{base.version}",
        datasets=[d.digest for d in datasets],
        reasons=[_reason_public(r, refs) for r in result.reasons],
    )


def _resolve_refs(session: Session, refs: Sequence[tuple[str, str]]) -> list[Any]:
    """`artifacts.service.resolve` for several references, the usual forms in one query.

    Ids, full digests and `name@version` are looked up together (Core rows); any other form
    (a digest prefix, say) goes through `resolve` itself, so the two always agree.

    Raises:
        NotFoundError: a reference is unknown (the field names which).
        BadRequestError, ConflictError: as `resolve`.
    """
    conds: list[str] = []
    params: dict[str, Any] = {}
    keys: list[tuple[str, Any] | Any] = []
    for i, (_field, raw) in enumerate(refs):
        ref = raw.strip()
        bare = ref.removeprefix("sha256:")
        if "@" in ref:
            name, _, version = ref.rpartition("@")
            keys.append(("ref", (name, version)))
            conds.append(f"(name = :n{i} AND version = :v{i})")
            params[f"n{i}"], params[f"v{i}"] = name, version
        elif ref.isdigit() and len(ref) < 12:
            keys.append(("id", int(ref)))
            conds.append(f"id = :i{i}")
            params[f"i{i}"] = int(ref)
        elif len(bare) == 64 and set(bare) <= _HEX:
            keys.append(("digest", bare))
            conds.append(f"digest = :d{i}")
            params[f"d{i}"] = bare
        else:
            keys.append(resolve(session, ref))
    index: dict[tuple[str, Any], Any] = {}
    if conds:
        sql = "SELECT id, digest, kind, name, version FROM artifacts WHERE " + " OR ".join(conds)
        for row in fetch(session, sql, params):
            r = _ArtifactRow(*row)
            index[("id", r.id)] = index[("digest", r.digest)] = r
            index[("ref", (r.name, r.version))] = r
    out = []
    for (field, raw), key in zip(refs, keys, strict=True):
        if not isinstance(key, tuple):
            out.append(key)  # resolved by `resolve`
            continue
        row = index.get(key)
        if row is None:
            raise NotFoundError(f"no artifact {raw.strip()}", field=field, ref=raw.strip())
        out.append(row)
    return out


_HEX = frozenset("0123456789abcdef")


class _ArtifactRow(NamedTuple):
    id: int
    digest: str
    kind: str
    name: str
    version: str


class _SourceRow(NamedTuple):
    dataset_id: int
    source_id: int
    kind: str
    path: list[Any]


class _MarkRow(NamedTuple):
    model_id: int
    trait: str
    source_id: int
    path: list[Any]


# The data sources of the datasets that can give a reason: their source carries a statement or
# a mark (both probes are primary-key or index lookups).
_CARRYING_SOURCES = (
    "SELECT ds.dataset_id, ds.source_id, ds.kind, ds.path FROM data_sources ds "
    "WHERE ds.dataset_id IN_INTS(:ids) AND ("
    "EXISTS (SELECT 1 FROM risk_statements s WHERE s.artifact_id = ds.source_id) "
    "OR EXISTS (SELECT 1 FROM risk_marks m WHERE m.model_id = ds.source_id))"
)
# The statements and the marks of the same artifacts, in one round trip.
_STATEMENTS_AND_MARKS = (
    "SELECT 0, artifact_id, trait, statement, seq, CAST(NULL AS BIGINT), CAST(NULL AS TEXT) "
    "FROM risk_statements WHERE artifact_id IN_INTS(:ids) UNION ALL "
    "SELECT 1, model_id, trait, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), source_id, "
    "CAST(path AS TEXT) FROM risk_marks WHERE model_id IN_INTS(:ids)"
)


def _flags_and_marks(
    session: Session, ids: Iterable[int]
) -> tuple[dict[int, set[str]], dict[int, dict[str, _MarkRow]]]:
    """Per artifact, the traits with a flag in force (as `_in_force`) and the stored marks by
    trait."""
    last_clear: dict[tuple[int, str], int] = {}
    last_flag: dict[tuple[int, str], int] = {}
    marks: dict[int, dict[str, _MarkRow]] = {}
    for which, a, t, st, seq, source, path in fetch(
        session, _STATEMENTS_AND_MARKS, {"ids": sorted({int(i) for i in ids})}
    ):
        if which == 0:
            held = last_clear if st == "clearance" else last_flag
            held[(a, t)] = max(held.get((a, t), -1), seq)
        else:
            marks.setdefault(a, {})[t] = _MarkRow(a, t, source, json.loads(path))
    flagged: dict[int, set[str]] = {}
    for (a, t), seq in sorted(last_flag.items()):
        if seq > last_clear.get((a, t), -1):
            flagged.setdefault(a, set()).add(t)
    return flagged, marks


def _check(
    session: Session, base: Any, datasets: Sequence[Any]
) -> tuple[CheckResult, dict[str, str]]:
    """`lineage.risk.fine_tune_check` from the lineage indexes and the stored marks.

    Only sources that carry a statement or a mark can give a reason, so one indexed query finds
    every candidate (`data_sources` rows of the datasets whose source has one); with nothing
    flagged upstream the check ends there. The reasons are then built and chosen exactly as the
    reference does (one per kind, trait and via, the least shortest path by the virtual key).
    """
    assert base.id is not None
    ds_ids = sorted({d.id for d in datasets if d.id is not None})
    rows = [
        _SourceRow(d, s, k, loads(p))
        for d, s, k, p in (fetch(session, _CARRYING_SOURCES, {"ids": ds_ids}) if ds_ids else ())
    ]
    ids = {base.id} | {r.source_id for r in rows}
    flagged, marks = _flags_and_marks(session, ids)
    refs = _base_refs(base, datasets)
    if not flagged and not marks:
        return CheckResult(Verdict.OK, ()), refs
    gens = {r.source_id for r in rows if r.kind == "model"}
    anc = derived.ancestor_sets(session, gens | {base.id})
    shared = {g: anc.get(base.id, {base.id}) & anc.get(g, {g}) for g in gens}
    anc.update(
        derived.ancestor_sets(session, {s for ss in shared.values() for s in ss} - anc.keys())
    )
    nearest = {g: derived.nearest(ss, anc) for g, ss in shared.items()}
    want_ids = ids | {s for ns in nearest.values() for s in ns}
    want_ids |= {int(p) for r in rows for p, _ in r.path}
    want_ids |= {m.source_id for ms in marks.values() for m in ms.values()}
    digest = _digests(session, want_ids | set(ds_ids))

    def edges(path: Iterable[Sequence[Any]]) -> tuple[Edge, ...]:
        return tuple(Edge(c, p, Relation(r)) for c, p, r in path)

    best: dict[tuple[ReasonKind, str, str], tuple[Any, CheckReason]] = {}

    def offer(reason: CheckReason, first: tuple[str, str]) -> None:
        key = (len(reason.path) + 1, (first, *((e.parent, e.relation.value) for e in reason.path)))
        slot = (reason.kind, reason.trait, reason.via)
        held = best.get(slot)
        if held is None or key < held[0]:
            best[slot] = (key, reason)

    b = base.digest
    for t in flagged.get(base.id, ()):
        offer(CheckReason(ReasonKind.BASE, t, None, b, b, (), ()), (b, "fine_tuned_from"))
    for t, m in marks.get(base.id, {}).items():
        if t not in flagged.get(base.id, ()):
            reason = CheckReason(
                ReasonKind.BASE, t, None, b, digest[m.source_id], edges(m.path), ()
            )
            offer(reason, (b, "fine_tuned_from"))
    for r in rows:
        d, src = digest[r.dataset_id], digest[r.source_id]
        first = (d, Relation.TRAINED_ON.value)
        hops = [(digest[c], digest[p], rel) for c, p, rel in derived.expand(r.dataset_id, r.path)]
        if r.kind == "dataset":
            for t in flagged.get(r.source_id, ()):
                reason = CheckReason(ReasonKind.FLAGGED_DATASET, t, d, src, src, edges(hops), ())
                offer(reason, first)
            continue
        carried: dict[str, tuple[list[Any], str]] = {
            t: ([], src) for t in flagged.get(r.source_id, ())
        }
        for t, m in marks.get(r.source_id, {}).items():
            carried.setdefault(t, ([tuple(e) for e in m.path], digest[m.source_id]))
        for t, (tail, source) in carried.items():
            if shared[r.source_id]:
                kind = ReasonKind.TEACHER_SHARES_BASE
                bases = tuple(sorted(digest[x] for x in nearest[r.source_id]))
            else:
                kind, bases = ReasonKind.TEACHER_NO_SHARED_BASE, ()
            offer(CheckReason(kind, t, d, src, source, edges([*hops, *tail]), bases), first)
    reasons = sorted(
        (r for _, r in best.values()),
        key=lambda r: (-r.verdict.rank, r.trait, r.kind.value, r.via, r.dataset or ""),
    )
    verdict = max((r.verdict for r in reasons), key=lambda v: v.rank, default=Verdict.OK)
    shown = {x for r in reasons for e in r.path for x in (e.child, e.parent)}
    shown |= {x for r in reasons for x in (r.via, r.source, *r.shared_base)}
    refs.update(_refs(session, shown - refs.keys()))
    return CheckResult(verdict, tuple(reasons)), refs


def _base_refs(base: Any, datasets: Sequence[Any]) -> dict[str, str]:
    refs = {base.digest: f"{base.name}@{base.version}"}
    refs.update({d.digest: f"{d.name}@{d.version}" for d in datasets})
    return refs


def _reason_public(r: CheckReason, refs: dict[str, str]) -> ReasonPublic:
    return ReasonPublic(
        kind=r.kind,
        verdict=r.verdict,
        trait=r.trait,
        dataset=r.dataset,
        dataset_ref=refs[r.dataset] if r.dataset else None,
        via=r.via,
        via_ref=refs[r.via],
        source=r.source,
        source_ref=refs[r.source],
        path=_path(((e.child, e.parent, e.relation.value) for e in r.path), refs),
        shared_base=list(r.shared_base),
        shared_base_refs=[refs[d] for d in r.shared_base],
        explanation=_explain(r, refs),
    )


def _explain(r: CheckReason, refs: dict[str, str]) -> str:
    via, source = refs[r.via], refs[r.source]
    match r.kind:
        case ReasonKind.BASE:
            if r.via == r.source:
                return f"the base {via} is flagged for {r.trait!r}"
            return f"the base {via} is at risk for {r.trait!r} through {source}"
        case ReasonKind.TEACHER_SHARES_BASE:
            shared = ", ".join(refs[b] for b in r.shared_base)
            return (
                f"{refs[r.dataset or '']} was generated by {via}, which carries {r.trait!r} "
                f"(flag on {source}) and shares a base with the candidate ({shared}): the trait "
                "can pass through the data even if it was filtered"
            )
        case ReasonKind.TEACHER_NO_SHARED_BASE:
            return (
                f"{refs[r.dataset or '']} was generated by {via}, which carries {r.trait!r} "
                f"(flag on {source}) but shares no base with the candidate: overt content risk only"
            )
        case ReasonKind.FLAGGED_DATASET:
            return f"{via} in the data lineage is flagged for {r.trait!r}: overt content risk"


REVIEW_PREDICATES = (FLAG_PREDICATE, CLEARANCE_PREDICATE)


# ---------------------------------------------------------------------------- audit


def _statements_rows(session: Session) -> Any:
    rows = session.execute(select(_S, _A.c.digest).join(_A, _A.c.id == _S.c.artifact_id))
    return {
        (r.attestation_id,): {
            "artifact": r.digest,
            "statement": r.statement,
            "trait": r.trait,
            "severity": r.severity,
            "reason": r.reason,
            "evidence": list(r.evidence),
            "seq": r.seq,
        }
        for r in rows
    }


def _marks_rows(session: Session) -> Any:
    model, source, via = _A.alias("model"), _A.alias("source"), _A.alias("via")
    rows = session.execute(
        select(_M, model.c.digest.label("m"), source.c.digest.label("s"), via.c.digest.label("v"))
        .join(model, model.c.id == _M.c.model_id)
        .join(source, source.c.id == _M.c.source_id)
        .join(via, via.c.id == _M.c.via_id)
    )
    return {
        (r.m, r.trait): {
            "kind": r.kind,
            "source": r.s,
            "via": r.v,
            "path": [list(p) for p in r.path],
            "shared_base": list(r.shared_base),
        }
        for r in rows
    }


def derived_tables() -> list[Any]:
    """The risk tables and lineage indexes, for `studbook log audit`'s rebuild from envelopes."""
    from ..replay import DerivedTable

    return [
        DerivedTable("risk_statements", ("attestation_id",), _statements_rows),
        DerivedTable("risk_marks", ("model", "trait"), _marks_rows),
        *derived.derived_tables(),
    ]
