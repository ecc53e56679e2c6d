"""The seed's artifact routes, at ``/x`` and ``/api/x`` (problem+json): an artifact's bytes by
its pipeline and its full recorded name, checked against the artifact's ``uri``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from cmf_artifacts.api.deps import BlobsDep, Catalog
from cmf_artifacts.api.responses import blob_response, put_body, stored_answer, stores_body
from cmf_artifacts.catalog import WITHOUT_BYTES, Artifact
from cmf_artifacts.digests import check_digest
from cmf_artifacts.schemas import BINARY_ANSWER, ArtifactPushed
from cmf_common.access import check_push
from cmf_common.dialects import ProblemRoute, errors
from cmf_common.errors import Invalid

# Every route reads the catalogue (PostgreSQL) or the store, either of which may be down: 503.
router = APIRouter(tags=["artifacts"], route_class=ProblemRoute, responses=errors(503))

Name = Annotated[str, Query(min_length=1, max_length=4096)]


def with_bytes(artifact: Artifact) -> str:
    """The artifact's content address; 422 for an artifact that has no bytes."""
    if artifact.type in WITHOUT_BYTES:
        raise Invalid(
            f"{artifact.name} is a {artifact.type} artifact: its values are its properties,"
            " it has no bytes",
            code="artifact_without_bytes",
        )
    try:
        return check_digest(artifact.uri)
    except Invalid:
        raise Invalid(
            f"{artifact.name}'s uri {artifact.uri} is no content hash: it has no bytes",
            code="artifact_without_bytes",
        ) from None


@router.post(
    "/artifact_push", **stores_body(ArtifactPushed, "stored already", 404, 409, 413, 422, 503)
)
async def artifact_push(
    blobs: BlobsDep,
    catalog: Catalog,
    request: Request,
    pipeline_name: Name,
    artifact_name: Name,
) -> JSONResponse:
    """Store an artifact's bytes (the body, streamed). The body's md5 must be the artifact's
    ``uri`` (409 and nothing stored otherwise). A directory artifact (``uri`` ``<md5>.dir``)
    is pushed as its manifest; its files go to ``PUT /api/native/v1/blobs/{md5}``. A pipeline
    outside the request's pipeline prefix is refused (403)."""
    check_push(pipeline_name)
    artifact = await catalog.find(pipeline_name, artifact_name)
    digest = with_bytes(artifact)
    put = await put_body(blobs, digest, request)
    answer = ArtifactPushed(
        pipeline_name=pipeline_name,
        artifact_name=artifact_name,
        uri=artifact.uri,
        md5=digest.removesuffix(".dir"),
        sha256=put.blob.sha256,
        size=put.blob.size,
        deduplicated=put.deduplicated,
    )
    return stored_answer(answer, not put.deduplicated)


@router.get(
    "/artifact_pull",
    response_class=Response,
    responses={
        200: {"description": "the bytes", **BINARY_ANSWER},
        206: {"description": "the range asked", **BINARY_ANSWER},
        **errors(404, 416, 422, 503),
    },
)
async def artifact_pull(
    blobs: BlobsDep,
    catalog: Catalog,
    request: Request,
    pipeline_name: Name,
    artifact_name: Name,
) -> Response:
    """An artifact's bytes (``ETag`` = its md5, ``Range`` honoured); 404 when unknown or not
    stored. A directory artifact answers its manifest (``[{"md5", "relpath"}]``): each file
    is ``GET /api/native/v1/blobs/{md5}``."""
    artifact = await catalog.find(pipeline_name, artifact_name)
    digest = with_bytes(artifact)
    path = artifact_name.split(":", 1)[0]
    filename = path.rstrip("/").rsplit("/", 1)[-1] or digest
    return await blob_response(blobs, digest, request, filename)
