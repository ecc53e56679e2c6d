"""Which artifact a pipeline's recorded name is: asked of the metadata service's API
(``GET /api/native/v1/artifacts``), in-process when embedded and over HTTP when distributed,
never its tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from cmf_common.errors import Invalid, NotFound, Unavailable

# Artifact types that have no bytes: a Metrics artifact is its properties (its uri a uuid).
WITHOUT_BYTES = frozenset({"Metrics"})


class MetadataUnavailable(Unavailable):
    """The metadata service does not answer, or answers that it cannot for now: 503 with
    ``Retry-After``."""

    code = "metadata_unavailable"
    title = "Metadata service unavailable"


@dataclass(frozen=True)
class Artifact:
    id: int
    uri: str
    name: str
    type: str


def check_name(name: str, what: str) -> str:
    if not name or "\x00" in name:
        raise Invalid(f"{what} must be a non-empty name", code="invalid_name")
    if len(name) > 4096:
        raise Invalid(f"{what} is longer than 4096 characters", code="invalid_name")
    path = name.split(":", 1)[0]
    if what == "artifact_name" and (
        path.startswith("/") or ".." in path.replace("\\", "/").split("/")
    ):
        raise Invalid(
            "artifact_name is the recorded name (path:md5), a relative path without '..'",
            code="invalid_name",
        )
    return name


def _name_md5(name: str) -> str | None:
    """The md5 in a recorded name (``path:md5``, ``path:md5:exec_id``…)."""
    parts = name.split(":")
    for part in parts[1:]:
        candidate = part.lower()
        if len(candidate) in (32, 36) and all(c in "0123456789abcdef." for c in candidate):
            return candidate
    return None


class MetadataCatalog:
    """Artifacts as the metadata service answers them, through ``client`` (its base URL is the
    metadata service, or an in-process transport to its app)."""

    def __init__(self, client: httpx.AsyncClient, auth: httpx.Auth | None = None) -> None:
        self.client = client
        self.auth = auth or httpx.USE_CLIENT_DEFAULT

    async def _first(self, params: dict[str, str]) -> dict[str, Any] | None:
        try:
            answer = await self.client.get(
                "/api/native/v1/artifacts", params={**params, "limit": "1"}, auth=self.auth
            )
        except httpx.HTTPError as exc:
            raise MetadataUnavailable(f"the metadata service did not answer: {exc}") from exc
        if answer.status_code == 404:
            body = answer.json() if answer.content else {}
            raise NotFound(
                str(body.get("detail") or f"pipeline {params.get('pipeline')} not found"),
                code=str(body.get("code") or "pipeline_not_found"),
            )
        if answer.status_code != 200:
            raise MetadataUnavailable(f"the metadata service answered {answer.status_code}")
        items = answer.json().get("items") or []
        return items[0] if items else None

    async def holds(self, uri: str) -> bool:
        """Whether an artifact with this ``uri`` is linked in a pipeline the request may see:
        the metadata service answers for the caller's principal (``SignedPrincipal`` forwards
        it), so outside its pipeline prefix there is none."""
        return await self._first({"uri": uri}) is not None

    async def find(self, pipeline: str, name: str) -> Artifact:
        """The artifact recorded as ``name`` in ``pipeline``: by its name, else (an artifact
        shared by pipelines keeps its first name) by the md5 the name carries."""
        check_name(pipeline, "pipeline_name")
        check_name(name, "artifact_name")
        found = await self._first({"pipeline": pipeline, "name": name})
        if found is None and (md5 := _name_md5(name)) is not None:
            found = await self._first({"pipeline": pipeline, "uri": md5})
        if found is None:
            raise NotFound(
                f"pipeline {pipeline} has no artifact named {name}", code="artifact_not_found"
            )
        return Artifact(int(found["id"]), str(found["uri"]), str(found["name"]), str(found["type"]))
