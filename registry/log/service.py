"""The transparency log: every accepted envelope is one leaf, appended in the accepting transaction.

Leaf bytes: `registry.log.leaf.entry_bytes` of the envelope as stored in `attestations.envelope`,
kept verbatim in `log_entries.entry` and served by `GET /v1/log/entries`, so a verifier hashes what
it downloads and never has to reproduce a database's JSON rendering, and the audit detects a change
to `attestations.envelope` by serialising it again and comparing.

Appends. The `after_accept` hook runs inside the ingest transaction, after the predicate handler:
it locks the log head row (`SELECT ... FOR UPDATE`; on SQLite the transaction already holds the
database write lock), takes the head's size as the new index, writes the entry, the
`1 + trailing 1-bits` complete-subtree nodes the append completes (`new_nodes_for_append`) and the
new size, and computes the inclusion proof of the new leaf in the tree it ends. A rollback undoes
all of it with the attestation, so the log has no gaps and no entry for a refused submission; the
head lock makes concurrent appends take consecutive indices in commit order. The lock is held from
the append to the commit, so the hook does its reads in one query and its writes in three
statements.

Reads. Every root, inclusion proof and consistency proof is a `lineage.merkle` plan resolved with
one query on `log_nodes` (O(log n) rows by primary key). Answers carry a checkpoint signed for the
tree size they are relative to, so a client can verify a proof with nothing but the log's public
key: the POST answer is a complete, offline-verifiable promise of inclusion.

The log key. Checkpoints are C2SP signed notes under the key name `origin`. The log's identity,
its origin and the public half of its Ed25519 key, is fixed at the first start and stored in
`log_keys`; the private half lives only in a file readable by the server's user
(`settings.log_key_path`: `STUDBOOK_LOG_KEY_FILE`, default `<data_dir>/log-key.pem`, 0600 from
creation), so whoever holds a copy of the database cannot sign a checkpoint. Each deployment gets
its own origin at its first start (`studbook/<random id>`, or `STUDBOOK_LOG_ORIGIN`), so two
registries' checkpoints can never be mistaken for one another. Later starts load the file and
refuse to run if it does not hold the stored public key or the configured origin differs from
the stored one (a different key or origin would be a different log). `install` loads it once per
process and engine.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import secrets
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import dsse
from lineage.checkpoint import Checkpoint, sign_checkpoint, vkey
from lineage.errors import LineageError
from lineage.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MissingNodeError,
    NodeId,
    Plan,
    TreeRangeError,
    consistency_proof_plan,
    inclusion_proof_plan,
    leaf_hash,
    new_nodes_for_append,
    resolve_plan,
    root_plan,
    subtree_nodes,
)
from lineage.private_files import (
    PrivateFileError,
    check_private,
    ensure_private_dir,
    write_private,
)
from lineage.statements import VerifiedStatement

from .. import replay
from ..attestations import service as attestations
from ..db import begin_write, fetch, fetch_first, sql, sql_many
from ..errors import BadRequestError, NotFoundError, RegistryError
from ..models import Attestation, utcnow
from ..models.log import LogEntry, LogHead, LogKey, LogNode
from ..settings import Settings
from .leaf import b64, entry_bytes, envelope_digest
from .schemas import (
    ConsistencyProofPublic,
    InclusionProofPublic,
    LogEntriesPublic,
    LogEntryPublic,
    LogInfo,
)

__all__ = [
    "MAX_ENTRIES",
    "LogKeyError",
    "Notary",
    "consistency",
    "entries",
    "inclusion",
    "info",
    "install",
    "notary_for",
    "require_key",
    "signed_checkpoint",
    "stored_notary",
    "stored_vkey",
    "tree_size",
]

MAX_ENTRIES = 1000
"""Entries one `GET /v1/log/entries` answers at most; a client pages with `start`."""

_HEAD = LogHead.__table__  # type: ignore[attr-defined]
_ENTRIES = LogEntry.__table__  # type: ignore[attr-defined]
_NODES = LogNode.__table__  # type: ignore[attr-defined]
_KEYS = LogKey.__table__  # type: ignore[attr-defined]
_ATTESTATIONS = Attestation.__table__  # type: ignore[attr-defined]
_HEX64 = re.compile(r"[0-9a-f]{64}")


class LogNotInstalledError(RegistryError):
    """This process ingests into a database whose log it never set up (a bug: `install`)."""

    status_code = 500


# ----------------------------------------------------------------------------- the log key


class LogKeyError(RegistryError):
    """The log key file and the log's stored identity disagree, or the file is missing or not
    private: an operator must fix the configuration before the server can sign checkpoints."""

    status_code = 500

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message, field="log_key_file")
        self.path = path


class Notary:
    """The log's identity: its origin line, its public key and, where this host holds it, the
    private key that signs its checkpoints.

    A process without the key file (an auditor's copy of the database, `log audit` on another
    host) still gets a notary: it can name the log and check its checkpoints, and any attempt to
    sign raises `LogKeyError`. `serve` never starts so (`registry.startup.prepare` asks for the
    key first).
    """

    def __init__(
        self,
        origin: str,
        private_key: Ed25519PrivateKey | None,
        public_key: Ed25519PublicKey | None = None,
    ) -> None:
        if public_key is None:
            if private_key is None:
                raise ValueError("a notary needs a public or a private key")
            public_key = private_key.public_key()
        self.origin = origin
        self._private_key = private_key
        self.public_key = public_key

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The checkpoint signing key.

        Raises:
            LogKeyError: this process has no key file for the log.
        """
        if self._private_key is None:
            raise LogKeyError(
                "this process does not hold the log's private key (its key file is missing), "
                "so it cannot sign checkpoints"
            )
        return self._private_key

    @property
    def can_sign(self) -> bool:
        """Whether this process holds the private key."""
        return self._private_key is not None

    @property
    def vkey(self) -> str:
        """The verifier key (`<name>+<key id>+<key>`) clients pin."""
        return vkey(self.origin, self.public_key)

    def sign(self, size: int, root: bytes) -> str:
        """The signed checkpoint for the tree of `size` leaves with root `root`."""
        return sign_checkpoint(Checkpoint(self.origin, size, root), self.origin, self.private_key)


