"""The artifact service's typed state and every ``Annotated`` dependency its routes take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from cmf_artifacts.blobs import Blobs
from cmf_artifacts.catalog import MetadataCatalog, MetadataUnavailable
from cmf_artifacts.files import NamedFiles
from cmf_artifacts.storage import blob_not_stored
from cmf_common.access import current_prefix
from cmf_common.service import state_of


@dataclass(frozen=True)
class ArtifactState:
    """What the artifact routes use while the app runs. ``catalog`` is ``None`` when no
    metadata service is configured (the seed's routes then answer 503)."""

    blobs: Blobs
    catalog: MetadataCatalog | None
    files: NamedFiles


def get_state(request: Request) -> ArtifactState:
    return state_of(request.app, ArtifactState)


State = Annotated[ArtifactState, Depends(get_state)]


def get_blobs(state: State) -> Blobs:
    return state.blobs


def get_catalog(state: State) -> MetadataCatalog:
    if state.catalog is None:
        raise MetadataUnavailable("no metadata service is configured: set METADATA_URL")
    return state.catalog


def get_files(state: State) -> NamedFiles:
    return state.files


async def visible_digest(state: State, request: Request) -> str:
    """``digest``, when the request may read it: a principal restricted to a pipeline prefix
    reads only the blobs of artifacts of pipelines inside it (asked of the metadata service);
    an unrestricted one asks nothing. Else 404, as for a blob not stored."""
    digest = str(request.path_params["digest"])
    if current_prefix() is not None:
        catalog = get_catalog(state)
        if not await catalog.holds(digest):
            raise blob_not_stored(digest)
    return digest


BlobsDep = Annotated[Blobs, Depends(get_blobs)]
FilesDep = Annotated[NamedFiles, Depends(get_files)]
VisibleDigest = Annotated[str, Depends(visible_digest)]
Catalog = Annotated[MetadataCatalog, Depends(get_catalog)]
