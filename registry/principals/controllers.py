"""HTTP routes for principals and tokens (admin only)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import Provide
from sqlmodel import Session

from ..auth import Caller, Role, provide_caller, require
from . import service
from .schemas import PrincipalCreate, PrincipalPublic, PrincipalsPublic, TokenIssued


def _public(p: object) -> PrincipalPublic:
    return PrincipalPublic.model_validate(p, from_attributes=True)


class PrincipalController(Controller):
    """Create principals and issue tokens."""

    path = "/v1/principals"
    tags = ["principals"]

    @post("/", sync_to_thread=True, summary="Create a principal and its first token")
    def create(self, data: PrincipalCreate, db_session: Session, caller: Caller) -> TokenIssued:
        require(caller, Role.ADMIN)
        principal, token = service.create_principal(db_session, data.name, data.role)
        return TokenIssued(principal=_public(principal), token=token)

    @get("/", sync_to_thread=True, summary="List principals")
    def list(self, db_session: Session, caller: Caller) -> PrincipalsPublic:
        require(caller, Role.ADMIN)
        rows = [_public(p) for p in service.list_principals(db_session)]
        return PrincipalsPublic(data=rows, count=len(rows))

    @post("/{name:str}/tokens", sync_to_thread=True, summary="Issue another token")
    def token(self, name: str, db_session: Session, caller: Caller) -> TokenIssued:
        require(caller, Role.ADMIN)
        principal, token = service.issue_token(db_session, name)
        return TokenIssued(principal=_public(principal), token=token)


# The one route with a caller and no database session: it takes the caller directly, without
# the session the app-wide `caller` waits for (`registry.deps.provide_request_caller`).
@get(
    "/v1/me",
    sync_to_thread=False,
    tags=["principals"],
    summary="Who am I",
    dependencies={"caller": Provide(provide_caller)},
)
def whoami(caller: Caller) -> dict[str, object]:
    """The authenticated caller."""
    return {"id": caller.id, "name": caller.name, "role": caller.role.value}