_NOTARIES: weakref.WeakKeyDictionary[Engine, Notary] = weakref.WeakKeyDictionary()


def install(engine: Engine, settings: Settings) -> Notary:
    """Set up the log for an app on `engine`: ingest hooks (once per process) and the key.

    Called by `create_app`, so every process that ingests appends. On the log's first start the
    identity is created under the head lock (so replicas starting together agree on one): the
    key file is created (or an existing one adopted) and its public key and the origin stored.

    Raises:
        LogKeyError: the key file is missing, not private, or not the log's key; or the
            configured origin is not the log's.
    """
    if _after_accept not in attestations.AFTER_ACCEPT:
        attestations.AFTER_ACCEPT.append(_after_accept)
    if _describe_existing not in attestations.DESCRIBE_EXISTING:
        attestations.DESCRIBE_EXISTING.append(_describe_existing)
    replay.exempt_hook(_after_accept)  # a replay reads the log; it does not append to one
    with Session(engine) as session:
        notary = _load_identity(session, settings, strict=False)
    if not notary.can_sign:
        logging.getLogger("studbook.log").warning(
            "the log key file %s is missing: this process can read and check the log, "
            "not append to it",
            settings.log_key_path,
        )
    _NOTARIES[engine] = notary
    return notary


def require_key(engine: Engine, settings: Settings) -> Notary:
    """The log identity with its private key, created on the log's first start.

    `serve` calls it before it starts: a server that cannot sign checkpoints must not start.

    Raises:
        LogKeyError: the key file is missing, not private or not the log's key; or the
            configured origin is not the log's.
    """
    with Session(engine) as session:
        return _load_identity(session, settings, strict=True)


def notary_for(session: Session) -> Notary:
    """The log identity installed for the session's engine.

    Raises:
        LogNotInstalledError: `install` was never called for this engine.
    """
    notary = _NOTARIES.get(session.get_bind())  # type: ignore[arg-type]
    if notary is None:
        raise LogNotInstalledError("the transparency log is not set up for this database")
    return notary


def new_origin() -> str:
    """A fresh origin for a new log: `studbook/` and 16 random hex digits."""
    return f"studbook/{secrets.token_hex(8)}"


def _identity_row(session: Session) -> Any:
    return session.execute(
        select(_KEYS.c.origin, _KEYS.c.public_key).order_by(_KEYS.c.id.desc()).limit(1)
    ).first()


