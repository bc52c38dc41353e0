"""Lineage indexes for the risk rule, kept at write time: weights-ancestor sets and data sources.

The at-risk rule asks two questions of the lineage over and over: do two models share a base (do
their weights-ancestor sets meet?), and which models generated the data behind a dataset, by which
least shortest path? Walking the graph to answer them makes a check's cost grow with depth and
with the size of the upstream closure. Both answers depend on the edges only, never on flags, and
edges are only ever added, so we keep them as tables (`registry/models/risk.py`) and update them
in the transaction of the registration that adds the edges:

- a new model's ancestor set is itself plus its weights parents' sets: one INSERT ... SELECT;
- a new dataset's sources are itself plus, per parent, the parent (a generator) or the parent's
  sources one step further (a `derived_from` parent), the least shortest path winning: a read of
  the parents' rows and one multi-row insert;
- an amendment (a new edge on an existing artifact) adds the parent's ancestors to the child and
  to every weights descendant (found by walking the weights edges down) in one statement, or
  recomputes the sources of the datasets that draw on the amended one (those holding it as a
  source), in topological order.

Least shortest paths keep their optimal substructure (`lineage.graph`): the best path from D to a
source is one step to a parent followed by that parent's best path, and two candidates of equal
length differ at their first step (distinct parents have distinct digests), so choosing among the
parents' rows by (distance, first step key) reproduces `LineageGraph.generators` exactly.

Flags never touch these tables, so flag propagation and ingest with flags present stay cheap; the
tests hold them to `lineage.graph` after any sequence of writes, and the audit rebuilds them from
envelopes (`derived_tables`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlmodel import Session

from lineage.types import ArtifactKind, Relation

from ..db import fetch, loads, sql, write_rows
from ..models import Artifact, DataSource, LineageEdge, WeightsAncestor

_A = Artifact.__table__  # type: ignore[attr-defined]
_E = LineageEdge.__table__  # type: ignore[attr-defined]
_WA = WeightsAncestor.__table__  # type: ignore[attr-defined]
_DS = DataSource.__table__  # type: ignore[attr-defined]
CHUNK = 2000
WEIGHTS = tuple(sorted(r.value for r in Relation if r.is_weights))
DATA_UP = (Relation.DERIVED_FROM.value, Relation.GENERATED_BY.value)
MODEL, DATASET = ArtifactKind.MODEL.value, ArtifactKind.DATASET.value

# An amendment gives the child and every weights descendant of it the parent's ancestors. The
# descendants are found by walking the weights edges down (`ix_edges_parent_id`), not through an
# index of `weights_ancestors` by ancestor: such an index costs every new model one random page
# write per ancestor, ten times the rest of its lineage indexing on deep chains, to serve only
# this rare write. SQLite needs a WHERE in the SELECT of an INSERT ... ON CONFLICT (its upsert
# parsing rule).
_AMEND_WEIGHTS = text(
    "INSERT INTO weights_ancestors (model_id, ancestor_id) "
    "WITH RECURSIVE down(id) AS (SELECT CAST(:child AS BIGINT) "
    "UNION SELECT e.child_id FROM edges e JOIN down ON e.parent_id = down.id WHERE e.relation IN ("
    + ", ".join(f"'{r}'" for r in WEIGHTS)
    + ")) SELECT down.id, a.ancestor_id FROM down "
    "JOIN weights_ancestors a ON a.model_id = :parent WHERE true "
    "ON CONFLICT DO NOTHING"
)

Source = tuple[str, int, list[list[Any]]]
"""(kind, distance, path) of one data source: path is [[parent id, relation], ...]."""


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[list[int]]:
    """`ids` in slices small enough for one IN list."""
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def whole(ids: Sequence[int]) -> Iterable[list[int]]:
    """`ids` as one part (nothing when empty), for `among`, which takes any number."""
    if ids:
        yield list(ids)


def among(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids` with the ids as one parameter, however many there are.

    An expanding IN list costs SQLAlchemy work per element on every execution (ten thousand ids
    cost more than the query); a JSON array (`json_each` on SQLite) or an array parameter
    (`= ANY` on PostgreSQL) is one bound value, and both databases probe the index per element.
    """
    values = sorted({int(i) for i in ids})
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger())))
    table = func.json_each(bindparam(None, json.dumps(values), type_=String()))
    return column.in_(select(literal_column("value")).select_from(table))


