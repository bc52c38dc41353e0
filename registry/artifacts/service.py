"""Artifacts and lineage edges: applying registrations, lookups, and graph walks in SQL.

A registration statement names one artifact (by content digest) and its parents (by digest).

Ownership. The principal that first registers an artifact owns it: the principal of the
attestation that created the row (`artifacts.attestation_id`), so ownership needs no column of
its own and is rebuilt with everything else on a replay. Re-registering a known digest with new
parents is an amendment (say, a `trained_on` edge that was not known at first): only the owner
or an admin may make one, anyone else gets 403 naming the owner, and the answer says out loud
that the artifact was amended and which edges were added. A re-registration that adds nothing
is accepted from anyone (a second signature over the same facts) and changes nothing. Edges are
never removed, and each keeps the attestation that asserted it, so every lineage answer says who
asserted an edge and when.

Amendments can close a cycle, which is refused before anything is written. Every check here
reads under the write lock `submit` takes first (`registry.db.begin_write`), so two concurrent
registrations (A fine_tuned_from B, B fine_tuned_from A) are decided one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert, or_, select
from sqlmodel import Session

from lineage.errors import CycleError
from lineage.statements import VerifiedStatement, parse_registration
from lineage.types import (
    ArtifactKind,
    ArtifactRef,
    ParentLink,
    Registration,
    Relation,
    check_digest,
)

from ..auth import Role
from ..db import fetch, loads, sql_many, timestamp
from ..errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableError,
)
from ..models import Artifact, Attestation, LineageEdge, Principal
from ..schema_types import utc
from .schemas import (
    AddedEdge,
    ArtifactPublic,
    Direction,
    EdgePublic,
    LineageNode,
    LineagePublic,
)

_CHUNK = 500
_ARTIFACTS = Artifact.__table__  # type: ignore[attr-defined]
_EDGES = LineageEdge.__table__  # type: ignore[attr-defined]
_ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]
_PRINCIPALS = Principal.__table__  # type: ignore[attr-defined]
MAX_DEPTH = 64
MAX_NODES = 10_000


def to_public(a: Artifact, owner: str) -> ArtifactPublic:
    """API view of an artifact row; `owner` is its owner's name (see `owners`)."""
    assert a.id is not None
    return artifact_public(
        a.id, a.digest, a.kind, a.name, a.version, a.opaque, a.metadata_, a.attestation_id,
        a.created_at, owner,
    )  # fmt: skip


def artifact_public(
    id: int,
    digest: str,
    kind: str,
    name: str,
    version: str,
    opaque: Any,
    metadata: dict[str, Any],
    attestation_id: int,
    created_at: datetime,
    owner: str,
) -> ArtifactPublic:
    """API view of an artifact from its columns, in table order (an ORM row's, or a driver-level
    read's with its JSON decoded and its timestamp parsed).

    The columns are already typed by the database layer (or were just checked by ingest), so
    the view is built without validating them again: listings and lineage walks build
    thousands of these.
    """
    return ArtifactPublic.model_construct(
        id=int(id),
        digest=digest,
        kind=ArtifactKind(kind),
        name=name,
        version=version,
        ref=f"{name}@{version}",
        opaque=bool(opaque),
        metadata=metadata,
        owner=owner,
        attestation_id=int(attestation_id),
        created_at=utc(created_at),
    )


def signers(session: Session, attestation_ids: Iterable[int]) -> dict[int, tuple[str, Any]]:
    """attestation id -> (the name of the principal that submitted it, when it was received)."""
    out: dict[int, tuple[str, Any]] = {}
    ids = list(dict.fromkeys(attestation_ids))
    a, p = _ATTESTATIONS, _PRINCIPALS
    for i in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(a.c.id, p.c.name, a.c.received_at)
            .join(p, p.c.id == a.c.principal_id)
            .where(a.c.id.in_(ids[i : i + _CHUNK]))
        )
        out.update({r.id: (r.name, r.received_at) for r in rows})
    return out


def publics(session: Session, rows: Sequence[Artifact]) -> list[ArtifactPublic]:
    """API views of artifact rows, with their owners (one query for all of them)."""
    who = signers(session, (a.attestation_id for a in rows))
    return [to_public(a, who.get(a.attestation_id, ("?", None))[0]) for a in rows]


def public(session: Session, a: Artifact) -> ArtifactPublic:
    """API view of one artifact row, with its owner."""
    return publics(session, [a])[0]


MIN_DIGEST_PREFIX = 12  # hex characters: tables show this many, and any unique prefix works
_HEX = frozenset("0123456789abcdef")