def _public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _load_identity(session: Session, settings: Settings, *, strict: bool) -> Notary:
    path = settings.log_key_path
    row = _identity_row(session)
    if row is None:  # first start: create it under the head lock, so replicas agree on one key
        session.rollback()
        begin_write(session)
        _lock_head(session)
        row = _identity_row(session)
        if row is None:
            key = _file_key(path, create=True)
            origin = settings.log_origin or new_origin()
            notary = Notary(origin, key)
            try:
                notary.vkey  # noqa: B018  (fails now, not at the first append)
            except LineageError as exc:
                raise LogKeyError(
                    f"STUDBOOK_LOG_ORIGIN {origin!r} cannot name a log key: {exc.message}"
                ) from exc
            session.execute(
                insert(_KEYS).values(
                    origin=origin, public_key=_public_b64(key), created_at=utcnow()
                )
            )
            session.commit()
            return notary
    session.rollback()
    origin, public = str(row[0]), str(row[1])
    if settings.log_origin is not None and settings.log_origin != origin:
        raise LogKeyError(
            f"STUDBOOK_LOG_ORIGIN is {settings.log_origin!r}, but this log's origin is "
            f"{origin!r} (fixed at its first start; clients pin it): unset the setting or set it "
            f"to {origin!r}"
        )
    if not strict and not path.exists():
        raw = base64.b64decode(public)
        return Notary(origin, None, Ed25519PublicKey.from_public_bytes(raw))
    key = _file_key(path, create=False)
    if _public_b64(key) != public:
        raise LogKeyError(
            f"the log key file {path} does not hold this log's key (the database's log "
            f"{origin!r} has public key {public}); point STUDBOOK_LOG_KEY_FILE at the file this "
            f"log was started with",
            path=path,
        )
    return Notary(origin, key)


def stored_vkey(session: Session) -> str | None:
    """The log's verifier key from its stored identity, without the private key (for audits).

    Returns:
        None when the log has no identity yet (the server never started on this database).
    """
    row = _identity_row(session)
    if row is None:
        return None
    raw = base64.b64decode(str(row[1]))
    return vkey(str(row[0]), Ed25519PublicKey.from_public_bytes(raw))


def stored_notary(session: Session, settings: Settings) -> Notary | None:
    """The log identity as configured, read without creating anything.

    Returns:
        None when the log has no identity yet, or its key file is not on this host.

    Raises:
        LogKeyError: the key file exists and is not the log's key, or is not private.
    """
    row = _identity_row(session)
    if row is None or not settings.log_key_path.exists():
        return None
    key = _file_key(settings.log_key_path, create=False)
    if _public_b64(key) != str(row[1]):
        raise LogKeyError(
            f"the log key file {settings.log_key_path} does not hold this log's key",
            path=settings.log_key_path,
        )
    return Notary(str(row[0]), key)


def _file_key(path: Path, *, create: bool) -> Ed25519PrivateKey:
    """Read the private key at `path`, creating it (0600 from creation) when asked and missing.

    A file someone else can read is refused, not narrowed: what it exposed cannot be taken back,
    and the operator should know (the message says how to fix the mode).
    """
    if not path.exists():
        if not create:
            raise LogKeyError(
                f"the log's private key file {path} is missing; restore it (from the host the "
                f"log was started on, or a backup) or point STUDBOOK_LOG_KEY_FILE at it",
                path=path,
            )
        if not path.parent.exists():
            ensure_private_dir(path.parent)
        # Written whole under a random temporary name, then linked into place: without
        # overwrite, two processes starting together keep the first one's key.
        with contextlib.suppress(FileExistsError):
            write_private(path, dsse.private_key_pem(dsse.generate_private_key()))
    try:
        check_private(path)
    except PrivateFileError as exc:
        raise LogKeyError(f"the log key file is not private: {exc.message}", path=path) from exc
    key = dsse.load_private_key(path.read_bytes())
    if not isinstance(key, Ed25519PrivateKey):
        raise LogKeyError(f"the log key file {path} must hold an Ed25519 key", path=path)
    return key


# ----------------------------------------------------------------------------- node store


