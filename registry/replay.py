"""Rebuild every derived table from the signed envelopes and compare it with what is stored.

The envelopes are the source of truth; artifacts, edges, and whatever later domains derive (risk
statements, marks) are caches of what the envelopes say. `replay` proves it: it reads every
logged attestation in log order, verifies its signature again against the `keys` table, applies
it through the same predicate handlers and after-accept hooks as ingest into a scratch SQLite
database built by the same migrations, and compares each derived table with the stored one by
natural key (an artifact by digest, an edge by (child digest, parent digest, relation)), since
surrogate ids differ between two databases.

What is replayed is what was logged. Each attestation is re-verified and applied from the bytes
its log leaf commits to (`log_entries.entry`, parsed back into the envelope), not from the
`attestations.envelope` row, which is a convenience copy an insider could edit. So one edited
envelope row is one audit finding (`envelope_altered`, from `registry.log.audit`), not a
cascade of signature failures and derived-table differences from replaying the edit. If the
entry itself was edited and no longer hashes to the committed leaf, the row's serialisation is
used when it does (the entry's change is the audit's `entry_altered`); with neither matching,
the entry is replayed as found.

Signature rules are those of ingest, judged at the time of acceptance: the signing key must be
the submitter's, and a key revoked *after* the attestation was received does not invalidate it
(revoking a key stops new signatures, it does not rewrite history). An attestation whose
signature no longer verifies is reported and not applied: nothing unverified is interpreted.

Log order is acceptance order: writes are serialised, and an append takes the next index inside
the accepting transaction, so replaying in that order meets every parent before its children.

Domains declare their derived tables with `register_derived`; a hook that must not run again on
replay (the log append itself) is declared with `exempt_hook`. Used by `studbook log audit`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from lineage import dsse
from lineage.errors import LineageError
from lineage.logleaf import entry_bytes
from lineage.merkle import leaf_hash
from lineage.statements import VerifiedStatement, verify_envelope

from .db import begin_write, make_engine, upgrade
from .errors import RegistryError
from .models import Artifact, Attestation, LineageEdge, Principal, SigningKey
from .models.log import LogEntry, LogNode
from .schema_types import utc

__all__ = [
    "DERIVED",
    "DerivedTable",
    "Finding",
    "ReplayFinding",
    "ReplayReport",
    "exempt_hook",
    "register_derived",
    "replay",
]

Rows = dict[tuple[Any, ...], dict[str, Any]]
"""A derived table as natural key -> compared columns."""


class ReplayFinding(StrEnum):
    """What a replay can find wrong."""

    SIGNATURE_INVALID = "signature_invalid"
    REPLAY_REFUSED = "replay_refused"
    DERIVED_MISSING = "derived_missing"
    DERIVED_UNEXPECTED = "derived_unexpected"
    DERIVED_CHANGED = "derived_changed"


@dataclass(frozen=True)
class Finding:
    """One discrepancy, located precisely: `where` names the entry, row or node."""

    kind: StrEnum
    where: str
    message: str
    log_index: int | None = None
    attestation_id: int | None = None

    def __str__(self) -> str:
        return f"[{self.kind}] {self.where}: {self.message}"


@dataclass(frozen=True)
class DerivedTable:
    """A table rebuilt from envelopes.

    Attributes:
        name: the table, for messages.
        key: names of the natural key's parts, for messages.
        load: reads the table as natural key -> compared columns (no surrogate ids, no
            timestamps of the write itself).
    """

    name: str
    key: tuple[str, ...]
    load: Callable[[Session], Rows]


DERIVED: dict[str, DerivedTable] = {}
_EXEMPT: list[Callable[..., Any]] = []


def register_derived(table: DerivedTable) -> None:
    """Declare a derived table, to be compared on every replay."""
    DERIVED[table.name] = table


def exempt_hook(hook: Callable[..., Any]) -> None:
    """Keep an after-accept hook out of replays (it records, rather than derives)."""
    if hook not in _EXEMPT:
        _EXEMPT.append(hook)


@dataclass
class ReplayReport:
    """What a replay did and found."""

    replayed: int = 0
    applied: int = 0
    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per derived table: (stored rows, rebuilt rows)."""


# ----------------------------------------------------------------------------- built-in tables

_ARTIFACTS = Artifact.__table__  # type: ignore[attr-defined]
_EDGES = LineageEdge.__table__  # type: ignore[attr-defined]
_ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]


def _artifacts(session: Session) -> Rows:
    a = _ARTIFACTS
    rows = session.execute(
        select(a.c.digest, a.c.kind, a.c.name, a.c.version, a.c.opaque, a.c.metadata).add_columns(
            a.c.attestation_id
        )
    )
    return {
        (r.digest,): {
            "kind": r.kind,
            "name": r.name,
            "version": r.version,
            "opaque": bool(r.opaque),
            "metadata": r.metadata,
            "attestation_id": r.attestation_id,
        }
        for r in rows
    }