def _digest_prefix(ref: str) -> str | None:
    """The hex of `sha256:<hex>` or bare `<hex>` when it is 12 to 63 characters long."""
    hexpart = ref.removeprefix("sha256:")
    if MIN_DIGEST_PREFIX <= len(hexpart) < 64 and set(hexpart) <= _HEX:
        return hexpart
    return None


class ArtifactKey(NamedTuple):
    """What a view that needs no more of an artifact reads of it (`resolve_key`)."""

    id: int
    digest: str
    name: str
    version: str


_KEY_SQL = {
    "id": "SELECT id, digest, name, version FROM artifacts WHERE id = ?",
    "digest": "SELECT id, digest, name, version FROM artifacts WHERE digest = ?",
    "ref": "SELECT id, digest, name, version FROM artifacts WHERE name = ? AND version = ?",
}


def resolve_key(session: Session, ref: str) -> ArtifactKey:
    """`resolve`, reading only the artifact's key: an id, a full digest and `name@version` are
    one fixed indexed read through the driver's cursor (no ORM row, no statement building); a
    digest prefix, and every error, go through `resolve` itself."""
    bare = ref.strip()
    params: tuple[Any, ...] | None = None
    if "@" in bare:
        name, _, version = bare.rpartition("@")
        which, params = "ref", (name, version)
    elif bare.isdigit() and len(bare) < MIN_DIGEST_PREFIX:
        which, params = "id", (int(bare),)
    elif _digest_prefix(bare) is None and (
        bare.startswith("sha256:") or (len(bare) == 64 and set(bare) <= _HEX)
    ):
        which, params = "digest", (check_digest(bare, field_name="ref"),)
    if params is not None:
        conn = session.connection()
        text_ = _KEY_SQL[which]
        if conn.dialect.name == "postgresql":
            text_ = text_.replace("?", "%s")
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(text_, params)
            row = cur.fetchone()
        finally:
            cur.close()
        if row is not None:
            return ArtifactKey(int(row[0]), str(row[1]), str(row[2]), str(row[3]))
    a = resolve(session, ref)  # the answer (or the error) the full resolution gives
    return ArtifactKey(int(a.id), a.digest, a.name, a.version)  # type: ignore[arg-type]


def resolve(session: Session, ref: str) -> Artifact:
    """Find an artifact by id, `sha256:<digest>` (or a bare digest), a unique digest prefix of
    12 or more hex characters (with or without `sha256:`), or `name@version`.

    A string of 12 or more digits is read as a digest prefix, not an id.

    Raises:
        NotFoundError: nothing matches.
        ConflictError: the digest prefix matches several artifacts (they are listed).
        BadRequestError: the reference has none of these forms.
    """
    ref = ref.strip()
    row: Artifact | None
    prefix = _digest_prefix(ref)
    if "@" in ref:  # first: no id or digest holds '@', but a name may look like one
        name, _, version = ref.rpartition("@")
        row = session.scalars(
            select(Artifact).where(Artifact.name == name, Artifact.version == version)  # type: ignore[arg-type]
        ).first()
    elif ref.isdigit() and len(ref) < MIN_DIGEST_PREFIX:
        row = session.get(Artifact, int(ref))
    elif prefix is not None:
        # A range on the unique digest index, not LIKE (SQLite's LIKE ignores the index).
        matches = session.scalars(
            select(Artifact)
            .where(Artifact.digest >= prefix, Artifact.digest < prefix + "g")  # type: ignore[arg-type]
            .order_by(Artifact.digest)  # type: ignore[arg-type]
            .limit(6)
        ).all()
        if len(matches) > 1:
            shown = ", ".join(f"{a.digest[:16]}… {a.name}@{a.version}" for a in matches[:5])
            more = " and more" if len(matches) > 5 else ""
            raise ConflictError(
                f"digest prefix {prefix} is ambiguous: it matches {shown}{more}; "
                "give more characters",
                field="ref",
                ref=ref,
            )
        row = matches[0] if matches else None
    elif ref.startswith("sha256:") or (len(ref) == 64 and set(ref) <= _HEX):
        digest = check_digest(ref, field_name="ref")
        row = session.scalars(select(Artifact).where(Artifact.digest == digest)).first()  # type: ignore[arg-type]
    else:
        raise BadRequestError(
            f"artifact reference {ref!r} must be an id, sha256:<digest>, a digest prefix of "
            f"{MIN_DIGEST_PREFIX}+ hex characters, or name@version",
            field="ref",
        )
    if row is None:
        raise NotFoundError(f"no artifact {ref}", field="ref", ref=ref)
    return row


