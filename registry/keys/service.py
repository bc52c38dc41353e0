"""Signing keys: registration, revocation, and the verifier built from a principal's keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from lineage import dsse

from ..auth import Caller, Role
from ..db import begin_write
from ..errors import ConflictError, NotFoundError, PermissionDeniedError
from ..models import Principal, SigningKey, utcnow
from ..principals.service import get_principal
from .schemas import KeyPublic


def to_public(key: SigningKey, owner: str) -> KeyPublic:
    """API view of a key."""
    return KeyPublic(
        keyid=key.keyid,
        public_key=key.public_key,
        principal=owner,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def register_key(session: Session, caller: Caller, public_key: str, owner: str | None) -> KeyPublic:
    """Register a public key for `owner` (default the caller); commits.

    Raises:
        InvalidEnvelopeError: the key is not an Ed25519 public key (field `public_key`).
        PermissionDeniedError: a non-admin registers a key for someone else.
        ConflictError: the key is already registered.
    """
    key = dsse.load_public_key(public_key)
    begin_write(session)
    if owner is not None and owner != caller.name and caller.role is not Role.ADMIN:
        raise PermissionDeniedError(
            "only admins register keys for other principals", field="principal"
        )
    principal = get_principal(session, owner or caller.name)
    kid = dsse.keyid(key)
    existing = session.get(SigningKey, kid)
    if existing is not None:
        raise ConflictError(f"key {kid} is already registered", field="public_key", keyid=kid)
    row = SigningKey(keyid=kid, public_key=dsse.public_key_b64(key), principal_id=principal.id)
    session.add(row)
    session.commit()
    return to_public(row, principal.name)


def list_keys(session: Session, owner: str | None = None) -> list[KeyPublic]:
    """Keys, optionally of one principal."""
    stmt = select(SigningKey, Principal.name).join(
        Principal,
        Principal.id == SigningKey.principal_id,  # type: ignore[arg-type]
    )
    if owner:
        stmt = stmt.where(Principal.name == owner)  # type: ignore[arg-type]
    return [to_public(k, n) for k, n in session.execute(stmt.order_by(SigningKey.created_at))]  # type: ignore[arg-type]


def revoke_key(session: Session, caller: Caller, kid: str) -> KeyPublic:
    """Revoke a key (its owner or an admin); commits. Signatures made with it before stay
    stored, but it can sign nothing new."""
    begin_write(session)
    key = session.get(SigningKey, kid)
    if key is None:
        raise NotFoundError(f"no key with keyid {kid}", field="keyid")
    owner = session.get(Principal, key.principal_id)
    assert owner is not None  # foreign key
    if owner.id != caller.id and caller.role is not Role.ADMIN:
        raise PermissionDeniedError("only the key's owner or an admin can revoke it", field="keyid")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    session.commit()
    return to_public(key, owner.name)


def verifier_for(session: Session, caller: Caller, signature_keyids: list[str]) -> dsse.Verifier:
    """A verifier trusting only the caller's active keys.

    Gives a precise refusal when a signature names a key that is unknown, revoked, or owned by
    someone else, instead of a generic "does not verify".

    Raises:
        PermissionDeniedError: the envelope is signed only by keys the caller may not use.
    """
    rows = list(
        session.scalars(select(SigningKey).where(SigningKey.principal_id == caller.id))  # type: ignore[arg-type]
    )
    active = {k.keyid: dsse.load_public_key(k.public_key) for k in rows if k.revoked_at is None}
    named = [k for k in signature_keyids if k]
    if named and not any(k in active for k in named):
        kid = named[0]
        key = session.get(SigningKey, kid)
        if key is None:
            raise PermissionDeniedError(
                f"unknown key {kid}: register it with POST /v1/keys first",
                field="signatures",
                keyid=kid,
            )
        if key.principal_id != caller.id:
            raise PermissionDeniedError(
                f"key {kid} belongs to another principal; only its owner can sign with it",
                field="signatures",
                keyid=kid,
            )
        raise PermissionDeniedError(f"key {kid} is revoked", field="signatures", keyid=kid)
    if not active:
        raise PermissionDeniedError(
            f"principal {caller.name!r} has no active signing key", field="signatures"
        )
    return dsse.Verifier(active)
