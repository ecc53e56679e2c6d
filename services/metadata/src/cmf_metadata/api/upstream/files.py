"""Upstream's v1 file routes (docs/upstream-v1.md §7): python env, labels, tensorboard, over the
same file domain as the 0.1.0 routes. A file read answers its text in the envelope's ``data``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

from cmf_common import envelope
from cmf_common.dialects import errors
from cmf_common.envelope import EnvelopeRoute
from cmf_common.parameters import OWN_CHECKS
from cmf_metadata import files
from cmf_metadata.api.deps import Store, UploadLimit
from cmf_metadata.api.files import (
    NAME_LIMIT,
    PLAIN_NAME,
    UPLOAD_BODY,
    FileName,
    FileNames,
    PipelineName,
    zip_response,
)
from cmf_metadata.api.files import read_upload as _read_upload

router = APIRouter(
    tags=["upstream v1: files"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)

UPLOAD_FAILED = "Failed to upload file: "
UPLOAD_ERRORS = errors(400, 413, 500)  # 500: upstream's "Failed to upload file" (the store)
FILE_ERRORS = errors(400, 404)


async def _text(chunks: files.Chunks) -> str:
    return b"".join([chunk async for chunk in chunks]).decode("utf-8", errors="replace")


async def python_env_text(store: files.FileStore, file_name: str) -> str:
    """A python env file's text, named as ``GET /python-env`` names it (its base name is read)."""
    return await _text(await files.open_python_env(store, file_name))


def _uploaded(result: dict[str, str], message: str, code: int) -> JSONResponse:
    if "error" in result:  # the store failed: upstream's 500 "Failed to upload file: ..."
        reason = result["error"].removeprefix("Failed to up load file: ")
        return envelope.error(UPLOAD_FAILED + reason, 500)
    return envelope.success(result, message, code)


@router.post("/python-env", openapi_extra=UPLOAD_BODY, responses=UPLOAD_ERRORS)
async def upload_python_env(request: Request, store: Store, limit: UploadLimit) -> JSONResponse:
    upload = await _read_upload(request)
    result = await files.save_python_env(store, upload.filename, upload.chunks, max_bytes=limit)
    return _uploaded(result, "Python environment uploaded successfully", 201)


@router.get("/python-env", responses=FILE_ERRORS)
async def python_env(file_name: FileName, store: Store) -> JSONResponse:
    return envelope.success(
        await python_env_text(store, file_name), "Python environment retrieved successfully"
    )


@router.get(
    "/python-env/download",
    responses={
        200: {
            "description": "A zip of the python env files",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **FILE_ERRORS,
    },
)
async def download_python_env(
    store: Store,
    list_of_files: FileNames = None,
) -> Response:
    """The zip, raw; what cannot be zipped is an enveloped 404, as upstream answers it."""
    try:
        archive = await files.python_env_archive(store, list_of_files)
    except files.ArchiveUnavailable as unavailable:
        return envelope.error(str(unavailable), 404)
    return zip_response(archive)


@router.get("/python-env/{file_name}", responses=FILE_ERRORS)
async def python_env_by_path(
    file_name: Annotated[
        str, Path(min_length=1, max_length=NAME_LIMIT, json_schema_extra=PLAIN_NAME), OWN_CHECKS
    ],
    store: Store,
) -> JSONResponse:
    """[CONFLICT] resolved: upstream's docs and UI client name the file in the path, its env.py
    in the query; both are served."""
    return await python_env(file_name, store)


@router.post("/label", openapi_extra=UPLOAD_BODY, responses=UPLOAD_ERRORS)
async def upload_label(request: Request, store: Store, limit: UploadLimit) -> JSONResponse:
    upload = await _read_upload(request)
    result = await files.save_label(store, upload.filename, upload.chunks, max_bytes=limit)
    return _uploaded(result, "Label uploaded successfully", 201)


@router.get("/label-data", responses=FILE_ERRORS)
async def label_data(file_name: FileName, store: Store) -> JSONResponse:
    text = await _text(await files.open_label(store, file_name))
    return envelope.success(text, "Label data retrieved successfully")


@router.post("/tensorboard", openapi_extra=UPLOAD_BODY, responses=UPLOAD_ERRORS)
async def upload_tensorboard(
    request: Request, pipeline_name: PipelineName, store: Store, limit: UploadLimit
) -> JSONResponse:
    upload = await _read_upload(request)
    result = await files.save_tensorboard_log(
        store, pipeline_name, upload.filename, upload.chunks, max_bytes=limit
    )
    return _uploaded(result, "TensorBoard file uploaded successfully", 200)
