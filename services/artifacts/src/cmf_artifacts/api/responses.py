"""How a blob is answered: streamed, with its length, ETag (its md5) and ranges; and how a
streamed body is taken and stored (the blobs', the seed's artifacts', the named files')."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from cmf_artifacts.blobs import Blob, Blobs, Put, no_bytes
from cmf_artifacts.digests import content_md5, is_manifest
from cmf_artifacts.ranges import RangeNotSatisfiable
from cmf_artifacts.schemas import BINARY_BODY
from cmf_common.dialects import errors
from cmf_common.errors import problem


def blob_headers(blob: Blob) -> dict[str, str]:
    return {
        "ETag": f'"{content_md5(blob.digest)}"',
        "Accept-Ranges": "bytes",
        "Content-Length": str(blob.size),
    }


def media_type(blob: Blob) -> str:
    return "application/json" if is_manifest(blob.digest) else "application/octet-stream"


async def blob_response(
    blobs: Blobs, digest: str, request: Request, filename: str | None = None
) -> Response:
    """200 with the bytes, or 206 with the range asked; 416 (with ``Content-Range: bytes */n``)
    for a range past the end. ``If-None-Match`` with the ETag is a 304."""
    try:
        download = await blobs.download(digest, request.headers.get("range"))
    except RangeNotSatisfiable as exc:
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            exc.code,
            headers={"Content-Range": f"bytes */{exc.extra.get('size', 0)}"},
        )
    blob = download.blob
    headers = blob_headers(blob)
    if filename:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    if request.headers.get("if-none-match") == headers["ETag"] and download.range is None:
        await _close(download.chunks)
        return Response(status_code=304, headers={"ETag": headers["ETag"]})
    chunks = await opened(download.chunks)
    status = 200
    if download.range is not None:
        wanted = download.range
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{blob.size}"
        headers["Content-Length"] = str(wanted.length)
        status = 206
    return StreamingResponse(
        chunks, status_code=status, headers=headers, media_type=media_type(blob)
    )


async def opened(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` with its first read done before the answer's head is sent: a store that
    fails (down, or the bytes gone behind the catalogue's back) is then answered in the
    route's dialect (503, 404) instead of cutting off a 200 already under way."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        return no_bytes()
    return _after(first, chunks)


async def _after(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await _close(rest)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def body_of(request: Request) -> AsyncIterator[bytes]:
    """The request's body as it arrives (never whole in memory)."""
    async for chunk in request.stream():
        if chunk:
            yield chunk


def size_hint(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def expects_continue(request: Request) -> bool:
    """The client sends the body only after a ``100 Continue`` (a stored blob answers first)."""
    return request.headers.get("expect", "").lower() == "100-continue"


async def put_body(blobs: Blobs, digest: str, request: Request) -> Put:
    """Store the request's body under ``digest`` as it streams, told its declared length and
    whether the client waits for a ``100 Continue`` (then a stored blob is answered unread)."""
    return await blobs.put(
        digest,
        body_of(request),
        size_hint=size_hint(request),
        expect_continue=expects_continue(request),
    )


def stores_body(model: type[BaseModel], kept: str, *statuses: int) -> dict[str, Any]:
    """The OpenAPI of a route that stores its streamed body, as its decorator's keywords:
    ``model`` answered 201 when stored, 200 when one was there already (``kept`` says how),
    the error ``statuses``, and the binary body."""
    return {
        "response_model": model,
        "status_code": 201,
        "responses": {200: {"model": model, "description": kept}, **errors(*statuses)},
        "openapi_extra": BINARY_BODY,
    }


def stored_answer(answer: BaseModel, written: bool) -> JSONResponse:
    """``answer`` with 201 when the body was ``written``, 200 when one was there already."""
    return JSONResponse(answer.model_dump(), status_code=201 if written else 200)
