"""The wire shapes of the artifact service's answers and bodies (its OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from cmf_artifacts.blobs import MAX_PART_NUMBER
from cmf_artifacts.digests import DIGEST_PATTERN


class ArtifactPushed(BaseModel):
    """The seed's ``POST /artifact_push`` answer."""

    pipeline_name: str
    artifact_name: str
    uri: str
    md5: str
    sha256: str | None
    size: int
    deduplicated: bool


class BlobAnswer(BaseModel):
    digest: str
    size: int
    sha256: str | None
    deduplicated: bool = False


class UploadRequest(BaseModel):
    digest: str = Field(
        description="the blob's md5 (md5.dir for a directory manifest)",
        json_schema_extra={"pattern": DIGEST_PATTERN},
    )


class PartAnswer(BaseModel):
    number: int
    size: int
    etag: str


class SessionAnswer(BaseModel):
    id: str
    digest: str
    created_at: str
    touched_at: str
    parts: list[PartAnswer]


class UploadBegun(BaseModel):
    """A new session (``stored`` false), or the blob when it is stored already."""

    stored: bool
    session: SessionAnswer | None = None
    blob: BlobAnswer | None = None


class CompletedPart(BaseModel):
    number: int = Field(ge=1, le=MAX_PART_NUMBER)
    etag: str | None = None


class CompleteRequest(BaseModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PART_NUMBER)


class PresignedUrl(BaseModel):
    url: str
    expires_in: int


class StoredRequest(BaseModel):
    digests: list[Annotated[str, Field(json_schema_extra={"pattern": DIGEST_PATTERN})]] = Field(
        max_length=10_000
    )


class StoredAnswer(BaseModel):
    stored: list[str]


class FileAnswer(BaseModel):
    """A named file (the metadata service's uploads); ``stored`` false when a ``PUT`` with
    ``replace=false`` kept the one there."""

    key: str
    size: int
    stored: bool = True


class FileList(BaseModel):
    files: list[FileAnswer]


BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
BINARY_ANSWER: dict[str, Any] = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}
