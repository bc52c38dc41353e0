"""HTTP routes for signing keys."""

from __future__ import annotations

from litestar import Controller, get, post
from sqlmodel import Session

from ..auth import Caller, Role, require
from . import service
from .schemas import KeyCreate, KeyPublic, KeysPublic


class KeyController(Controller):
    """Register (with proof of possession), list and revoke public keys."""

    path = "/v1/keys"
    tags = ["keys"]

    @post(
        "/",
        sync_to_thread=True,
        summary="Register a public key",
        description="Ed25519, ECDSA P-256 or ECDSA P-384. The `proof` must be signed by the key "
        "itself and name the principal it is registered for; nothing is written otherwise.",
    )
    def register(self, data: KeyCreate, db_session: Session, caller: Caller) -> KeyPublic:
        require(caller, Role.REGISTRAR, Role.REVIEWER)
        return service.register_key(db_session, caller, data.public_key, data.principal, data.proof)

    @get("/", sync_to_thread=True, summary="List keys")
    def list(self, db_session: Session, caller: Caller, principal: str | None = None) -> KeysPublic:
        rows = service.list_keys(db_session, principal)
        return KeysPublic(data=rows, count=len(rows))

    @post("/{keyid:str}/revoke", sync_to_thread=True, summary="Revoke a key")
    def revoke(self, keyid: str, db_session: Session, caller: Caller) -> KeyPublic:
        return service.revoke_key(db_session, caller, keyid)