def _edges(session: Session) -> Rows:
    child, parent = _ARTIFACTS.alias("child"), _ARTIFACTS.alias("parent")
    rows = session.execute(
        select(child.c.digest, parent.c.digest, _EDGES.c.relation, _EDGES.c.attestation_id)
        .join(child, child.c.id == _EDGES.c.child_id)
        .join(parent, parent.c.id == _EDGES.c.parent_id)
    )
    return {(c, p, rel): {"attestation_id": att} for c, p, rel, att in rows}


register_derived(DerivedTable("artifacts", ("digest",), _artifacts))
register_derived(DerivedTable("edges", ("child", "parent", "relation"), _edges))


# ----------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class _Key:
    public_key: Any
    principal_id: int
    revoked_at: datetime | None


def _logged_attestations(source: Session) -> Iterator[tuple[int, Any, bytes]]:
    """Every logged attestation in log order, with the bytes its leaf commits to."""
    att, log = _ATTESTATIONS, LogEntry.__table__  # type: ignore[attr-defined]
    nodes = LogNode.__table__  # type: ignore[attr-defined]
    stmt = (
        select(log.c.idx, log.c.entry.label("logged_entry"), nodes.c.hash.label("leaf"), att)
        .join(att, att.c.id == log.c.attestation_id)
        .outerjoin(nodes, (nodes.c.level == 0) & (nodes.c.idx == log.c.idx))
        .order_by(log.c.idx)
        .execution_options(yield_per=1000)
    )
    for row in source.execute(stmt):
        yield int(row.idx), row, _logged_bytes(row)


def _logged_bytes(row: Any) -> bytes:
    """The bytes the log committed to for `row` (see the module docstring)."""
    entry = bytes(row.logged_entry)
    committed = None if row.leaf is None else bytes(row.leaf)
    if committed is None or leaf_hash(entry) == committed:
        return entry
    stored = entry_bytes(row.envelope)
    return stored if leaf_hash(stored) == committed else entry


def _logged_envelope(row: Any, logged: bytes, where: str) -> dict[str, Any] | Finding:
    try:
        envelope = json.loads(logged)
    except ValueError as exc:
        envelope, error = None, f"{exc}"
    else:
        error = "not a JSON object"
    if not isinstance(envelope, dict):
        return Finding(
            ReplayFinding.SIGNATURE_INVALID,
            where,
            f"the logged bytes are not an envelope: {error}",
            attestation_id=row.id,
        )
    return envelope


def _verify(
    row: Any, logged: dict[str, Any], keys: dict[str, _Key], where: str
) -> VerifiedStatement | Finding:
    """Re-verify one logged envelope as ingest did when its attestation was received."""

    def bad(message: str) -> Finding:
        return Finding(ReplayFinding.SIGNATURE_INVALID, where, message, attestation_id=row.id)

    key = keys.get(row.signer_keyid)
    if key is None:
        return bad(f"signed by key {row.signer_keyid}, which is not in the keys table")
    if key.principal_id != row.principal_id:
        return bad(
            f"key {row.signer_keyid} belongs to principal {key.principal_id}, but the "
            f"attestation was submitted by principal {row.principal_id}"
        )
    received = utc(row.received_at)
    if key.revoked_at is not None and utc(key.revoked_at) <= received:
        return bad(
            f"key {row.signer_keyid} was revoked at {utc(key.revoked_at).isoformat()}, before "
            f"the attestation was received at {received.isoformat()}"
        )
    try:
        envelope = dsse.Envelope.from_json(logged)
        trusted = {row.signer_keyid: key.public_key}
        if len(envelope.signatures) > 1:  # ingest checked every signature, under any of the
            # submitter's keys active at the time; so does the replay
            trusted = {
                kid: k.public_key
                for kid, k in keys.items()
                if k.principal_id == row.principal_id
                and (k.revoked_at is None or utc(k.revoked_at) > received)
            }
        verified = verify_envelope(envelope, dsse.Verifier(trusted))
    except LineageError as exc:
        return bad(f"the logged envelope does not verify: {exc.message}")
    if verified.payload_digest != row.payload_digest:
        return bad(
            f"the stored payload digest is {row.payload_digest}, the envelope's payload hashes "
            f"to {verified.payload_digest}"
        )
    if verified.predicate_type != row.predicate_type:
        return bad(
            f"the stored predicate type is {row.predicate_type!r}, the signed statement says "
            f"{verified.predicate_type!r}"
        )
    return verified


def _copy_table(source: Session, target: Session, table: Any) -> None:
    rows = [dict(r._mapping) for r in source.execute(select(table))]
    if rows:
        target.execute(insert(table), rows)


