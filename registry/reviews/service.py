"""The reviewer's queue and the artifact browser.

The queue is the risk engine's at-risk marks (a mark exists only while nobody has flagged or
cleared the model for the trait) less those a reviewer has accepted and whose acceptance has not
expired. Each reviewer's last look is stored, so the queue can say what is new and which
decisions others made since.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, or_, select, update
from sqlmodel import Session

from ..auth import Caller
from ..db import begin_write
from ..models import (
    Artifact,
    Attestation,
    Principal,
    ReviewSeen,
    RiskAcceptance,
    RiskMarkRow,
    RiskStatement,
    utcnow,
)
from ..risk import service as risk
from ..schema_types import utc
from .schemas import (
    BrowseItem,
    BrowsePublic,
    BrowseStatus,
    Change,
    QueueItem,
    QueuePublic,
    QueueSort,
    SeenPublic,
)

_A = Artifact.__table__  # type: ignore[attr-defined]
_AT = Attestation.__table__  # type: ignore[attr-defined]
_P = Principal.__table__  # type: ignore[attr-defined]
_ACC = RiskAcceptance.__table__  # type: ignore[attr-defined]
_M = RiskMarkRow.__table__  # type: ignore[attr-defined]
_S = RiskStatement.__table__  # type: ignore[attr-defined]
_SEEN = ReviewSeen.__table__  # type: ignore[attr-defined]

QUEUE_SCAN = 5000  # marks read per queue answer; beyond it the answer says `truncated`
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def accepted_in_force(session: Session, now: datetime) -> dict[tuple[int, str], datetime]:
    """(artifact id, trait) -> latest expiry, for acceptances that have not expired."""
    out: dict[tuple[int, str], datetime] = {}
    for a, t, e in session.execute(
        select(_ACC.c.artifact_id, _ACC.c.trait, _ACC.c.expires_at).where(_ACC.c.expires_at > now)
    ):
        key = (a, t)
        out[key] = max(out.get(key, utc(e)), utc(e))
    return out


def owners(session: Session, ids: list[int]) -> dict[int, str]:
    """Artifact id -> the principal that first registered it (its owner)."""
    out: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        for aid, name in session.execute(
            select(_A.c.id, _P.c.name)
            .join(_AT, _AT.c.id == _A.c.attestation_id)
            .join(_P, _P.c.id == _AT.c.principal_id)
            .where(_A.c.id.in_(ids[i : i + 500]))
        ):
            out[aid] = name
    return out


def _last_seen(session: Session, principal_id: int) -> datetime | None:
    seen = session.scalar(select(_SEEN.c.seen_at).where(_SEEN.c.principal_id == principal_id))
    return utc(seen) if seen is not None else None


def queue(
    session: Session, caller: Caller, trait: str | None, q: str | None, sort: QueueSort
) -> QueuePublic:
    """The caller's review queue."""
    now = utcnow()
    marks, total = risk.at_risk_queue(session, None, QUEUE_SCAN, 0, include_accepted=True)
    accepted = accepted_in_force(session, now)
    ids_by_digest = (
        dict(
            session.execute(
                select(_A.c.digest, _A.c.id).where(_A.c.digest.in_({m.model for m in marks}))
            ).all()
        )
        if marks
        else {}
    )
    severity = {(f.artifact, f.trait): f.severity.value for f in risk.list_flags(session, None)}
    owner = owners(session, list(ids_by_digest.values()))
    last_seen = _last_seen(session, caller.id)
    items: list[QueueItem] = []
    counts: dict[str, int] = {}
    n_accepted = 0
    for m in marks:
        mid = ids_by_digest[m.model]
        if (mid, m.trait) in accepted:
            n_accepted += 1
            continue
        counts[m.trait] = counts.get(m.trait, 0) + 1
        since = utc(m.since)
        line = m.model_ref + "".join(f" —{e.relation.value}→ {e.parent_ref}" for e in m.path)
        items.append(
            QueueItem(
                mark=m,
                severity=severity.get((m.source, m.trait)),
                owner=owner.get(mid),
                age_s=max(0, int((now - since).total_seconds())),
                path_line=line,
                new=last_seen is None or since > last_seen,
            )
        )
    new_count = sum(1 for i in items if i.new)
    if trait:
        items = [i for i in items if i.mark.trait == trait]
    if q:
        needle = q.lower()
        items = [
            i for i in items if needle in i.mark.model_ref.lower() or needle in i.path_line.lower()
        ]
    match sort:
        case QueueSort.NEWEST:
            items.sort(key=lambda i: i.age_s)
        case QueueSort.OLDEST:
            items.sort(key=lambda i: -i.age_s)
        case QueueSort.SEVERITY:
            items.sort(key=lambda i: (_SEVERITY_RANK.get(i.severity or "", 9), i.age_s))
        case QueueSort.NAME:
            items.sort(key=lambda i: (i.mark.model_ref, i.mark.trait))
    return QueuePublic(
        data=items,
        count=len(items),
        counts_by_trait=dict(sorted(counts.items())),
        accepted=n_accepted,
        last_seen=last_seen,
        new_since_last_seen=new_count,
        changes=_changes(session, last_seen) if last_seen is not None else [],
        truncated=total > QUEUE_SCAN,
    )


