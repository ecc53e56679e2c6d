"""Named files under ``/api/native/v1/files`` (problem+json): the metadata service's uploads
kept in the artifact store, by key (``cmf_artifacts.files``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cmf_artifacts.api.deps import FilesDep
from cmf_artifacts.api.responses import body_of, opened, stored_answer, stores_body
from cmf_artifacts.schemas import BINARY_ANSWER, FileAnswer, FileList
from cmf_artifacts.storage import file_not_stored
from cmf_common.dialects import ProblemRoute, errors

# Every route reads the catalogue (PostgreSQL) or the store, either of which may be down: 503.
router = APIRouter(tags=["artifacts"], route_class=ProblemRoute, responses=errors(503))


@router.get("/files", response_model=FileList, responses=errors(422))
async def list_files(
    files: FilesDep,
    prefix: Annotated[str, Query(description="a folder: env/, labels/, tensorboard-logs/<p>/")],
) -> FileList:
    """The files whose keys start with ``prefix``, by key."""
    found = await files.list(prefix)
    return FileList(files=[FileAnswer(key=f.key, size=f.size) for f in found])


@router.head(
    "/files/{key:path}",
    responses={200: {"description": "stored: its size"}, 404: {"description": "not stored"}},
)
async def head_file(files: FilesDep, key: str) -> Response:
    found = await files.stat(key)
    if found is None:
        raise file_not_stored(key)
    return Response(status_code=200, headers={"Content-Length": str(found.size)})


@router.get(
    "/files/{key:path}",
    response_class=Response,
    responses={200: {"description": "the bytes", **BINARY_ANSWER}, **errors(404, 422)},
)
async def get_file(files: FilesDep, key: str) -> Response:
    """The file's bytes, streamed."""
    found = await files.stat(key)
    if found is None:
        raise file_not_stored(key)
    return StreamingResponse(
        await opened(files.read(key)),
        headers={"Content-Length": str(found.size)},
        media_type="application/octet-stream",
    )


@router.put(
    "/files/{key:path}", **stores_body(FileAnswer, "kept: one was there (replace=false)", 413, 422)
)
async def put_file(
    files: FilesDep,
    key: str,
    request: Request,
    replace: Annotated[bool, Query(description="false: keep a file already there")] = True,
) -> JSONResponse:
    """Store the body under ``key`` (201), all or nothing; with ``replace=false`` a file there
    already is kept (200, the body unread)."""
    stored, written = await files.put(key, body_of(request), replace=replace)
    return stored_answer(FileAnswer(key=stored.key, size=stored.size, stored=written), written)
