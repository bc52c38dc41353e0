"""API shapes for principals and tokens."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..auth import Role
from ..schema_types import UtcDateTime


class PrincipalCreate(BaseModel):
    """A new person or pipeline."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: Role


class PrincipalPublic(BaseModel):
    """A principal as the API shows it."""

    id: int
    name: str
    role: Role
    created_at: UtcDateTime


class PrincipalsPublic(BaseModel):
    """A list of principals."""

    data: list[PrincipalPublic]
    count: int


class TokenIssued(BaseModel):
    """A new token: shown once, never retrievable again."""

    principal: PrincipalPublic
    token: str