def _changes(session: Session, since: datetime) -> list[Change]:
    """Decisions (flags, clearances, acceptances) accepted after `since`, newest first."""
    out: list[Change] = []
    for table, kind in ((_S, None), (_ACC, "acceptance")):
        rows = session.execute(
            select(
                table.c.attestation_id,
                table.c.trait,
                (table.c.statement if kind is None else _A.c.kind).label("what"),
                _A.c.name,
                _A.c.version,
                _P.c.name.label("principal"),
                _AT.c.received_at,
            )
            .join(_A, _A.c.id == table.c.artifact_id)
            .join(_AT, _AT.c.id == table.c.attestation_id)
            .join(_P, _P.c.id == _AT.c.principal_id)
            .where(_AT.c.received_at > since)
            .order_by(_AT.c.received_at.desc())
            .limit(100)
        )
        for r in rows:
            out.append(
                Change(
                    attestation_id=r.attestation_id,
                    decision=kind or r.what,
                    artifact_ref=f"{r.name}@{r.version}",
                    trait=r.trait,
                    principal=r.principal,
                    at=r.received_at,
                )
            )
    out.sort(key=lambda c: utc(c.at), reverse=True)
    return out[:100]


def mark_seen(session: Session, caller: Caller) -> SeenPublic:
    """Remember that the caller has looked at the queue now.

    Under the write lock, so two tabs marking at once cannot both miss the row and race to
    insert it.
    """
    begin_write(session)
    now = utcnow()
    done = session.execute(
        update(_SEEN).where(_SEEN.c.principal_id == caller.id).values(seen_at=now)
    ).rowcount
    if not done:
        session.execute(insert(_SEEN).values(principal_id=caller.id, seen_at=now))
    session.commit()
    return SeenPublic(seen_at=now)


def _statuses(
    session: Session, ids: list[int], now: datetime
) -> dict[int, tuple[BrowseStatus, list[str]]]:
    """Per artifact: its risk in one word and the traits concerned."""
    flagged: dict[int, set[str]] = {}
    cleared: dict[int, set[str]] = {}
    marked: dict[int, set[str]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        f, c = risk._in_force(session, part)
        for k, v in f.items():
            flagged.setdefault(k, set()).update(v)
        for k, v in c.items():
            cleared.setdefault(k, set()).update(v)
        for mid, t in session.execute(
            select(_M.c.model_id, _M.c.trait).where(_M.c.model_id.in_(part))
        ):
            marked.setdefault(mid, set()).add(t)
    accepted = accepted_in_force(session, now)
    out: dict[int, tuple[BrowseStatus, list[str]]] = {}
    for aid in ids:
        if aid in flagged:
            out[aid] = (BrowseStatus.FLAGGED, sorted(flagged[aid]))
        elif aid in marked:
            open_traits = [t for t in marked[aid] if (aid, t) not in accepted]
            status = BrowseStatus.AT_RISK if open_traits else BrowseStatus.ACCEPTED
            out[aid] = (status, sorted(marked[aid]))
        elif aid in cleared:
            out[aid] = (BrowseStatus.CLEARED, sorted(cleared[aid]))
        else:
            out[aid] = (BrowseStatus.NO_RISK, [])
    return out


def browse(
    session: Session,
    *,
    q: str | None,
    kind: str | None,
    owner: str | None,
    status: BrowseStatus | None,
    trait: str | None,
    limit: int,
    offset: int,
) -> BrowsePublic:
    """Artifacts by name or digest prefix, kind, owner, risk status and trait, newest first.

    Status and trait filters start from the (small) sets of artifacts the risk tables name, so
    they never scan the whole registry.
    """
    stmt = (
        select(_A.c.id)
        .join(_AT, _AT.c.id == _A.c.attestation_id)
        .join(_P, _P.c.id == _AT.c.principal_id)
    )
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(_A.c.name.like(pattern, escape="\\"), _A.c.digest.startswith(q.lower()))
        )
    if kind:
        stmt = stmt.where(_A.c.kind == kind)
    if owner:
        stmt = stmt.where(_P.c.name == owner)
    now = utcnow()
    if status is None and not trait:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        ids = list(session.scalars(stmt.order_by(_A.c.id.desc()).limit(limit).offset(offset)))
    else:
        candidates: set[int] = set()
        if status in (None, BrowseStatus.AT_RISK, BrowseStatus.ACCEPTED) or trait:
            s = select(_M.c.model_id)
            candidates.update(session.scalars(s.where(_M.c.trait == trait) if trait else s))
        if status in (None, BrowseStatus.FLAGGED, BrowseStatus.CLEARED) or trait:
            s = select(_S.c.artifact_id)
            candidates.update(session.scalars(s.where(_S.c.trait == trait) if trait else s))
        if status is BrowseStatus.NO_RISK and not trait:
            stmt = stmt.where(_A.c.id.not_in(candidates)) if candidates else stmt
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            ids = list(session.scalars(stmt.order_by(_A.c.id.desc()).limit(limit).offset(offset)))
        else:
            matching = sorted(
                set(session.scalars(stmt.where(_A.c.id.in_(candidates)))) if candidates else set(),
                reverse=True,
            )
            st = _statuses(session, matching, now)
            matching = [
                a
                for a in matching
                if (status is None or st[a][0] is status) and (not trait or trait in st[a][1])
            ]
            total = len(matching)
            ids = matching[offset : offset + limit]
    statuses = _statuses(session, ids, now)
    own = owners(session, ids)
    rows = {r.id: r for r in session.execute(select(_A).where(_A.c.id.in_(ids)))} if ids else {}
    data = [
        BrowseItem(
            id=a,
            ref=f"{rows[a].name}@{rows[a].version}",
            digest=rows[a].digest,
            kind=rows[a].kind,
            owner=own.get(a),
            status=statuses[a][0],
            traits=statuses[a][1],
            created_at=rows[a].created_at,
        )
        for a in ids
    ]
    return BrowsePublic(data=data, count=total, limit=limit, offset=offset)
