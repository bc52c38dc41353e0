"""Ecosystem intake: OpenSSF model-signing bundles as evidence for registered artifacts.

`import_oms` takes a model-signing bundle (the `model.sig` file) and, optionally, the caller's
own signed Studbook registration of the model, and in one transaction:

1. checks the bundle (`bundle.parse_bundle`): shape, model-signing predicate, file serialisation
   with sha256, and that its subject digest is the digest of the files it lists;
2. verifies its signature against the caller's registered, active keys (or, for a keyless bundle,
   offline against the operator's Sigstore trust root); an unregistered key is a refusal;
3. checks that the registration (when given) is about exactly the bundle's subject digest, or
   that an artifact with that digest is already registered;
4. records the bundle verbatim in `model_signatures`, then submits the registration through the
   ordinary ingest (signature check, log append) which commits both.

Any refusal anywhere writes nothing: the evidence row is written in the ingest's transaction, and
every check above runs before it.

Why the client also signs a registration: every write to Studbook is a statement signed by a
principal's key. The bundle says "these files are the model"; it does not say what the model is
called or what it was derived from. The registration says that, and the bundle becomes its
evidence (the same digest, signed by a key of the same principal).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from lineage import dsse

from ..artifacts.service import public as artifact_public
from ..attestations import service as attestations
from ..auth import Caller, Role, require
from ..db import begin_write
from ..errors import BadRequestError, NotFoundError, PermissionDeniedError, UnprocessableError
from ..models import Artifact, Principal, SigningKey
from ..models.ecosystem import ModelSignature
from .bundle import parse_bundle, verify_keyless, verify_with_keys
from .schemas import OmsImported, SignaturePublic

__all__ = ["get_signature", "import_oms", "signatures_of"]


def _caller_keys(session: Session, caller: Caller) -> dict[str, Any]:
    rows = session.scalars(
        select(SigningKey).where(
            SigningKey.principal_id == caller.id,  # type: ignore[arg-type]
            SigningKey.revoked_at.is_(None),  # type: ignore[union-attr]
        )
    )
    keys: dict[str, Any] = {}
    for row in rows:
        try:
            keys[row.keyid] = dsse.load_public_key(row.public_key)
        except Exception:  # a key form this process cannot load cannot have signed
            continue
    return keys


def _registration_digest(registration: object) -> str:
    """The subject digest a registration envelope claims; verified later by the ingest."""
    import json

    env = dsse.Envelope.from_json(registration)
    try:
        statement = json.loads(env.payload)
        digest = statement["subject"][0]["digest"]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BadRequestError(
            "registration must be a signed Studbook registration envelope", field="registration"
        ) from exc
    if not isinstance(digest, str):
        raise BadRequestError("registration subject is malformed", field="registration")
    return digest.removeprefix("sha256:")


def import_oms(
    session: Session,
    caller: Caller,
    bundle: object,
    registration: object | None,
    *,
    trust_root: Any = None,
) -> OmsImported:
    """Verify a model-signing bundle and keep it as evidence; register the model if asked.

    Raises:
        BadRequestError: the bundle or registration is malformed, the signature does not verify
            under the caller's keys, or the two disagree on the digest (field names it).
        PermissionDeniedError: the caller may not register (viewers).
        UnprocessableError: no registration and no artifact with the bundle's digest.
    """
    require(caller, Role.REGISTRAR)
    parsed = parse_bundle(bundle)
    assert isinstance(bundle, dict)  # parse_bundle refuses anything else
    if registration is not None:
        reg_digest = _registration_digest(registration)
        if reg_digest != parsed.subject_digest:
            raise BadRequestError(
                f"the registration is about sha256:{reg_digest}, the bundle signs "
                f"sha256:{parsed.subject_digest}: they must name the same content",
                field="registration",
            )
    begin_write(session)
    identity: str | None = None
    keyid: str | None = None
    if parsed.keyless:
        identity = verify_keyless(bundle, trust_root)
    else:
        keys = _caller_keys(session, caller)
        if not keys:
            raise PermissionDeniedError(
                f"principal {caller.name!r} has no active key to check the bundle against",
                field="bundle",
            )
        keyid = verify_with_keys(parsed, keys)
    existing_art = session.scalars(
        select(Artifact).where(Artifact.digest == parsed.subject_digest)  # type: ignore[arg-type]
    ).first()
    if registration is None and existing_art is None:
        raise UnprocessableError(
            f"no artifact sha256:{parsed.subject_digest} is registered: send a registration "
            "with the bundle",
            field="registration",
            digest=parsed.subject_digest,
        )

    def kept_signature() -> tuple[ModelSignature, bool]:
        """The evidence row for this bundle, and whether it was already there."""
        found = session.scalars(
            select(ModelSignature).where(
                ModelSignature.artifact_digest == parsed.subject_digest,  # type: ignore[arg-type]
                ModelSignature.payload_digest == parsed.payload_digest,  # type: ignore[arg-type]
            )
        ).first()
        if found is not None:
            return found, True
        made = ModelSignature(
            artifact_digest=parsed.subject_digest,
            payload_digest=parsed.payload_digest,
            subject_name=parsed.subject_name[:500],
            files=len(parsed.resources),
            signer_keyid=keyid,
            signer_identity=identity[:500] if identity else None,
            principal_id=caller.id,
            bundle=bundle,
        )
        session.add(made)
        session.flush()
        return made, False

    row, existed = kept_signature()
    row_id = row.id
    attestation_id: int | None = None
    if registration is not None:
        sub = attestations.submit(session, caller, registration)  # commits (or rolls back)
        attestation_id = sub.attestation.id
        if not sub.created and not existed:
            # A re-submitted registration answers without writing, and rolled our row back.
            begin_write(session)
            again, _ = kept_signature()
            row_id = again.id
            session.commit()
    else:
        session.commit()
    art = session.scalars(
        select(Artifact).where(Artifact.digest == parsed.subject_digest)  # type: ignore[arg-type]
    ).first()
    if art is None:  # the registration named another kind of subject; cannot happen after submit
        raise NotFoundError("artifact vanished", field="registration")
    assert row_id is not None
    return OmsImported(
        signature_id=row_id,
        created=not existed,
        artifact=artifact_public(session, art),
        attestation_id=attestation_id,
        subject_digest=parsed.subject_digest,
        files=len(parsed.resources),
        signer_keyid=keyid,
        signer_identity=identity,
    )


def _public(session: Session, row: ModelSignature, with_bundle: bool) -> SignaturePublic:
    assert row.id is not None
    principal = session.get(Principal, row.principal_id)
    return SignaturePublic(
        id=row.id,
        artifact_digest=row.artifact_digest,
        payload_digest=row.payload_digest,
        subject_name=row.subject_name,
        files=row.files,
        signer_keyid=row.signer_keyid,
        signer_identity=row.signer_identity,
        principal=principal.name if principal else "?",
        received_at=row.received_at,
        bundle=row.bundle if with_bundle else None,
    )


def signatures_of(session: Session, artifact: Artifact) -> list[SignaturePublic]:
    """The model-signing bundles kept for `artifact`, oldest first (bundles included)."""
    rows = session.scalars(
        select(ModelSignature)
        .where(ModelSignature.artifact_digest == artifact.digest)  # type: ignore[arg-type]
        .order_by(ModelSignature.id)  # type: ignore[arg-type]
    )
    return [_public(session, r, True) for r in rows]


def get_signature(session: Session, signature_id: int) -> SignaturePublic:
    """One kept bundle.

    Raises:
        NotFoundError: no such id.
    """
    row = session.get(ModelSignature, signature_id)
    if row is None:
        raise NotFoundError(f"no model signature {signature_id}", field="id")
    return _public(session, row, True)