@dataclass(frozen=True)
class _Head:
    """The log head: its size and its frontier, the complete subtrees whose fold is the root.

    The frontier (`subtree_nodes(0, size)`, at most log2(size) + 1 hashes, stored packed in
    `log_head.frontier`) is everything an append reads: the new leaf's left siblings, its audit
    path and the new root are all frontier nodes or nodes the append creates. So an append is one
    locked read and one write, and a checkpoint is one read. The frontier is redundant with
    `log_nodes` (the audit compares them); if it is ever unusable, the nodes are read instead.
    """

    size: int
    frontier: dict[NodeId, bytes]

    def root(self, session: Session) -> bytes:
        (root,) = _resolve(session, [root_plan(self.size)], self.frontier)
        return _root(root)


def _frontier_nodes(size: int) -> tuple[NodeId, ...]:
    return subtree_nodes(0, size) if size else ()


def _head(size: int, packed: bytes | None) -> _Head:
    nodes, packed = _frontier_nodes(size), bytes(packed or b"")
    if len(packed) != HASH_SIZE * len(nodes):
        return _Head(size, {})
    return _Head(
        size, {n: packed[k * HASH_SIZE : (k + 1) * HASH_SIZE] for k, n in enumerate(nodes)}
    )


def _lock_head(session: Session) -> _Head:
    """Lock the head row (creating it in an empty database) and read it."""
    pg = session.get_bind().dialect.name == "postgresql"
    query = "SELECT size, frontier FROM log_head WHERE id = 1" + (" FOR UPDATE" if pg else "")
    row = fetch_first(session, query, {})
    if row is None:
        session.execute(
            _insert_ignore(session, _HEAD).values(id=1, size=0, frontier=b"", updated_at=utcnow())
        )
        row = fetch(session, query, {})[0]
    return _head(int(row[0]), row[1])


def _read_head(session: Session) -> _Head:
    row = fetch_first(session, "SELECT size, frontier FROM log_head WHERE id = 1", {})
    return _head(0, b"") if row is None else _head(int(row[0]), row[1])