def search(
    session: Session, *, q: str | None, kind: ArtifactKind | None, limit: int, offset: int
) -> tuple[list[Artifact], int]:
    """A page of artifacts, newest first, optionally filtered by name substring and kind."""
    stmt = select(Artifact)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(Artifact.name.like(pattern, escape="\\"), Artifact.digest.startswith(q.lower()))  # type: ignore[attr-defined]
        )
    if kind is not None:
        stmt = stmt.where(Artifact.kind == kind.value)  # type: ignore[arg-type]
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Artifact.id.desc()).limit(limit).offset(offset))  # type: ignore[union-attr]
    return list(rows), total


def _by_digest(session: Session, digests: Iterable[str]) -> dict[str, Artifact]:
    out: dict[str, Artifact] = {}
    items = list(dict.fromkeys(digests))
    for i in range(0, len(items), _CHUNK):
        part = items[i : i + _CHUNK]
        for a in session.scalars(select(Artifact).where(Artifact.digest.in_(part))):  # type: ignore[attr-defined]
            out[a.digest] = a
    return out


def _find_path_up(session: Session, start: int, target: int) -> list[int] | None:
    """Ids from `start` up to `target` through parent edges, if `target` is an ancestor."""
    prev: dict[int, int] = {start: start}
    frontier = [start]
    while frontier:
        nxt: list[int] = []
        for i in range(0, len(frontier), _CHUNK):
            part = frontier[i : i + _CHUNK]
            rows = session.execute(
                select(LineageEdge.child_id, LineageEdge.parent_id).where(
                    LineageEdge.child_id.in_(part)  # type: ignore[attr-defined]
                )
            )
            for child, parent in rows:
                if parent in prev:
                    continue
                prev[parent] = child
                if parent == target:
                    path = [parent]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return path[::-1]
                nxt.append(parent)
        frontier = nxt
    return None


# The hot path's statements, built once: building a statement and its cache key on every
# registration cost more than running it.
class _Found(NamedTuple):
    id: int
    digest: str
    kind: str
    name: str
    version: str
    attestation_id: int


# The artifact itself, any artifact holding its name@version, and every declared parent.
_LOOKUP = (
    "SELECT id, digest, kind, name, version, attestation_id FROM artifacts "
    "WHERE digest IN_STRS(:wanted) OR (name = :name AND version = :version)"
)
_INSERT_ARTIFACT = insert(_ARTIFACTS).returning(_ARTIFACTS.c.id)
# Edges are ints and a relation name: no SQLAlchemy processing needed (the batch path uses
# it too).
INSERT_EDGE = (
    "INSERT INTO edges (child_id, parent_id, relation, attestation_id) VALUES (:c, :p, :r, :a)"
)


def apply_registration(
    session: Session, attestation: Attestation, verified: VerifiedStatement
) -> dict[str, Any]:
    """Write the artifact and edges a verified registration declares (no commit).

    Runs inside the submitting transaction, after `begin_write`: everything it reads, it reads
    under the write lock. This is the ingest hot path, so it runs fixed SQL: one driver-level
    query (`registry.db.fetch`) finds the artifact itself, any artifact holding its name@version,
    and all declared parents; then the artifact's insert (SQL Core, for its JSON and timestamp
    columns) and one driver-level executemany of its edges.

    Returns:
        What was done: `artifact_id`, `created`, `amended` (an existing artifact got new edges),
        `edges_added` (how many), `added_edges` (each as `AddedEdge`), `new_edges` (id triples
        for the hooks that follow), and `artifact` (the new row) when created.

    Raises:
        InvalidStatementError: the predicate is malformed or breaks a limit.
        ConflictError: the digest or name@version is recorded differently.
        UnprocessableError: a parent is unknown.
        RelationError: a relation joins the wrong kinds.
        PermissionDeniedError: an amendment by someone other than the owner or an admin.
        CycleError: an edge would make an artifact its own ancestor.
    """
    reg = parse_registration(verified.statement)
    art = reg.artifact
    wanted = [art.digest, *(p.digest for p in reg.parents)]
    found = fetch(session, _LOOKUP, {"wanted": wanted, "name": art.name, "version": art.version})
    rows = [_Found(*r) for r in found]
    by_digest = {r.digest: r for r in rows}
    existing = by_digest.get(art.digest)
    _check_identity(art, existing, rows)
    for i, link in enumerate(reg.parents):
        parent = by_digest.get(link.digest)
        if parent is None:
            raise UnprocessableError(
                f"unknown parent sha256:{link.digest}: register it first",
                field=f"predicate.parents[{i}].digest",
                digest=link.digest,
            )
        link.relation.check_kinds(art.kind, ArtifactKind(parent.kind))

    if existing is None:
        child_id = (
            session.connection()
            .execute(
                _INSERT_ARTIFACT,
                {
                    "digest": art.digest,
                    "kind": art.kind.value,
                    "name": art.name,
                    "version": art.version,
                    "opaque": art.opaque,
                    "metadata": dict(reg.metadata),
                    "attestation_id": attestation.id,
                    "created_at": attestation.received_at,
                },
            )
            .scalar_one()
        )
        new_links = list(reg.parents)
    else:
        child_id = existing.id
        have = {
            (p, r)
            for p, r in session.execute(
                select(_EDGES.c.parent_id, _EDGES.c.relation).where(_EDGES.c.child_id == child_id)
            )
        }
        new_links = [
            link
            for link in reg.parents
            if (by_digest[link.digest].id, link.relation.value) not in have
        ]
        if new_links:
            check_amendment(session, art.label, existing.attestation_id, attestation.principal_id)
        # Only an amended artifact can close a cycle: a new one has no descendants yet.
        for link in new_links:
            path = _find_path_up(session, by_digest[link.digest].id, child_id)
            if path is not None:
                raise CycleError(
                    f"edge {link.relation.value} to sha256:{link.digest} would make "
                    f"{art.label} its own ancestor",
                    path=(art.digest, *_digests_of(session, path)),
                )
    att = attestation.id
    sql_many(
        session,
        INSERT_EDGE,
        [
            {"c": child_id, "p": by_digest[link.digest].id, "r": link.relation.value, "a": att}
            for link in new_links
        ],
    )
    return registration_outcome(
        child_id, reg, new_links, by_digest, attestation, created=existing is None
    )


