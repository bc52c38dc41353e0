"""Signing keys: registration with proof of possession, revocation, and the verifier built from a
principal's keys.

Registration checks the proof (`lineage.dsse.verify_key_possession`) before anything is read
for writing or written: a principal can only register a key whose private half it holds, for
itself (or, as an admin, for the principal the proof names). So nobody can squat a public key,
and the real holder never meets a 409 made by someone else.

Verification of envelopes (`verifier_for`) trusts only the submitting principal's active keys,
and every signature present must verify under one of them. When one does not, the refusal says
why in the terms of the key it names (unknown, revoked, another principal's) rather than a bare
"does not verify", because that is what the submitter can act on.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lineage import dsse
from lineage.errors import UnverifiedSignatureError

from ..auth import Caller, Role
from ..db import begin_write, fetch
from ..errors import ConflictError, NotFoundError, PermissionDeniedError, RegistryError
from ..models import Principal, SigningKey, utcnow
from ..principals.service import get_principal
from .schemas import KeyPublic


def algorithm_name(public_key: str) -> str:
    """The algorithm of a stored key, for listings (parsing a stored key cannot fail: only
    parsed keys are stored)."""
    return dsse.algorithm_of(dsse.load_public_key(public_key)).value


def to_public(key: SigningKey, owner: str) -> KeyPublic:
    """API view of a key."""
    return KeyPublic(
        keyid=key.keyid,
        public_key=key.public_key,
        algorithm=algorithm_name(key.public_key),
        principal=owner,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        proof=key.proof,
    )


def register_key(
    session: Session, caller: Caller, public_key: str, owner: str | None, proof: object
) -> KeyPublic:
    """Register a public key for `owner` (default the caller) once `proof` shows the key's holder
    signed for that principal; commits.

    Raises:
        InvalidEnvelopeError: the key is not an accepted public key (field `public_key`), or the
            proof is missing or does not verify (field `proof`).
        PermissionDeniedError: a non-admin registers a key for someone else.
        NotFoundError: no such principal.
        ConflictError: the key is already registered.
    """
    key = dsse.load_public_key(public_key)
    if owner is not None and owner != caller.name and caller.role is not Role.ADMIN:
        raise PermissionDeniedError(
            "only admins register keys for other principals", field="principal"
        )
    name = owner or caller.name
    # Pure and the most expensive step: checked before the write lock is taken.
    row = verified_key_row(key, name, proof)
    begin_write(session)
    principal = get_principal(session, name)
    if session.get(SigningKey, row.keyid) is not None:
        raise _already_registered(row.keyid)
    row.principal_id = principal.id  # type: ignore[assignment]
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent registration of the same key won
        session.rollback()
        raise _already_registered(row.keyid) from exc
    return to_public(row, principal.name)


def verified_key_row(
    public_key: str | dsse.PublicKey, principal: str, proof: object, principal_id: int | None = None
) -> SigningKey:
    """A new (unsaved) key row, made only once `proof` shows the key's holder signed for
    `principal`: every way a key enters the registry (the API, the eval worker's own key) goes
    through here, so no key row exists without its holder's consent. `principal_id` may be
    filled in later, once the principal is read under the write lock.

    Raises:
        InvalidEnvelopeError: the key is unusable (field `public_key`) or the proof does not
            verify (field `proof`).
    """
    key = dsse.load_public_key(public_key) if isinstance(public_key, str) else public_key
    verified = dsse.verify_key_possession(proof, key, principal)
    return SigningKey(
        keyid=dsse.keyid(key),
        public_key=dsse.public_key_text(key),
        principal_id=principal_id,  # type: ignore[arg-type]
        proof=verified.to_json(),
    )


def _already_registered(kid: str) -> ConflictError:
    return ConflictError(f"key {kid} is already registered", field="public_key", keyid=kid)


def list_keys(session: Session, owner: str | None = None) -> list[KeyPublic]:
    """Keys, optionally of one principal."""
    stmt = select(SigningKey, Principal.name).join(
        Principal,
        Principal.id == SigningKey.principal_id,  # type: ignore[arg-type]
    )
    if owner:
        stmt = stmt.where(Principal.name == owner)  # type: ignore[arg-type]
    return [to_public(k, n) for k, n in session.execute(stmt.order_by(SigningKey.created_at))]  # type: ignore[arg-type]


# The principal the registry signs its own statements (weights findings) as; see
# registry/weights/service.py, which creates it with the log key on first use.
REGISTRY_PRINCIPAL = "studbook-registry"


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
    if owner.name == REGISTRY_PRINCIPAL:
        # The registry's own key is the log's checkpoint key, with which it signs its findings;
        # it changes only with the log key (a rotation registers the new one automatically).
        raise ConflictError(
            "the registry's own key is the log key; it cannot be revoked here", field="keyid"
        )
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    session.commit()
    return to_public(key, owner.name)


class CallerVerifier(dsse.Verifier):
    """A verifier over one principal's active keys that explains a refusal by the key the
    failing signature names.

    `known` maps the keyids the envelope's signatures name to what the registry knows of them:
    the owner's principal id and whether the key is revoked (absent: unknown key).
    """

    def __init__(
        self,
        caller: Caller,
        active: dict[str, dsse.PublicKey],
        known: dict[str, tuple[int, bool]],
    ) -> None:
        super().__init__(active)
        self._caller = caller
        self._active = set(active)
        self._known = known

    def verify_all(
        self, envelope: dsse.Envelope, *, payload_type: str | None = None
    ) -> tuple[str, ...]:
        """As `dsse.Verifier.verify_all`, with the precise refusals of `explain`."""
        try:
            return super().verify_all(envelope, payload_type=payload_type)
        except UnverifiedSignatureError as exc:
            if exc.index is None:
                raise
            refusal = self.explain(envelope.signatures[exc.index].keyid, exc.index)
            if refusal is None:
                raise
            raise refusal from exc

    def explain(self, kid: str, index: int) -> RegistryError | None:
        """Why signature `index`, naming `kid`, cannot be accepted, when the key says more than
        "does not verify" (None: it names one of the caller's active keys, or nothing)."""
        where = f"signatures[{index}]"
        if kid in self._active:
            return None
        if kid:
            info = self._known.get(kid)
            if info is None:
                return PermissionDeniedError(
                    f"{where}: unknown key {kid}: register it with POST /v1/keys first (it was "
                    f"also tried against {self._caller.name!r}'s active keys)",
                    field="signatures",
                    keyid=kid,
                )
            owner_id, revoked = info
            if owner_id != self._caller.id:
                return PermissionDeniedError(
                    f"{where}: key {kid} belongs to another principal; only its owner can sign "
                    "with it",
                    field="signatures",
                    keyid=kid,
                )
            if revoked:
                return PermissionDeniedError(
                    f"{where}: key {kid} is revoked", field="signatures", keyid=kid
                )
        if not self._active:
            return PermissionDeniedError(
                f"principal {self._caller.name!r} has no active signing key", field="signatures"
            )
        return None


# Every submission asks for the caller's keys: one fixed driver-level query, and a stored key's
# parsed form is kept (parsing is pure; whether the key is active is read every time).
_KEYS = SigningKey.__table__  # type: ignore[attr-defined]
_CALLER_KEYS = "SELECT keyid, public_key, revoked_at IS NULL FROM keys WHERE principal_id = :pid"
_public_key = functools.lru_cache(maxsize=4096)(dsse.load_public_key)


def verifier_for(
    session: Session, caller: Caller, signature_keyids: Iterable[str]
) -> dsse.Verifier:
    """A verifier trusting only the caller's active keys, under which every signature of the
    envelope must verify (see `CallerVerifier` for the refusals).

    `signature_keyids` are the keyids the envelope's signatures name: hints, looked up only to
    explain a refusal.
    """
    rows = fetch(session, _CALLER_KEYS, {"pid": caller.id})
    active = {keyid: _public_key(public) for keyid, public, active in rows if active}
    named = sorted({k for k in signature_keyids if k} - set(active))
    known: dict[str, tuple[int, bool]] = {}
    if named:
        stmt = select(SigningKey.keyid, SigningKey.principal_id, SigningKey.revoked_at).where(
            SigningKey.keyid.in_(named)  # type: ignore[attr-defined]
        )
        known = {kid: (pid, revoked is not None) for kid, pid, revoked in session.execute(stmt)}
    return CallerVerifier(caller, active, known)
