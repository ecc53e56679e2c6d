"""Which artifacts have their bytes stored: asked of the artifact service, which keeps them
(``POST /api/native/v1/blobs/stored``, in-process when embedded, ``ARTIFACTS_URL`` when
distributed); never its tables. Without an artifact service nothing is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from cmf_common.errors import DomainError

_DIGEST = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


class ArtifactsUnavailable(DomainError):
    status = 503
    code = "artifacts_unavailable"
    title = "Artifact service unavailable"


class StoredBlobs(Protocol):
    async def among(self, digests: Sequence[str]) -> set[str]: ...


class NothingStored:
    """No artifact service: no artifact has its bytes here."""

    async def among(self, digests: Sequence[str]) -> set[str]:
        return set()


class ArtifactService:
    def __init__(self, client: httpx.AsyncClient, auth: httpx.Auth | None = None) -> None:
        self.client = client
        self.auth = auth or httpx.USE_CLIENT_DEFAULT

    async def among(self, digests: Sequence[str]) -> set[str]:
        asked = sorted({d for d in digests if _DIGEST.match(d)})
        if not asked:
            return set()
        try:
            answer = await self.client.post(
                "/api/native/v1/blobs/stored", json={"digests": asked}, auth=self.auth
            )
            answer.raise_for_status()
            return set(answer.json()["stored"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ArtifactsUnavailable(f"the artifact service did not answer: {exc}") from exc


async def with_stored(items: list[dict[str, Any]], stored: StoredBlobs) -> list[dict[str, Any]]:
    """``items`` (artifacts with a ``uri``), each with ``stored: true|false``."""
    found = await stored.among([item["uri"] for item in items])
    for item in items:
        item["stored"] = item["uri"] in found
    return items
