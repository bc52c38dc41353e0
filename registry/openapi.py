"""What the OpenAPI document says about security and errors, derived from the routes themselves.

A document that claims a token where none is needed (or the reverse), or that lists only the
happy answer, misleads every generated client and every auditor reading it. So `describe` walks
the app's routes once, after they are registered, and states for each operation:

- **security**: a bearer token or a browser session exactly when the handler depends on the
  authenticated `caller` (the checkpoint, the proofs, the log's key, /healthz and sign-in
  depend on nothing and are public);
- **errors**: every status the operation can answer, each with the one error body that
  `registry.errors.exception_handler` produces (`status_code`, `detail`, `field`, ...). 400 is
  on every operation (the path and the query string are checked on every route, see
  `registry.boundary`), 401 wherever a token is needed, 403 on every authenticated write (a
  session's CSRF check), 404 wherever a path parameter names something, 413 wherever there is
  a body; the
  domain's own refusals (403/404/409/422) come from `DOMAIN_ERRORS`, kept next to the
  descriptions so that adding a refusal to a service means adding it here;
- **other successes**: 200 on attestation re-submission, 202 on cancelling a running eval.

A test (`tests/security/test_http_openapi.py`) calls every operation without a token and holds
the document to the answers, and the schemathesis run checks every documented status and body.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import SecurityScheme
from litestar.routes import HTTPRoute
from pydantic import BaseModel, ConfigDict, Field

from lineage.types import MAX_NAME, MAX_VERSION

# Either an API token or a browser session (`registry.sessions`) authenticates a caller.
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": SecurityScheme(
        type="http", scheme="bearer", description="An API token: `Authorization: Bearer sbk_...`."
    ),
    "session": SecurityScheme(
        type="apiKey",
        name="studbook_session",
        security_scheme_in="cookie",
        description="A browser session opened by POST /v1/session; state-changing requests "
        "must also echo the `studbook_csrf` cookie in `X-CSRF-Token` (403 otherwise).",
    ),
}

NAME_GRAMMAR = (
    f"**Names** (`lineage.types.check_name`): at most {MAX_NAME} characters (versions "
    f"{MAX_VERSION}); Unicode scalar values in NFC (refused, not normalised, when not NFC); "
    "printable only: no control characters, whitespace, bidirectional controls (U+202A-U+202E, "
    "U+2066-U+2069, U+200E, U+200F, U+061C), zero-width characters (U+200B-U+200D, U+2060, "
    "U+FEFF), private-use or unassigned code points; no `@` and no backslash. A name is a "
    "relative `/`-separated path of non-empty segments, none of them `.` or `..`, not starting "
    "with `~` or a drive letter; a version holds no `/` and is not `.` or `..`. References are "
    "`<id>` (1..2^63-1), `sha256:<64 hex digits>` or `name@version`."
)


class ErrorBody(BaseModel):
    """Every error answer: its status, what was wrong, and the field or parameter at fault.

    Some refusals add attributes (`path` of a cycle, `owner` of an artifact, `keyid`, `ref`,
    `errors` from parameter validation), hence extra keys are allowed.
    """

    model_config = ConfigDict(extra="allow")

    status_code: int
    detail: str
    field: str | None = Field(
        default=None,
        description="The request field or parameter at fault: a parameter name, `body`, "
        "`path`, or a JSON path into the body such as `signatures[0].sig`.",
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Parameter validation details, when there were several."
    )


_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: a parameter, the body or a field in it (named in `field`) is "
    "missing, of the wrong type or out of range (ids 1..2^63-1), not UTF-8, holds a NUL or "
    "a lone surrogate, nests more than 64 levels, or breaks a documented rule.",
    401: "No bearer token, a malformed Authorization header, or an unknown or revoked token.",
    403: "The caller's role, key or ownership does not allow this (the answer says who may).",
    404: "A referenced principal, key, artifact, attestation, log entry or eval run does not "
    "exist.",
    409: "The request contradicts what is recorded (already exists, already revoked, already "
    "finished, a digest prefix that matches several artifacts, or a concurrent write won).",
    413: "The request body exceeds the configured limit (`STUDBOOK_MAX_BODY_BYTES`).",
    422: "Well-formed, but refers to something that makes it impossible (an unknown parent, a "
    "cycle, a dataset where a model is needed).",
}

# (method, path) -> refusals the domain services raise, besides 400/401/413.
DOMAIN_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/v1/principals"): (403,),
    ("POST", "/v1/principals"): (403, 409),
    ("POST", "/v1/principals/{name}/tokens"): (403, 404),
    ("POST", "/v1/keys"): (403, 404, 409),
    ("POST", "/v1/keys/{keyid}/revoke"): (403, 404, 409),
    ("GET", "/v1/attestations/{attestation_id}"): (404,),
    ("POST", "/v1/attestations"): (403, 404, 409, 422),
    ("GET", "/v1/artifacts/{ref}"): (404, 409),  # 409: an ambiguous digest prefix
    ("GET", "/v1/log/proof/inclusion"): (404,),
    ("POST", "/v1/checks/fine-tune"): (404, 409, 422),
    ("POST", "/v1/checks/shared-base"): (404, 409, 422),
    ("GET", "/v1/findings"): (404, 409),
    ("GET", "/v1/findings/{finding_id}"): (404,),
    ("POST", "/v1/evals"): (403, 404, 409, 422),
    ("GET", "/v1/evals/{run_id}"): (404,),
    ("DELETE", "/v1/evals/{run_id}"): (403, 404, 409),
    ("GET", "/v1/evals/{run_id}/plot"): (404,),
    ("POST", "/v1/session"): (401, 403),
    ("POST", "/v1/imports/oms"): (403, 404, 409, 422),
    ("GET", "/v1/imports/oms/{signature_id}"): (404,),
}


def _extra_successes(method: str, path: str) -> dict[int, ResponseSpec]:
    from .attestations.schemas import AttestationAccepted
    from .evals.schemas import EvalRunPublic

    if (method, path) == ("POST", "/v1/attestations"):
        return {
            200: ResponseSpec(
                data_container=AttestationAccepted,
                description="The same payload was already accepted: the stored attestation, "
                "`created: false`, nothing written.",
                generate_examples=False,
            )
        }
    if (method, path) == ("POST", "/v1/imports/oms"):
        from .imports.schemas import OmsImported

        return {
            200: ResponseSpec(
                data_container=OmsImported,
                description="The bundle was already kept: nothing written.",
                generate_examples=False,
            )
        }
    if (method, path) == ("DELETE", "/v1/evals/{run_id}"):
        return {
            202: ResponseSpec(
                data_container=EvalRunPublic,
                description="The run is running; its worker has been asked to stop it.",
                generate_examples=False,
            )
        }
    return {}


def needs_token(handler: Any) -> bool:
    """Whether the handler depends on the authenticated caller (so answers 401 without one)."""
    return "caller" in handler.parsed_fn_signature.parameters


def describe(app: Litestar) -> None:
    """Set each operation's security and responses (see the module docstring).

    Runs before the document is first built (Litestar builds it lazily, on first request).
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            for method in handler.http_methods:
                if method in {"OPTIONS", "HEAD"}:
                    continue
                _describe_operation(handler, method, route.path_format or "/")


def _describe_operation(handler: Any, method: str, path: str) -> None:
    token = needs_token(handler)
    statuses = {400}
    if token:
        statuses.add(401)
        if method != "GET":  # a session without its CSRF token, or from another origin
            statuses.add(403)
    if "data" in handler.parsed_fn_signature.parameters:
        statuses.add(413)
    if "{" in path:  # a path parameter names something, which may not exist
        statuses.add(404)
    statuses.update(DOMAIN_ERRORS.get((method, path), ()))
    responses: dict[int, ResponseSpec] = dict(handler.responses or {})
    for status in sorted(statuses):
        responses[status] = ResponseSpec(
            data_container=ErrorBody,
            description=_DESCRIPTIONS[status],
            generate_examples=False,
        )
    responses.update(_extra_successes(method, path))
    handler.responses = responses
    handler.security = SECURITY if token else None
    if path in {"/v1/attestations", "/v1/artifacts/{ref}"} and NAME_GRAMMAR not in (
        handler.description or ""
    ):
        handler.description = (handler.description or "") + "\n\n" + NAME_GRAMMAR