def registration_outcome(
    child_id: int,
    reg: Registration,
    new_links: Sequence[ParentLink],
    parents: Mapping[str, Any],
    attestation: Attestation,
    *,
    created: bool,
) -> dict[str, Any]:
    """What `apply_registration` returns, from what it decided and wrote.

    `parents` maps each parent's digest to its row (`id`, `name`, `version`); the bulk path of
    `registry.attestations.batch` builds the same answer with it.
    """
    art = reg.artifact
    outcome: dict[str, Any] = {
        "artifact_id": child_id,
        "edges_added": len(new_links),
        "added_edges": [
            AddedEdge(
                relation=link.relation,
                parent=link.digest,
                parent_ref=f"{parents[link.digest].name}@{parents[link.digest].version}",
            )
            for link in new_links
        ],
        "created": created,
        "amended": not created and bool(new_links),
        "new_edges": [(child_id, parents[link.digest].id, link.relation) for link in new_links],
    }
    if created:  # the answer needs no read-back: every column is known here
        outcome["artifact"] = Artifact.model_construct(
            id=child_id,
            digest=art.digest,
            kind=art.kind.value,
            name=art.name,
            version=art.version,
            opaque=art.opaque,
            metadata_=dict(reg.metadata),
            attestation_id=attestation.id,
            created_at=attestation.received_at,
        )
    return outcome


def _check_identity(art: ArtifactRef, existing: Any, rows: Sequence[Any]) -> None:
    """Refuse a registration whose digest or name@version is recorded as something else.

    Raises:
        ConflictError: naming the field that clashes.
    """
    if existing is not None:
        if (existing.kind, existing.name, existing.version) != (
            art.kind.value,
            art.name,
            art.version,
        ):
            raise ConflictError(
                f"digest {art.digest} is already registered as {existing.kind} "
                f"{existing.name}@{existing.version}",
                field="subject[0].digest",
            )
        return
    clash = next((r for r in rows if (r.name, r.version) == (art.name, art.version)), None)
    if clash is not None:
        raise ConflictError(
            f"{art.label} is already registered with another digest ({clash.digest}); "
            "register new content under a new version",
            field="predicate.artifact.version",
        )


def check_amendment(session: Session, label: str, created_by: int, principal_id: int) -> None:
    """Allow adding parents to an existing artifact only to its owner (the principal of the
    attestation `created_by`) or an admin.

    Raises:
        PermissionDeniedError: naming the owner (field `predicate.parents`).
    """
    a, p = _ATTESTATIONS, _PRINCIPALS
    owner = session.execute(
        select(p.c.id, p.c.name).join(a, a.c.principal_id == p.c.id).where(a.c.id == created_by)
    ).one()
    if owner.id == principal_id:
        return
    role = session.execute(select(p.c.role).where(p.c.id == principal_id)).scalar_one_or_none()
    if role == Role.ADMIN.value:
        return
    raise PermissionDeniedError(
        f"{label} is owned by {owner.name!r}: only its owner or an admin may add parents to it "
        "(an amendment); register your derived artifact under a new name or version instead, or "
        "ask the owner",
        field="predicate.parents",
        owner=owner.name,
    )


