"""Our own routes, under ``/api/native/v1`` (problem+json): blobs by digest and resumable
uploads (docs/artifacts.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

from cmf_artifacts.api.deps import BlobsDep, VisibleDigest
from cmf_artifacts.api.responses import (
    blob_headers,
    blob_response,
    body_of,
    media_type,
    put_body,
    stored_answer,
    stores_body,
)
from cmf_artifacts.blobs import MAX_PART_NUMBER, Blob, Put, Session
from cmf_artifacts.digests import DIGEST_PATTERN, check_digest
from cmf_artifacts.schemas import (
    BINARY_ANSWER,
    BINARY_BODY,
    BlobAnswer,
    CompleteRequest,
    PartAnswer,
    PresignedUrl,
    SessionAnswer,
    StoredAnswer,
    StoredRequest,
    UploadBegun,
    UploadRequest,
)
from cmf_artifacts.storage import PartInfo, blob_not_stored
from cmf_common.dialects import ProblemRoute, errors

# Every route reads the catalogue (PostgreSQL) or the store, either of which may be down: 503.
router = APIRouter(tags=["artifacts"], route_class=ProblemRoute, responses=errors(503))

# What the blobs take (check_digest, put_part), said in /openapi.json; the checks stay theirs.
Digest = Annotated[str, Path(json_schema_extra={"pattern": DIGEST_PATTERN})]
PartNumber = Annotated[int, Path(json_schema_extra={"minimum": 1, "maximum": MAX_PART_NUMBER})]


def blob_answer(blob: Blob, deduplicated: bool = False) -> BlobAnswer:
    return BlobAnswer(
        digest=blob.digest, size=blob.size, sha256=blob.sha256, deduplicated=deduplicated
    )


def put_answer(put: Put) -> JSONResponse:
    return stored_answer(blob_answer(put.blob, put.deduplicated), not put.deduplicated)


def part_answer(part: PartInfo) -> PartAnswer:
    return PartAnswer(number=part.number, size=part.size, etag=part.etag)


def session_answer(session: Session, parts: list[PartInfo]) -> SessionAnswer:
    return SessionAnswer(
        id=str(session.id),
        digest=session.digest,
        created_at=session.created_at.isoformat(),
        touched_at=session.touched_at.isoformat(),
        parts=[part_answer(p) for p in parts],
    )


@router.head(
    "/blobs/{digest}",
    responses={200: {"description": "stored: its size, ETag"}, 404: {"description": "not stored"}},
)
async def head_blob(blobs: BlobsDep, digest: Digest, _: VisibleDigest) -> Response:
    """Whether the blob is stored (``Content-Length``, ``ETag``): a client asks before it
    sends bytes that are there already."""
    blob = await blobs.find(digest)
    if blob is None:
        raise blob_not_stored(digest)
    return Response(status_code=200, headers=blob_headers(blob), media_type=media_type(blob))


@router.get(
    "/blobs/{digest}",
    response_class=Response,
    responses={
        200: {"description": "the bytes", **BINARY_ANSWER},
        206: {"description": "the range asked", **BINARY_ANSWER},
        304: {"description": "not modified (If-None-Match)"},
        **errors(404, 416, 422),
    },
)
async def get_blob(blobs: BlobsDep, digest: Digest, request: Request, _: VisibleDigest) -> Response:
    """The blob's bytes, streamed; ``Range: bytes=a-b`` answers 206."""
    return await blob_response(blobs, digest, request)


@router.put("/blobs/{digest}", **stores_body(BlobAnswer, "stored already", 409, 413, 422))
async def put_blob(blobs: BlobsDep, digest: Digest, request: Request) -> JSONResponse:
    """Store the body under ``digest`` (its md5, checked while it streams: 409 and nothing
    stored when it differs). When the blob is stored already the answer (200) comes before
    the body is read: with ``Expect: 100-continue`` the client sends nothing."""
    return put_answer(await put_body(blobs, digest, request))


@router.get("/blobs/{digest}/url", response_model=PresignedUrl, responses=errors(404, 422))
async def blob_url(blobs: BlobsDep, digest: Digest, _: VisibleDigest) -> PresignedUrl:
    """A presigned URL that reads the blob straight from S3 (422 on a local store)."""
    url = await blobs.download_url(digest)
    return PresignedUrl(url=url, expires_in=blobs.settings.presign_expiry_s)


@router.post("/blobs/stored", response_model=StoredAnswer, responses=errors(422))
async def stored_blobs(blobs: BlobsDep, body: StoredRequest) -> StoredAnswer:
    """Which of ``digests`` are stored (the metadata service's ``stored`` flags)."""
    for digest in body.digests:
        check_digest(digest)
    return StoredAnswer(stored=await blobs.stored_among(body.digests))


@router.post(
    "/uploads",
    response_model=UploadBegun,
    status_code=201,
    responses={200: {"model": UploadBegun, "description": "stored already"}, **errors(422)},
)
async def begin_upload(blobs: BlobsDep, body: UploadRequest) -> JSONResponse:
    """Begin a resumable upload of ``digest`` (201), or learn it is stored already (200)."""
    begun = await blobs.begin(body.digest)
    if isinstance(begun, Blob):
        answer = UploadBegun(stored=True, blob=blob_answer(begun, True))
        return JSONResponse(answer.model_dump(), status_code=200)
    answer = UploadBegun(stored=False, session=session_answer(begun, []))
    return JSONResponse(answer.model_dump(), status_code=201)


@router.get("/uploads/{session}", response_model=SessionAnswer, responses=errors(404, 422))
async def get_upload(blobs: BlobsDep, session: uuid.UUID) -> SessionAnswer:
    """The session and the parts it holds (what to resume from)."""
    found, parts = await blobs.parts(session)
    return session_answer(found, parts)


@router.put(
    "/uploads/{session}/parts/{number}",
    response_model=PartAnswer,
    responses=errors(404, 413, 422),
    openapi_extra=BINARY_BODY,
)
async def put_part(
    blobs: BlobsDep, session: uuid.UUID, number: PartNumber, request: Request
) -> PartAnswer:
    """Store part ``number`` (1..10000) of the session; a part sent again replaces it."""
    return part_answer(await blobs.put_part(session, number, body_of(request)))


@router.get(
    "/uploads/{session}/parts/{number}/url",
    response_model=PresignedUrl,
    responses=errors(404, 422),
)
async def part_url(blobs: BlobsDep, session: uuid.UUID, number: PartNumber) -> PresignedUrl:
    """A presigned URL the part can be PUT to straight on S3 (422 on a local store)."""
    url = await blobs.part_url(session, number)
    return PresignedUrl(url=url, expires_in=blobs.settings.presign_expiry_s)


@router.post(
    "/uploads/{session}/complete",
    response_model=BlobAnswer,
    status_code=201,
    responses={
        200: {"model": BlobAnswer, "description": "stored already"},
        **errors(404, 409, 422),
    },
)
async def complete_upload(
    blobs: BlobsDep, session: uuid.UUID, body: CompleteRequest
) -> JSONResponse:
    """Assemble the parts listed (ascending, each sent) and store them if their md5 is the
    session's digest (409 and the session gone when it is not)."""
    numbers = [p.number for p in body.parts]
    etags = [p.etag for p in body.parts]
    return put_answer(await blobs.complete(session, numbers, etags))


@router.delete("/uploads/{session}", status_code=204, responses=errors(404, 422))
async def abort_upload(blobs: BlobsDep, session: uuid.UUID) -> Response:
    """Abort the session: its parts are deleted."""
    await blobs.abort(session)
    return Response(status_code=204)
