"""Upstream CMF's v1 API generation (cmf-v1-contract.md), on the metadata service.

Thin routers over the domain functions the 0.1.0 routes use, answering in upstream's envelope.
Registered without a prefix, so one call mounts them wherever upstream's clients look: ``/v1``
(upstream's server path) and, once our own API has moved out of it, ``/api/v1`` (its public one).
The lineage routes of the v1 tables are the lineage service's, not mounted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from cmf_metadata.api.upstream import artifacts, files, metadata, metahub, pipelines
from cmf_metadata.api.upstream.errors import install_envelope_errors

ROUTERS: tuple[APIRouter, ...] = (
    pipelines.router,
    artifacts.router,
    metadata.router,
    metahub.router,
    files.router,
)
reference_metahub_router = metahub.reference_router


def include_upstream_v1(app: FastAPI, prefixes: Sequence[str] = ("/v1",)) -> None:
    """Mount every v1 router at each of ``prefixes`` and answer errors under them in the
    envelope (unknown paths and methods included)."""
    for prefix in prefixes:
        for router in ROUTERS:
            app.include_router(router, prefix=prefix)
    install_envelope_errors(app, prefixes)
