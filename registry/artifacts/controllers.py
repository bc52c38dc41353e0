"""HTTP routes for artifacts.

Artifact names hold slashes (`acme/owl-teacher@1`), and the router decodes `%2F` before matching,
so one route takes the whole rest of the path: `/v1/artifacts/<ref>` shows the artifact and
`/v1/artifacts/<ref>/<view>` one of its views (`lineage`, and views other domains register, such
as `risk`). A version never contains '/', so the split is unambiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from pydantic import BaseModel
from sqlmodel import Session

from lineage.types import ArtifactKind

from ..auth import Caller
from ..boundary import MAX_ID, MAX_LIMIT, MAX_OFFSET
from ..deps import read_only
from ..errors import BadRequestError, NotFoundError
from ..models import Artifact
from . import service
from .schemas import ArtifactsPublic, Direction

# view name -> function(session, artifact, query params) -> JSON-ready answer
View = Callable[[Session, Artifact, dict[str, str]], Any]
VIEWS: dict[str, View] = {}
# view name -> function(session, artifact key, query params): read-only views that need only the
# artifact's id, digest, name and version (`service.resolve_key`); on PostgreSQL their session
# reads without a transaction (`read_only`).
KeyView = Callable[[Session, service.ArtifactKey, dict[str, str]], Any]
KEY_VIEWS: dict[str, KeyView] = {}


def register_view(name: str, view: View) -> None:
    """Add a sub-resource `/v1/artifacts/<ref>/<name>`."""
    KEY_VIEWS.pop(name, None)
    VIEWS[name] = view


def register_key_view(name: str, view: KeyView) -> None:
    """Add a read-only sub-resource `/v1/artifacts/<ref>/<name>` given the artifact's key."""
    VIEWS.pop(name, None)
    KEY_VIEWS[name] = view


def plain_lineage_view(
    session: Session, artifact: service.ArtifactKey, params: dict[str, str]
) -> Any:
    raw_dir = params.get("direction", "up")
    try:
        direction = Direction(raw_dir)
    except ValueError as exc:
        raise BadRequestError("direction must be 'up' or 'down'", field="direction") from exc
    raw_depth = params.get("depth", "10")
    # ASCII digits only: str.isdigit() also admits '²', which int() refuses.
    if not (raw_depth.isascii() and raw_depth.isdigit() and len(raw_depth) <= 6):
        raise BadRequestError(
            f"depth must be an integer between 1 and {service.MAX_DEPTH}", field="depth"
        )
    return service.lineage(session, artifact, direction, int(raw_depth))


def as_json(answer: Any) -> Any:
    """A view's pydantic answer as its JSON bytes, written by pydantic-core in one pass; the
    same document Litestar would write (`model_dump(mode="json")`, then encoded), without the
    intermediate dicts. A lineage answer holds thousands of nodes."""
    if isinstance(answer, BaseModel):
        return Response(type(answer).__pydantic_serializer__.to_json(answer))
    return answer


def check_ref(ref: str) -> str:
    """Refuse a numeric reference no database id can equal (400 naming `ref`, not a 500 from
    an integer overflow in the query)."""
    bare = ref.strip()
    if bare.isdigit() and not (bare.isascii() and len(bare) <= 19 and 1 <= int(bare) <= MAX_ID):
        raise BadRequestError(f"artifact id must be between 1 and {MAX_ID}", field="ref")
    return ref


register_key_view("lineage", plain_lineage_view)


class ArtifactController(Controller):
    """List, search and show artifacts and their lineage."""

    path = "/v1/artifacts"
    tags = ["artifacts"]

    @get("/", sync_to_thread=True, summary="List and search artifacts")
    def list(
        self,
        db_session: Session,
        caller: Caller,
        q: str | None = Parameter(default=None, description="Name substring or digest prefix"),
        kind: ArtifactKind | None = None,
        limit: int = Parameter(default=50, ge=1, le=MAX_LIMIT),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
    ) -> ArtifactsPublic:
        rows, total = service.search(db_session, q=q, kind=kind, limit=limit, offset=offset)
        return ArtifactsPublic(
            data=service.publics(db_session, rows), count=total, limit=limit, offset=offset
        )

    @get(
        "/{ref:path}",
        sync_to_thread=True,
        summary="Show an artifact, or one of its views",
        description="`<ref>` is an id, `sha256:<digest>`, a unique digest prefix of 12 or more "
        "hex characters, or `name@version`. Views: "
        "`<ref>/lineage?direction=up|down&depth=N` (nodes and edges), `<ref>/risk` (flags and "
        "at-risk marks with explanations).",
    )
    def show(
        self,
        ref: str,
        request: Request[Any, Any, Any],
        db_session: Session,
        caller: Caller,
        direction: Annotated[
            Direction | None,
            Parameter(description="`lineage` view: `up` (ancestors, default) or `down`."),
        ] = None,
        depth: Annotated[
            int | None,
            Parameter(
                ge=1,
                le=service.MAX_DEPTH,
                description="`lineage` view: hops to follow (default 10).",
            ),
        ] = None,
    ) -> Any:
        # `direction` and `depth` are declared for validation and the OpenAPI document; the
        # views read them from the query string, as views registered by other domains do.
        ref = ref.strip("/")
        head, _, view_name = ref.rpartition("/")
        if head and view_name in KEY_VIEWS and "@" not in view_name:
            read_only(db_session)
            key = service.resolve_key(db_session, check_ref(head))
            return as_json(KEY_VIEWS[view_name](db_session, key, dict(request.query_params)))
        if head and view_name in VIEWS and "@" not in view_name:
            artifact = service.resolve(db_session, check_ref(head))
            return as_json(VIEWS[view_name](db_session, artifact, dict(request.query_params)))
        if "/" in ref and "@" not in ref:
            raise NotFoundError(f"no artifact view {view_name!r}", field="ref")
        return service.public(db_session, service.resolve(db_session, check_ref(ref)))