def _insert_ignore(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


def tree_size(session: Session) -> int:
    """The number of entries in the log."""
    return _read_head(session).size


def _fetch(session: Session, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Read the given complete subtrees in one query."""
    wanted = sorted(set(nodes))
    if not wanted:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        # One text for every request, so psycopg prepares it once per connection; the join
        # is a primary-key lookup per wanted node.
        query = (
            "SELECT n.level, n.idx, n.hash FROM unnest(:levels ::smallint[], :idxs ::bigint[]) "
            "AS w(level, idx) JOIN log_nodes n ON n.level = w.level AND n.idx = w.idx"
        )
        params: dict[str, Any] = {
            "levels": [lv for lv, _ in wanted],
            "idxs": [ix for _, ix in wanted],
        }
    else:
        # An OR of key equalities, not a row-value IN: SQLite plans `(level, idx) IN (VALUES
        # ...)` as a full scan, and the OR as one primary-key search per node.
        query = "SELECT level, idx, hash FROM log_nodes WHERE " + " OR ".join(
            f"(level = :l{n} AND idx = :i{n})" for n in range(len(wanted))
        )
        params = {}
        for n, (level, idx) in enumerate(wanted):
            params[f"l{n}"], params[f"i{n}"] = level, idx
    rows = fetch(session, query, params)
    return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}


def _resolve(
    session: Session, plans: list[Plan], known: Mapping[NodeId, bytes] | None = None
) -> list[list[bytes]]:
    """Resolve several plans with at most one read; returns one hash list per plan.

    Raises:
        MissingNodeError: the store lacks a node a valid request needs (the store is corrupt).
    """
    known = known or {}
    needed = {n for plan in plans for group in plan for n in group if n not in known}
    store = {**known, **_fetch(session, needed)} if needed else known
    return [resolve_plan(plan, lambda lv, ix: _need(store, lv, ix)) for plan in plans]


def _need(store: Mapping[NodeId, bytes], level: int, idx: int) -> bytes:
    try:
        return store[(level, idx)]
    except KeyError:
        raise MissingNodeError(level, idx) from None


def _check_size(size: int, current: int, field: str) -> None:
    if not 0 <= size <= current:
        raise TreeRangeError(
            f"{field} must be in [0, {current}] (the log has {current} entries), got {size}",
            index=None,
            size=size,
            field=field,
        )


def _root(root_hashes: list[bytes]) -> bytes:
    return root_hashes[0] if root_hashes else EMPTY_ROOT


# ----------------------------------------------------------------------------- appends


def _left_siblings(index: int) -> list[NodeId]:
    """The stored nodes `new_nodes_for_append(index, ...)` reads."""
    out, level = [], 0
    while index & 1:
        out.append((level, index - 1))
        level, index = level + 1, index >> 1
    return out


_APPEND_PG = (
    "WITH entry AS (INSERT INTO log_entries (idx, attestation_id, envelope_digest, entry) "
    "VALUES (:idx, :attestation_id, :envelope_digest, :entry)), "
    "nodes AS (INSERT INTO log_nodes (level, idx, hash) "
    "SELECT * FROM unnest(:levels ::smallint[], :idxs ::bigint[], :hashes ::bytea[])) "
    "UPDATE log_head SET size = :size, frontier = :frontier, updated_at = :now "
    "WHERE id = 1 AND size = :idx"
)


def append(
    session: Session, attestation_id: int, entry: bytes, notary: Notary
) -> InclusionProofPublic:
    """Append `entry` as the next leaf, inside the caller's write transaction (no commit).

    One locked read of the head, one write (a single statement on PostgreSQL), no node reads:
    the head's frontier holds every node the append needs.

    Returns:
        The new leaf's inclusion proof in the tree it ends, with that tree's checkpoint.
    """
    head = _lock_head(session)
    index, size = head.size, head.size + 1
    leaf = leaf_hash(entry)
    known = dict(head.frontier)
    if missing := [n for n in _left_siblings(index) if n not in known]:
        known.update(_fetch(session, missing))
    new = new_nodes_for_append(index, leaf, lambda level, idx: _need(known, level, idx))
    known.update({(lv, ix): h for lv, ix, h in new})
    proof_plan, root_nodes = inclusion_proof_plan(index, size), root_plan(size)
    if missing_nodes := {n for g in [*proof_plan, *root_nodes] for n in g} - known.keys():
        known.update(_fetch(session, missing_nodes))  # only when the head's frontier was unusable
    proof, root = _resolve(session, [proof_plan, root_nodes], known)
    frontier = b"".join(_need(known, *n) for n in _frontier_nodes(size))
    digest = envelope_digest(entry)
    row = {"idx": index, "attestation_id": attestation_id, "envelope_digest": digest}
    if session.get_bind().dialect.name == "postgresql":
        done = sql(
            session,
            _APPEND_PG,
            {
                **row,
                "entry": entry,
                "levels": [lv for lv, _, _ in new],
                "idxs": [ix for _, ix, _ in new],
                "hashes": [h for _, _, h in new],
                "size": size,
                "frontier": frontier,
                "now": utcnow(),
            },
        )
    else:
        sql(
            session,
            "INSERT INTO log_entries (idx, attestation_id, envelope_digest, entry) "
            "VALUES (:idx, :attestation_id, :envelope_digest, :entry)",
            {**row, "entry": entry},
        )
        sql_many(
            session,
            "INSERT INTO log_nodes (level, idx, hash) VALUES (:l, :i, :h)",
            [{"l": lv, "i": ix, "h": h} for lv, ix, h in new],
        )
        done = sql(
            session,
            "UPDATE log_head SET size = :size, frontier = :frontier, updated_at = :now "
            "WHERE id = 1 AND size = :idx",
            {"size": size, "frontier": frontier, "now": utcnow(), "idx": index},
        )
    if done != 1:  # pragma: no cover - the row is locked; guards the scheme itself
        raise RuntimeError("the log head moved while it was locked")
    return _inclusion_answer(notary, index, size, leaf, proof, _root(root), digest)


def _after_accept(
    session: Session,
    attestation: Attestation,
    _verified: VerifiedStatement,
    outcome: dict[str, Any],
) -> None:
    """AFTER_ACCEPT hook: log the envelope and put its index and proof in the answer."""
    assert attestation.id is not None
    proof = append(session, attestation.id, entry_bytes(attestation.envelope), notary_for(session))
    outcome["log_index"] = proof.log_index
    outcome["inclusion_proof"] = proof.model_dump()


def _describe_existing(session: Session, attestation: Attestation, outcome: dict[str, Any]) -> None:
    """DESCRIBE_EXISTING hook: a re-submission gets its index and a proof at today's size."""
    row = session.execute(
        select(_ENTRIES.c.idx, _ENTRIES.c.envelope_digest).where(
            _ENTRIES.c.attestation_id == attestation.id
        )
    ).first()
    if row is None:  # pragma: no cover - every accepted attestation is logged (see 0002)
        return
    head = _read_head(session)
    proof = _inclusion_at(
        session, notary_for(session), row.idx, head.size, row.envelope_digest, head.frontier
    )
    outcome["log_index"] = proof.log_index
    outcome["inclusion_proof"] = proof.model_dump()


# ----------------------------------------------------------------------------- reads


def _outside_transaction(session: Session) -> None:
    """Run a read-only answer on PostgreSQL without BEGIN and ROLLBACK: two round trips fewer.

    Consistent without a snapshot: stored nodes and entries never change, and the head row (read
    first) names a tree whose entries and nodes were committed in the same transaction as it.
    SQLite reads are in-process, and its engine opens transactions itself, so it is left alone.
    """
    if not session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def info(session: Session, notary: Notary) -> LogInfo:
    """The log's identity and its current signed checkpoint."""
    _outside_transaction(session)
    head = _read_head(session)
    root = head.root(session)
    return LogInfo(
        origin=notary.origin,
        vkey=notary.vkey,
        tree_size=head.size,
        root_hash=b64(root),
        checkpoint=notary.sign(head.size, root),
    )


def signed_checkpoint(session: Session, notary: Notary) -> str:
    """The current checkpoint as a C2SP signed note."""
    _outside_transaction(session)
    head = _read_head(session)
    return notary.sign(head.size, head.root(session))


def entries(session: Session, start: int, end: int | None) -> LogEntriesPublic:
    """Entries `start..end` inclusive (RFC 9162 get-entries), at most `MAX_ENTRIES`.

    As in RFC 9162, an `end` beyond the log is answered up to the last entry, and the answer may
    hold fewer entries than asked; the client continues from the last index it got.

    Raises:
        TreeRangeError: `start` is not an index of the log, or `end` < `start`.
    """
    _outside_transaction(session)
    size = tree_size(session)
    if not 0 <= start < size:
        raise TreeRangeError(
            f"start must be in [0, {size}) (the log has {size} entries), got {start}",
            index=start,
            size=size,
            field="start",
        )
    last = size - 1 if end is None else end
    if last < start:
        raise TreeRangeError(
            f"end must be >= start ({start}), got {last}", index=last, size=size, field="end"
        )
    last = min(last, size - 1, start + MAX_ENTRIES - 1)
    rows = session.execute(
        select(
            _ENTRIES.c.idx, _ENTRIES.c.attestation_id, _ENTRIES.c.envelope_digest, _ENTRIES.c.entry
        )
        .where(_ENTRIES.c.idx >= start, _ENTRIES.c.idx <= last)
        .order_by(_ENTRIES.c.idx)
    )
    data = [
        LogEntryPublic(index=i, attestation_id=a, envelope_digest=d, entry=b64(bytes(e)))
        for i, a, d, e in rows
    ]
    return LogEntriesPublic(start=start, end=last, tree_size=size, entries=data)


_LOOKUPS = {
    "index": "SELECT idx, envelope_digest FROM log_entries WHERE idx = :key",
    "digest": "SELECT idx, envelope_digest FROM log_entries WHERE envelope_digest = :key",
    "payload_digest": "SELECT e.idx, e.envelope_digest FROM log_entries e JOIN attestations a "
    "ON a.id = e.attestation_id WHERE a.payload_digest = :key",
}


def _head_and_entry(
    session: Session, index: int | None, digest: str | None, payload_digest: str | None
) -> tuple[_Head, str, tuple[int, str] | None]:
    """The head, and the (index, envelope digest) of the entry named by exactly one of the three
    keys, in one query; returns which key was used."""
    given = [
        (name, v)
        for name, v in (("index", index), ("digest", digest), ("payload_digest", payload_digest))
        if v is not None
    ]
    if len(given) != 1:
        raise BadRequestError(
            "give exactly one of index, digest (sha256 of the log entry) or payload_digest",
            field="index",
        )
    name, key = given[0]
    if name != "index":
        key = _hex_digest(str(key), name)
    row = fetch_first(
        session,
        "SELECT h.size, h.frontier, x.idx, x.envelope_digest FROM log_head h "
        f"LEFT JOIN ({_LOOKUPS[name]}) x ON 1 = 1 WHERE h.id = 1",
        {"key": key},
    )
    if row is None:
        return _head(0, b""), name, None
    found = None if row[2] is None else (int(row[2]), str(row[3]))
    return _head(int(row[0]), row[1]), name, found


def _hex_digest(value: str, field: str) -> str:
    digest = value.strip().lower().removeprefix("sha256:")
    if not _HEX64.fullmatch(digest):
        raise BadRequestError(f"{field} must be 64 hex digits (sha256), got {value!r}", field=field)
    return digest


def inclusion(
    session: Session,
    notary: Notary,
    *,
    index: int | None = None,
    digest: str | None = None,
    payload_digest: str | None = None,
    size: int | None = None,
) -> InclusionProofPublic:
    """Inclusion proof of one entry (by index, envelope digest or payload digest) in the tree
    of `size` entries (default: the whole log), with that tree's signed checkpoint.

    Raises:
        BadRequestError: not exactly one of index, digest, payload_digest; a malformed digest.
        NotFoundError: no such entry.
        TreeRangeError: `size` exceeds the log, or the entry is not in the tree of `size`.
    """
    _outside_transaction(session)
    head, name, found = _head_and_entry(session, index, digest, payload_digest)
    if size is not None:
        _check_size(size, head.size, "tree_size")
    size = head.size if size is None else size
    if index is not None and not 0 <= index < size:
        raise TreeRangeError(
            f"index must be in [0, {size}), got {index}", index=index, size=size, field="index"
        )
    if found is None:
        key = index if index is not None else digest if digest is not None else payload_digest
        raise NotFoundError(f"the log has no entry with {name} {key}", field=name)
    if found[0] >= size:
        raise TreeRangeError(
            f"entry {found[0]} is not in the tree of {size} entries",
            index=found[0],
            size=size,
            field="tree_size",
        )
    return _inclusion_at(session, notary, found[0], size, found[1], head.frontier)


def _inclusion_at(
    session: Session,
    notary: Notary,
    index: int,
    size: int,
    digest: str,
    known: Mapping[NodeId, bytes],
) -> InclusionProofPublic:
    """The proof, the root and the leaf itself, from at most one read of the node store."""
    proof_plan = inclusion_proof_plan(index, size)
    proof, root, (leaf,) = _resolve(session, [proof_plan, root_plan(size), [((0, index),)]], known)
    return _inclusion_answer(notary, index, size, leaf, proof, _root(root), digest)


def _inclusion_answer(
    notary: Notary,
    index: int,
    size: int,
    leaf: bytes,
    proof: list[bytes],
    root: bytes,
    digest: str,
) -> InclusionProofPublic:
    return InclusionProofPublic(
        log_index=index,
        tree_size=size,
        envelope_digest=digest,
        leaf_hash=b64(leaf),
        root_hash=b64(root),
        hashes=[b64(h) for h in proof],
        checkpoint=notary.sign(size, root),
    )


def consistency(
    session: Session, notary: Notary, first: int, second: int | None
) -> ConsistencyProofPublic:
    """Proof that the tree of `second` entries (default: the whole log) extends the tree of
    `first`, with both roots and the signed checkpoint of `second`.

    Raises:
        TreeRangeError: not 0 <= first <= second <= the log's size.
    """
    _outside_transaction(session)
    head = _read_head(session)
    second = head.size if second is None else second
    _check_size(second, head.size, "to")
    if not 0 <= first <= second:
        raise TreeRangeError(
            f"from must be in [0, {second}] (the 'to' size), got {first}",
            index=None,
            size=first,
            field="from",
        )
    proof, old_root, new_root = _resolve(
        session,
        [consistency_proof_plan(first, second), root_plan(first), root_plan(second)],
        head.frontier,
    )
    return ConsistencyProofPublic(
        from_size=first,
        to_size=second,
        from_root=b64(_root(old_root)),
        to_root=b64(_root(new_root)),
        hashes=[b64(h) for h in proof],
        checkpoint=notary.sign(second, _root(new_root)),
    )