# ----------------------------------------------------------------------------- writes


def record(session: Session, outcome: dict[str, Any]) -> None:
    """Index what a registration added (no commit); `outcome` is `apply_registration`'s.

    A new artifact is the ingest hot path, so it is written with fixed driver-level SQL (no
    statement building per registration): a model is one INSERT ... SELECT, a dataset one read
    of its `derived_from` parents' rows (none for a generated dataset) and one insert.
    """
    artifact_id = int(outcome["artifact_id"])
    new_edges: list[tuple[int, int, Any]] = list(outcome.get("new_edges") or ())
    if outcome.get("created"):
        if outcome["artifact"].kind != MODEL:
            _index_new_datasets(session, [(artifact_id, _data_parents(outcome))])
            return
        parents = sorted({int(p) for _, p, r in new_edges if Relation(r).is_weights})
        if not parents:
            sql(
                session,
                "INSERT INTO weights_ancestors (model_id, ancestor_id) VALUES (:m, :m)",
                {"m": artifact_id},
            )
        elif len(parents) == 1:
            sql(session, _NEW_MODEL_ONE, {"m": artifact_id, "p": parents[0]})
        else:
            sql(session, _NEW_MODEL_MANY, {"m": artifact_id, "ps": parents})
        return
    weights = sorted({p for _, p, r in new_edges if Relation(r).is_weights})
    for parent in weights:
        session.execute(_AMEND_WEIGHTS, {"child": artifact_id, "parent": parent})
    if any(Relation(r).value in DATA_UP for _, _, r in new_edges):
        affected = session.execute(
            select(_DS.c.dataset_id).where(_DS.c.source_id == artifact_id)
        ).scalars()
        index_datasets(session, sorted(set(affected) | {artifact_id}))


_NEW_MODEL_ONE = (
    "INSERT INTO weights_ancestors (model_id, ancestor_id) SELECT :m, ancestor_id "
    "FROM weights_ancestors WHERE model_id = :p UNION SELECT :m, :m"
)
_NEW_MODEL_MANY = (
    "INSERT INTO weights_ancestors (model_id, ancestor_id) SELECT DISTINCT :m, ancestor_id "
    "FROM weights_ancestors WHERE model_id IN_INTS(:ps) UNION SELECT :m, :m"
)


def record_new(session: Session, outcomes: Sequence[dict[str, Any]]) -> None:
    """`record` of many artifacts registered just now, given in registration order (every
    parent stored before or earlier in `outcomes`), with one read and one write per table.

    A batch registers a thousand artifacts at a time, and a statement per artifact is a round
    trip each on PostgreSQL. The rule is `record`'s: a model's ancestor set is itself plus its
    weights parents' sets, a dataset's sources come from its parents' rows (`_sources`), here
    with the parents from earlier in the batch taken from memory and the others read at once.
    Every outcome must be a new artifact's (`created`), with its `artifact` row.
    """
    models: list[tuple[int, list[int]]] = []
    datasets: list[tuple[int, list[tuple[str, str, int, str]]]] = []
    for outcome in outcomes:
        if not outcome.get("created"):
            raise ValueError("record_new takes new artifacts only")
        me = int(outcome["artifact_id"])
        if outcome["artifact"].kind == MODEL:
            edges = outcome.get("new_edges") or ()
            models.append((me, sorted({int(p) for _, p, r in edges if Relation(r).is_weights})))
        else:
            datasets.append((me, _data_parents(outcome)))
    anc = ancestor_sets(session, {p for _, ps in models for p in ps} - {m for m, _ in models})
    weights_rows: list[tuple[int, int]] = []
    for m, ps in models:
        mine = anc[m] = {m}.union(*(anc.get(p, ()) for p in ps))
        weights_rows.extend((m, a) for a in sorted(mine))
    write_rows(session, "weights_ancestors", ("model_id", "ancestor_id"), weights_rows)
    _index_new_datasets(session, datasets)


