"""The file routes of the CMF client and UI (docs/wire-contract.md §1.3), at /x and /api/x.

Uploads are ``multipart/form-data`` with one field ``file``. The body is parsed as it arrives
(python-multipart's push parser) and the file's bytes go straight to the store: nothing is
spooled to memory or to a temporary folder elsewhere.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from cmf_common.dialects import ReferenceRoute, errors
from cmf_common.openapi import BINARY, answer, multipart_body
from cmf_common.parameters import OWN_CHECKS
from cmf_metadata import files
from cmf_metadata.api.deps import Store, UploadLimit

router = APIRouter(tags=["files"], route_class=ReferenceRoute)

FIELD = "file"
NAME_LIMIT = 4096
# Files one zip may name: a hundred long names already make a request line of tens of KB,
# about what the HTTP server reads of one (beyond, it refuses the request before any route).
MAX_FILES = 100
TEXT = "text/plain; charset=utf-8"


# What the file domain takes as one file name (cmf_metadata.files.plain_name), as far as JSON
# Schema can say it: not "." or "..", no separator, no NUL, at most 255 bytes (here: characters)
# of UTF-8. A name beyond that is its 400 invalid_file_name (a NUL too), never a 422.
PLAIN_NAME = {"maxLength": files.MAX_SEGMENT_BYTES, "pattern": r"^(?!\.\.?$)[^/\\\u0000]+$"}
FileName = Annotated[
    str, Query(min_length=1, max_length=NAME_LIMIT, json_schema_extra=PLAIN_NAME), OWN_CHECKS
]
PipelineName = FileName
FileNames = Annotated[
    list[str] | None,
    Query(max_length=MAX_FILES, json_schema_extra={"items": {"type": "string", **PLAIN_NAME}}),
]

TEXT_FILE = answer({"type": "string"}, TEXT, "The file's text")
# What an upload answers: 200 with its message, or (the store failed) with the reference's
# ``{"error": ...}``.
UPLOADED = answer(
    {
        "type": "object",
        "properties": {"message": {"type": "string"}, "error": {"type": "string"}},
        "minProperties": 1,
    }
)
UPLOAD_BODY = multipart_body(FIELD, "the file; its name is the part's file name")
UPLOAD_ERRORS = errors(400, 413)


def _refused(error_type: str, message: str) -> RequestValidationError:
    """The body is no multipart form with a ``file`` part: the app's 422 ``invalid_request``."""
    return RequestValidationError([{"type": error_type, "loc": ("body", FIELD), "msg": message}])


@router.post("/python-env", openapi_extra=UPLOAD_BODY, responses={**UPLOADED, **UPLOAD_ERRORS})
async def upload_python_env(request: Request, store: Store, limit: UploadLimit) -> Response:
    upload = await read_upload(request)
    return JSONResponse(
        await files.save_python_env(store, upload.filename, upload.chunks, max_bytes=limit)
    )


@router.get("/python-env", responses={**TEXT_FILE, **errors(400, 404)})
async def python_env(file_name: FileName, store: Store) -> Response:
    return StreamingResponse(await files.open_python_env(store, file_name), media_type=TEXT)


@router.post("/label", openapi_extra=UPLOAD_BODY, responses={**UPLOADED, **UPLOAD_ERRORS})
async def upload_label(request: Request, store: Store, limit: UploadLimit) -> Response:
    upload = await read_upload(request)
    return JSONResponse(
        await files.save_label(store, upload.filename, upload.chunks, max_bytes=limit)
    )


@router.get("/label-data", responses={**TEXT_FILE, **errors(400, 404)})
async def label_data(file_name: FileName, store: Store) -> Response:
    return StreamingResponse(await files.open_label(store, file_name), media_type=TEXT)


@router.post("/tensorboard", openapi_extra=UPLOAD_BODY, responses={**UPLOADED, **UPLOAD_ERRORS})
async def upload_tensorboard(
    request: Request, pipeline_name: PipelineName, store: Store, limit: UploadLimit
) -> Response:
    upload = await read_upload(request)
    return JSONResponse(
        await files.save_tensorboard_log(
            store, pipeline_name, upload.filename, upload.chunks, max_bytes=limit
        )
    )


TENSORBOARD_LOGS = {
    "type": "object",
    "required": ["pipeline_name", "files"],
    "properties": {
        "pipeline_name": {"type": "string"},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "size"],
                "properties": {"path": {"type": "string"}, "size": {"type": "integer"}},
            },
        },
    },
}
ZIP: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A zip of the python env files, or (none to zip) the reference's 200 "
        '`{"error": ...}`',
        "content": {
            "application/zip": {"schema": BINARY},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                }
            },
        },
    }
}


@router.get("/tensorboard-logs", responses={**answer(TENSORBOARD_LOGS), **errors(400)})
async def tensorboard_logs(pipeline_name: PipelineName, store: Store) -> dict[str, Any]:
    return await files.tensorboard_logs(store, pipeline_name)


@router.get("/download-python-env", responses={**ZIP, **errors(400)})
async def download_python_env(
    store: Store,
    list_of_files: FileNames = None,
) -> Response:
    try:
        archive = await files.python_env_archive(store, list_of_files)
    except files.ArchiveUnavailable as unavailable:
        return JSONResponse({"error": str(unavailable)})  # the reference answers errors with 200
    return zip_response(archive)


def zip_response(archive: files.Archive) -> StreamingResponse:
    """``archive`` streamed as an attachment, under its file name."""
    return StreamingResponse(
        archive.chunks,
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename={archive.filename}"},
    )


# ---- streaming multipart -----------------------------------------------------------------------


@dataclass
class Upload:
    filename: str
    chunks: AsyncIterator[bytes]


class _Events:
    """python-multipart's callbacks, turned into a queue of (kind, value) events."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, Any]] = deque()
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda d, s, e: self.queue.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.queue.append(("end", None)),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self.queue.append(("part", options))


async def read_upload(request: Request) -> Upload:
    """Read the body up to the ``file`` part's headers; its bytes then stream from ``chunks``.

    Raises ``RequestValidationError`` (a 422) when the body is no multipart form or has no
    ``file`` part with a file name.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise _refused("missing", "Field required: a multipart/form-data body is expected")
    events = _Events()
    try:
        parser = MultipartParser(boundary, events.callbacks())
    except (MultipartParseError, ValueError) as exc:
        raise _refused("value_error", f"malformed multipart body: {exc}") from exc
    body = request.stream().__aiter__()

    async def feed() -> bool:
        """Parse one more piece of the body; ``False`` once it has all been read."""
        chunk = await anext(body, None)
        try:
            if chunk is None:
                parser.finalize()
                return False
            parser.write(chunk)
        except MultipartParseError as exc:
            raise _refused("value_error", f"malformed multipart body: {exc}") from exc
        return True

    filename: str | None = None
    while filename is None:
        while events.queue and filename is None:
            kind, value = events.queue.popleft()
            if kind == "part" and value.get(b"name") == FIELD.encode():
                if not value.get(b"filename"):
                    raise _refused("missing", "the 'file' part has no file name")
                filename = _decoded(value[b"filename"])
        if filename is None and not events.queue and not await feed():
            raise _refused("missing", "Field required")

    async def chunks() -> AsyncIterator[bytes]:
        more = True
        while True:
            while events.queue:
                kind, value = events.queue.popleft()
                if kind == "end":
                    return
                if kind == "data" and value:
                    yield value
            if not more:
                raise _refused("value_error", "the body ended inside the 'file' part")
            more = await feed()

    return Upload(filename, chunks())


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refused("value_error", "the file name is not UTF-8") from exc