def _digests_of(session: Session, ids: Sequence[int]) -> list[str]:
    rows = dict(
        session.execute(select(Artifact.id, Artifact.digest).where(Artifact.id.in_(ids))).all()
    )  # type: ignore[union-attr]
    return [rows[i] for i in ids]


def lineage(
    session: Session, root: Artifact | ArtifactKey, direction: Direction, depth: int
) -> LineagePublic:
    """Walk edges from `root` breadth-first, one query per level, up to `depth` hops.

    Levels are fetched with one fixed driver-level query each (the frontier as one list
    parameter) rather than one recursive CTE: on a DAG a CTE revisits a node once per path,
    while this visits each node once, and it stops cleanly at `MAX_NODES` with `truncated` set.
    """
    if not 1 <= depth <= MAX_DEPTH:
        raise BadRequestError(f"depth must be between 1 and {MAX_DEPTH}", field="depth")
    assert root.id is not None
    seen: dict[int, int] = {root.id: 0}
    edges: list[tuple[int, int, str, int]] = []
    frontier = [root.id]
    truncated = False
    up = direction is Direction.UP
    for level in range(1, depth + 1):
        if not frontier:
            break
        nxt: list[int] = []
        for child, parent, relation, att in fetch(session, _WALK[up], {"ids": frontier}):
            other = parent if up else child
            if other not in seen:
                if len(seen) >= MAX_NODES:
                    truncated = True
                    continue
                seen[other] = level
                nxt.append(other)
            edges.append((child, parent, relation, att))
        frontier = nxt
    else:
        more = bool(frontier) and bool(fetch(session, _MORE[up], {"ids": frontier}))
        truncated = truncated or more
    # One read names every node with its owner and its registration's time; edges are mostly
    # asserted by their child's registration, so their asserters are usually among those.
    nodes_by_id: dict[int, ArtifactPublic] = {}
    who: dict[int, tuple[str, Any]] = {}
    for row in fetch(session, _NODES, {"ids": list(seen)}):
        art_id, owner, received = int(row[0]), row[9], timestamp(row[10])
        nodes_by_id[art_id] = artifact_public(
            *row[:6], loads(row[6]), row[7], timestamp(row[8]), owner
        )
        who[int(row[7])] = (owner, received)
    edge_set = sorted({e for e in edges if e[0] in nodes_by_id and e[1] in nodes_by_id})
    if missing := sorted({e[3] for e in edge_set} - who.keys()):
        who.update(
            (int(i), (name, timestamp(at)))
            for i, name, at in fetch(session, _SIGNERS, {"ids": missing})
        )
    return LineagePublic.model_construct(
        root=root.digest,
        direction=direction,
        depth=depth,
        nodes=[
            LineageNode.model_construct(artifact=nodes_by_id[i], depth=d, flags=[], at_risk=[])
            for i, d in sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))
        ],
        edges=[
            EdgePublic.model_construct(
                child=nodes_by_id[c].digest,
                parent=nodes_by_id[p].digest,
                relation=Relation(r),
                attestation_id=a,
                asserted_by=who[a][0],
                asserted_at=who[a][1],
            )
            for c, p, r, a in edge_set
        ],
        truncated=truncated,
    )


_NODES = (
    "SELECT a.id, a.digest, a.kind, a.name, a.version, a.opaque, a.metadata, a.attestation_id, "
    "a.created_at, p.name, t.received_at FROM artifacts a "
    "JOIN attestations t ON t.id = a.attestation_id JOIN principals p ON p.id = t.principal_id "
    "WHERE a.id IN_INTS(:ids)"
)
_SIGNERS = (
    "SELECT t.id, p.name, t.received_at FROM attestations t "
    "JOIN principals p ON p.id = t.principal_id WHERE t.id IN_INTS(:ids)"
)


# One level of a walk: the edges out of the frontier, up (to parents) or down (to children).
_WALK = {
    up: "SELECT child_id, parent_id, relation, attestation_id FROM edges "
    f"WHERE {'child_id' if up else 'parent_id'} IN_INTS(:ids)"
    for up in (True, False)
}
_MORE = {
    up: f"SELECT 1 FROM edges WHERE {'child_id' if up else 'parent_id'} IN_INTS(:ids) LIMIT 1"
    for up in (True, False)
}
