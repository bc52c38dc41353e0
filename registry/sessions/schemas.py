"""API shapes of browser sessions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..schema_types import UtcDateTime


class SessionCreate(BaseModel):
    """Sign in: the API token to exchange for a session cookie (it is not kept by the page)."""

    token: str = Field(min_length=1, max_length=200, description="An API token (`sbk_...`).")


class SessionPublic(BaseModel):
    """Who is signed in, until when, and what the page may offer them."""

    principal: str
    role: str
    expires_at: UtcDateTime | None = Field(
        default=None, description="When the session ends; null when called with a bearer token."
    )
    can_decide: bool = Field(description="May flag, clear, confirm and accept risks.")
    can_queue_evals: bool
    csrf_token: str | None = Field(
        default=None,
        description="Only in the sign-in answer: echo it in `X-CSRF-Token` on every "
        "state-changing request (it is also in the `studbook_csrf` cookie).",
    )