def _data_parents(outcome: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    """A new dataset's data parents as `_sources` takes them, (digest, relation, id, kind) in
    first-step order; the digests (the tie-break between routes) are the outcome's added edges,
    which follow its new edges one for one."""
    edges = outcome.get("new_edges") or ()
    digests = [e.parent for e in outcome.get("added_edges") or ()]
    links = [(d, Relation(r).value, int(p)) for (_, p, r), d in zip(edges, digests, strict=True)]
    return sorted(
        (d, r, p, MODEL if r == Relation.GENERATED_BY.value else DATASET)
        for d, r, p in links
        if r in DATA_UP
    )


def _index_new_datasets(
    session: Session, datasets: Sequence[tuple[int, list[tuple[str, str, int, str]]]]
) -> None:
    """The sources of datasets registered just now, in order, each with its `_data_parents`:
    the stored parents' rows in one read, those registered earlier in `datasets` from memory,
    and one write."""
    rows: dict[int, dict[int, Source]] = {}
    stored = sorted(
        {p for _, ps in datasets for _, rel, p, _ in ps if rel == Relation.DERIVED_FROM.value}
        - {d for d, _ in datasets}
    )
    if stored:
        for d, src, k, n, path in fetch(session, _SOURCES_OF, {"ps": stored}):
            rows.setdefault(d, {})[src] = (k, n, loads(path))
    source_rows: list[tuple[int, int, str, int, str]] = []
    for d, parents in datasets:
        mine = rows[d] = _sources(d, parents, rows)
        source_rows.extend((d, src, k, n, json.dumps(path)) for src, (k, n, path) in mine.items())
    write_rows(session, "data_sources", _SOURCE_COLUMNS, source_rows)


_SOURCE_COLUMNS = ("dataset_id", "source_id", "kind", "distance", "path")
_SOURCES_OF = (
    "SELECT dataset_id, source_id, kind, distance, path FROM data_sources "
    "WHERE dataset_id IN_INTS(:ps)"
)


def index_datasets(session: Session, ids: Sequence[int]) -> int:
    """(Re)compute the data sources of datasets `ids` from their parents' rows; returns rows.

    Datasets among `ids` are done parents first; a parent outside `ids` is read as stored.
    """
    todo = set(ids)
    if not todo:
        return 0
    # Parent edges of every dataset to do, with the parent's digest (the tie-break) and kind.
    parents: dict[int, list[tuple[str, str, int, str]]] = {i: [] for i in todo}
    digest: dict[int, str] = {}
    for part in whole(sorted(todo)):
        for c, p, rel, d, k in session.execute(
            select(_E.c.child_id, _E.c.parent_id, _E.c.relation, _A.c.digest, _A.c.kind)
            .join(_A, _A.c.id == _E.c.parent_id)
            .where(among(session, _E.c.child_id, part), _E.c.relation.in_(DATA_UP))
        ):
            parents[c].append((d, rel, p, k))
            digest[p] = d
    outside = sorted(
        {p for ps in parents.values() for _, rel, p, _ in ps if rel != Relation.GENERATED_BY.value}
        - todo
    )
    rows: dict[int, dict[int, Source]] = {}
    for part in whole(outside):
        for r in session.execute(select(_DS).where(among(session, _DS.c.dataset_id, part))):
            rows.setdefault(r.dataset_id, {})[r.source_id] = (r.kind, r.distance, list(r.path))
    order = _topological(
        todo, {c: [p for _, _, p, _ in ps if p in todo] for c, ps in parents.items()}
    )
    out: list[dict[str, Any]] = []
    for c in order:
        mine = _sources(c, sorted(parents[c]), rows)
        rows[c] = mine
        out.extend(
            {"dataset_id": c, "source_id": s, "kind": k, "distance": n, "path": path}
            for s, (k, n, path) in mine.items()
        )
    for part in whole(sorted(todo)):
        session.execute(delete(_DS).where(among(session, _DS.c.dataset_id, part)))
    if out:
        session.execute(insert(_DS), out)
    return len(out)


def _sources(
    dataset: int, parents: list[tuple[str, str, int, str]], rows: dict[int, dict[int, Source]]
) -> dict[int, Source]:
    """One dataset's sources; `parents` sorted by (digest, relation), i.e. by first step key."""
    best: dict[int, Source] = {dataset: (DATASET, 0, [])}
    for _digest, rel, p, kind in parents:
        if rel == Relation.GENERATED_BY.value:
            offers: Iterable[tuple[int, Source]] = [(p, (kind, 1, [[p, rel]]))]
        else:
            offers = (
                (s, (k, n + 1, [[p, rel], *path])) for s, (k, n, path) in rows.get(p, {}).items()
            )
        for s, cand in offers:
            held = best.get(s)
            # Parents come in first-step order, so on equal distance the held path is least.
            if held is None or cand[1] < held[1]:
                best[s] = cand
    return best


def _topological(todo: set[int], deps: dict[int, list[int]]) -> list[int]:
    """`todo` ordered so every member comes after its members in `deps` (Kahn, by id)."""
    waiting = {c: len(set(ds)) for c, ds in deps.items()}
    users: dict[int, list[int]] = {}
    for c, ds in deps.items():
        for d in set(ds):
            users.setdefault(d, []).append(c)
    ready = sorted(c for c in todo if waiting.get(c, 0) == 0)
    out: list[int] = []
    while ready:
        c = ready.pop()
        out.append(c)
        for u in users.get(c, ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append(u)
    return out


def rebuild(session: Session) -> tuple[int, int]:
    """Recompute both tables from the edges (no commit); returns their row counts.

    For bulk loads that bypass ingest (benchmarks) and for checking the incremental state.
    """
    session.execute(delete(_WA))
    weights = ", ".join(f"'{r}'" for r in WEIGHTS)
    session.execute(
        text(
            "INSERT INTO weights_ancestors (model_id, ancestor_id) "
            "WITH RECURSIVE wa(model_id, ancestor_id) AS ("
            "SELECT id, id FROM artifacts WHERE kind = 'model' UNION "
            "SELECT wa.model_id, e.parent_id FROM wa JOIN edges e ON e.child_id = wa.ancestor_id "
            f"WHERE e.relation IN ({weights})) SELECT model_id, ancestor_id FROM wa"
        )
    )
    session.execute(delete(_DS))
    ids = list(session.execute(select(_A.c.id).where(_A.c.kind == DATASET)).scalars())
    n_ds = index_datasets(session, ids)
    n_wa = int(session.scalar(select(text("count(*)")).select_from(_WA)) or 0)
    return n_wa, n_ds


# ----------------------------------------------------------------------------- reads


def ancestor_sets(session: Session, ids: Iterable[int]) -> dict[int, set[int]]:
    """Weights-ancestor sets (each model included) of the given models."""
    out: dict[int, set[int]] = {}
    wanted = sorted({int(i) for i in ids})
    if wanted:
        for m, a in fetch(session, _ANCESTORS, {"ids": wanted}):
            out.setdefault(m, set()).add(a)
    return out


_ANCESTORS = "SELECT model_id, ancestor_id FROM weights_ancestors WHERE model_id IN_INTS(:ids)"


def nearest(shared: set[int], anc: dict[int, set[int]]) -> set[int]:
    """The minimal elements of `shared` (no strict weights descendant in it), given the ancestor
    sets of its members (`LineageGraph.nearest_shared_bases`)."""
    dominated: set[int] = set()
    for s in shared:
        dominated |= anc.get(s, {s}) - {s}
    return shared - dominated


def expand(start: int, path: Sequence[Sequence[Any]]) -> list[tuple[int, int, str]]:
    """A stored `[[parent id, relation], ...]` path from `start` as (child, parent, relation)."""
    out, here = [], start
    for p, rel in path:
        out.append((here, int(p), str(rel)))
        here = int(p)
    return out


# ----------------------------------------------------------------------------- audit


def _digests(session: Session) -> dict[int, str]:
    return dict(session.execute(select(_A.c.id, _A.c.digest)).all())


def _weights_rows(session: Session) -> Any:
    d = _digests(session)
    return {(d[m], d[a]): {} for m, a in session.execute(select(_WA.c.model_id, _WA.c.ancestor_id))}


def _sources_rows(session: Session) -> Any:
    d = _digests(session)
    return {
        (d[r.dataset_id], d[r.source_id]): {
            "kind": r.kind,
            "distance": r.distance,
            "path": [[d[int(p)], rel] for p, rel in r.path],
        }
        for r in session.execute(select(_DS))
    }


def derived_tables() -> list[Any]:
    """The lineage indexes, for `studbook log audit`'s rebuild from envelopes."""
    from ..replay import DerivedTable

    return [
        DerivedTable("weights_ancestors", ("model", "ancestor"), _weights_rows),
        DerivedTable("data_sources", ("dataset", "source"), _sources_rows),
    ]