def _apply(
    target: Session,
    row: Any,
    logged: dict[str, Any],
    verified: VerifiedStatement,
    where: str,
) -> Finding | None:
    from .attestations import service as attestations

    handler = attestations.HANDLERS.get(verified.predicate_type)
    if handler is None:
        return Finding(
            ReplayFinding.REPLAY_REFUSED,
            where,
            f"no handler for predicate type {verified.predicate_type!r} in this version",
            attestation_id=row.id,
        )
    values = {c.name: getattr(row, c.name) for c in _ATTESTATIONS.columns}
    values["envelope"] = logged  # what was logged, not the (possibly edited) row
    try:
        with target.begin_nested():
            target.execute(insert(_ATTESTATIONS), [values])
            attestation = Attestation.model_construct(**values)
            outcome = handler.apply(target, attestation, verified)
            for hook in attestations.AFTER_ACCEPT:
                if hook not in _EXEMPT:
                    hook(target, attestation, verified, outcome)
    except (LineageError, RegistryError, SQLAlchemyError) as exc:  # e.g. a unique key clash
        return Finding(
            ReplayFinding.REPLAY_REFUSED,
            where,
            f"ingest would refuse it now: {exc}",
            attestation_id=row.id,
        )
    return None


def _compare(table: DerivedTable, stored: Rows, rebuilt: Rows) -> Iterator[Finding]:
    def name(key: tuple[Any, ...]) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in zip(table.key, key, strict=True))
        return f"{table.name}[{parts}]"

    for key in sorted(stored.keys() | rebuilt.keys(), key=repr):
        have, want = stored.get(key), rebuilt.get(key)
        if have is None:
            yield Finding(
                ReplayFinding.DERIVED_MISSING,
                name(key),
                f"the envelopes declare it ({want}), the database does not hold it",
            )
        elif want is None:
            yield Finding(
                ReplayFinding.DERIVED_UNEXPECTED,
                name(key),
                f"the database holds it ({have}), no logged envelope declares it",
            )
        elif have != want:
            diffs = "; ".join(
                f"{col}: stored {have.get(col)!r}, envelopes say {want.get(col)!r}"
                for col in sorted(have.keys() | want.keys())
                if have.get(col) != want.get(col)
            )
            yield Finding(ReplayFinding.DERIVED_CHANGED, name(key), diffs)


def replay(source: Session, *, progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Rebuild the derived tables from the logged envelopes and compare them with `source`'s.

    Args:
        source: a session on the registry database; run it in one snapshot (a single
            transaction, REPEATABLE READ on PostgreSQL) so that the log and the derived tables
            are read at the same moment.
        progress: called with the number of attestations replayed so far, every 500.

    Returns:
        The report; `findings` is empty when every signature verifies and every derived table
        is exactly what the envelopes say.
    """
    report = ReplayReport()
    with tempfile.TemporaryDirectory(prefix="studbook-replay-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        upgrade(url)
        scratch = make_engine(url)
        try:
            _replay_into(source, scratch, report, progress)
        finally:
            scratch.dispose()
    return report


def _replay_into(
    source: Session,
    scratch: Engine,
    report: ReplayReport,
    progress: Callable[[int], None] | None,
) -> None:
    keys = {
        k.keyid: _Key(dsse.load_public_key(k.public_key), k.principal_id, k.revoked_at)
        for k in source.scalars(select(SigningKey))
    }
    with Session(scratch) as target:
        begin_write(target)
        _copy_table(source, target, Principal.__table__)  # type: ignore[attr-defined]
        _copy_table(source, target, SigningKey.__table__)  # type: ignore[attr-defined]
        for log_index, row, logged_bytes in _logged_attestations(source):
            where = f"log entry {log_index} (attestation {row.id})"
            report.replayed += 1
            logged = _logged_envelope(row, logged_bytes, where)
            verified = logged if isinstance(logged, Finding) else _verify(row, logged, keys, where)
            if isinstance(verified, Finding):
                report.findings.append(_at(verified, log_index))
            else:
                assert not isinstance(logged, Finding)
                refused = _apply(target, row, logged, verified, where)
                if refused is not None:
                    report.findings.append(_at(refused, log_index))
                else:
                    report.applied += 1
            if progress is not None and report.replayed % 500 == 0:
                progress(report.replayed)
        target.flush()
        for table in DERIVED.values():
            stored, rebuilt = table.load(source), table.load(target)
            report.tables[table.name] = (len(stored), len(rebuilt))
            report.findings.extend(_compare(table, stored, rebuilt))
        target.rollback()


def _at(finding: Finding, log_index: int) -> Finding:
    return Finding(finding.kind, finding.where, finding.message, log_index, finding.attestation_id)
