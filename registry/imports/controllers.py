"""HTTP routes for ecosystem imports."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlmodel import Session

from ..auth import Caller
from ..boundary import MAX_ID
from ..models import Artifact
from . import service
from .schemas import OmsImport, OmsImported, SignaturePublic, SignaturesPublic


def signatures_view(session: Session, artifact: Artifact, params: dict[str, str]) -> Any:
    """`GET /v1/artifacts/<ref>/signatures`: the model-signing bundles kept for the artifact."""
    rows = service.signatures_of(session, artifact)
    return SignaturesPublic(data=rows, count=len(rows))


class ImportController(Controller):
    """Bring in what organisations already have: OpenSSF model-signing bundles."""

    path = "/v1/imports"
    tags = ["imports"]

    @post(
        "/oms",
        sync_to_thread=True,
        summary="Import an OpenSSF model-signing bundle",
        description="Verifies the bundle against one of the caller's registered keys (ECDSA "
        "P-256/P-384, Ed25519), checks that its subject digest is the digest of the files it "
        "lists, and keeps it as evidence for the artifact with that digest, registering it "
        "first when `registration` is given. 201 when new, 200 when already kept.",
    )
    def oms(
        self, data: OmsImport, request: Request[Any, Any, Any], db_session: Session, caller: Caller
    ) -> Response[OmsImported]:
        trust_root = getattr(request.app.state.settings, "sigstore_trust_root", None)
        answer = service.import_oms(
            db_session, caller, data.bundle, data.registration, trust_root=trust_root
        )
        return Response(answer, status_code=HTTP_201_CREATED if answer.created else HTTP_200_OK)

    @get("/oms/{signature_id:int}", sync_to_thread=True, summary="A kept model-signing bundle")
    def get_oms(
        self,
        db_session: Session,
        caller: Caller,
        signature_id: int = Parameter(ge=1, le=MAX_ID, description="Kept signature id."),
    ) -> SignaturePublic:
        if not 1 <= signature_id <= MAX_ID:
            from ..errors import NotFoundError

            raise NotFoundError(f"no model signature {signature_id}", field="signature_id")
        return service.get_signature(db_session, signature_id)
