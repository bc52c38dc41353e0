"""Service errors and the one place where any error becomes an HTTP answer.

Domain code (here and in `lineage`) raises typed errors with attributes; `exception_handler`
maps them to status codes and a JSON body `{"status_code", "detail", "field"}` that names what was
wrong. Anything unmapped is a bug and answers 500 without leaking internals.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions import ValidationException as LitestarValidationException
from sqlalchemy.exc import IntegrityError

from lineage.errors import (
    CycleError,
    DigestError,
    InvalidEnvelopeError,
    InvalidStatementError,
    LineageError,
    RelationError,
    UnverifiedSignatureError,
    VerificationError,
)
from lineage.merkle import MissingNodeError

log = logging.getLogger("studbook")


class RegistryError(Exception):
    """Base of service errors."""

    status_code = 500

    def __init__(self, message: str, *, field: str | None = None, **attrs: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.attrs = attrs


class BadRequestError(RegistryError):
    """The request is malformed in a way the schema layer could not see."""

    status_code = 400


class AuthenticationError(RegistryError):
    """No or an unknown bearer token."""

    status_code = 401


class PermissionDeniedError(RegistryError):
    """The caller's role or key does not allow this."""

    status_code = 403


class NotFoundError(RegistryError):
    """A referenced thing does not exist."""

    status_code = 404


class ConflictError(RegistryError):
    """The request contradicts what is already recorded."""

    status_code = 409


class PayloadTooLargeError(RegistryError):
    """The body exceeds the configured limit."""

    status_code = 413


class UnprocessableError(RegistryError):
    """Well-formed, but refers to something that makes it impossible (an unknown parent)."""

    status_code = 422


def _status_for_lineage(exc: LineageError) -> int:
    if isinstance(exc, VerificationError):
        return 500
    if isinstance(exc, UnverifiedSignatureError):
        return 400
    if isinstance(exc, InvalidEnvelopeError | InvalidStatementError | DigestError):
        return 400
    if isinstance(exc, RelationError | CycleError):
        return 422
    if isinstance(exc, MissingNodeError):  # the log's node store is behind or corrupt
        return 500
    return 400  # the rest, TreeRangeError and ProofError included, describe bad input


# Unique constraints -> (field, what the sequential path says). Every writer checks these under
# the write lock (`registry.db.begin_write`), so a violation means a path that did not; it is
# still the client's conflict, never a 500. Keys: PostgreSQL constraint names, and SQLite's
# "UNIQUE constraint failed: <table>.<columns>" text.
_UNIQUE_CONFLICTS: dict[str, tuple[str, str]] = {
    "uq_artifacts_name_version": (
        "predicate.artifact.version",
        "this name@version is already registered with another digest; register new content "
        "under a new version",
    ),
    "artifacts.name, artifacts.version": (
        "predicate.artifact.version",
        "this name@version is already registered with another digest; register new content "
        "under a new version",
    ),
    "artifacts_digest_key": ("subject[0].digest", "this digest is already registered"),
    "artifacts.digest": ("subject[0].digest", "this digest is already registered"),
    "principals_name_key": ("name", "a principal with this name already exists"),
    "principals.name": ("name", "a principal with this name already exists"),
    "keys_pkey": ("public_key", "this key is already registered"),
    "keys.keyid": ("public_key", "this key is already registered"),
    "uq_edges_child_parent_rel": ("predicate.parents", "this edge is already recorded"),
    "edges.child_id, edges.parent_id, edges.relation": (
        "predicate.parents",
        "this edge is already recorded",
    ),
    "attestations_payload_digest_key": ("payload", "this statement was already accepted"),
    "attestations.payload_digest": ("payload", "this statement was already accepted"),
}


def unique_conflict(exc: IntegrityError) -> tuple[str | None, str] | None:
    """The field and message of a unique-constraint violation (None: another integrity error)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        diag = getattr(orig, "diag", None)
        name = str(getattr(diag, "constraint_name", "") or "")
    else:
        text = str(orig)
        if "UNIQUE constraint failed: " not in text:
            return None
        name = text.split("UNIQUE constraint failed: ", 1)[1].strip()
    field, message = _UNIQUE_CONFLICTS.get(
        name, (None, "the request conflicts with something recorded at the same time")
    )
    return field, message


def exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map any exception raised while handling a request to a JSON error response."""
    field: str | None = None
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, RegistryError):
        status, detail, field, extra = exc.status_code, exc.message, exc.field, exc.attrs
    elif isinstance(exc, LineageError):
        status, detail, field = _status_for_lineage(exc), exc.message, exc.field
        if isinstance(exc, CycleError):
            extra = {"path": list(exc.path)}
        if status == 500:
            log.error("%s: %s", type(exc).__name__, exc)
            detail = (
                "signature verification could not run on the server"
                if isinstance(exc, VerificationError)
                else "the transparency log's stored nodes are incomplete; an operator should "
                "run `studbook log audit`"
            )
    elif isinstance(exc, IntegrityError) and (conflict := unique_conflict(exc)) is not None:
        status, (field, detail) = 409, conflict
    elif isinstance(exc, LitestarValidationException):
        status = 400
        detail = str(exc.detail)
        extra = {"errors": exc.extra} if exc.extra else {}
        field = _first_invalid_field(request, exc.extra)
        if field and detail.startswith("Validation failed"):
            detail = f"{detail}: {field}: {_first_invalid_message(exc.extra)}"
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        headers = dict(exc.headers or {})  # e.g. `Allow` on 405
        if exc.extra:
            extra = {"errors": exc.extra}
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail = 500, "internal error"
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if field:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(content=_servable(body), status_code=status, headers=headers)


def _servable(value: Any) -> Any:
    """Error answers echo what the client sent (a reference, a field's path). Input is checked
    at the boundary, but an echo with a lone surrogate must still not turn a 4xx into a response
    that cannot be encoded, so strings that are not valid Unicode are escaped here."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_servable(k): _servable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_servable(v) for v in value]
    return value


def _first_invalid_field(request: Request[Any, Any, Any], errors: Any) -> str | None:
    """The parameter or body field a Litestar validation error names first, by the name the
    client used (`from`, not the handler's `first`)."""
    if not (isinstance(errors, list) and errors and isinstance(errors[0], dict)):
        return None
    key = errors[0].get("key")
    if not key:
        # A body of the wrong shape (an array or a number where an object is expected) fails
        # before any field is read: the field at fault is the body itself.
        errors[0]["key"] = "body"
        return "body"
    if key == "data" and errors[0].get("source") == "body":  # the handler's name for the body
        errors[0]["key"] = "body"
        return "body"
    try:
        declared = request.route_handler.parsed_fn_signature.parameters[key].kwarg_definition
        alias = getattr(declared, "query", None) or getattr(declared, "name", None)
    except (KeyError, AttributeError):
        alias = None
    if alias:
        errors[0]["key"] = alias
    return str(alias or key)


def _first_invalid_message(errors: Any) -> str:
    return str(errors[0].get("message", "invalid")) if errors else "invalid"
