"""Upstream CMF's v1 API generation (docs/upstream-v1.md), on the metadata service.

Thin routers over the domain functions the 0.1.0 routes use, answering in upstream's envelope.
Registered without a prefix, so one call mounts them wherever upstream's clients look: ``/v1``
(upstream's server path) and ``/api/v1`` (its public one; ``cmf_common.prefixes``).
The lineage routes of the v1 tables are the lineage service's, not mounted here.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from cmf_common.prefixes import UPSTREAM_V1, include_first
from cmf_metadata.api.upstream import artifacts, cmfquery, files, metadata, metahub, pipelines

ROUTERS: tuple[APIRouter, ...] = (
    pipelines.router,
    artifacts.router,
    cmfquery.router,  # after artifacts.router: /artifacts/types before /artifacts/{pipeline}
    metadata.router,
    metahub.router,
    files.router,
)


def include_upstream_v1(app: FastAPI, prefixes: Sequence[str] = UPSTREAM_V1) -> None:
    """Mount every v1 router at each of ``prefixes``, first in the app's routes
    (:func:`cmf_common.prefixes.include_first`)."""
    include_first(app, ROUTERS, prefixes)
