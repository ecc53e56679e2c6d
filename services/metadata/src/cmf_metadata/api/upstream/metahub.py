"""Metahub (server registry, sync, schedules) is a later issue: until then every one of its
routes answers 501 with a message that says so, in each generation's shape.

``router`` holds upstream's v1 routes (docs/upstream-v1.md §8), enveloped; ``reference_router``
the 0.1.0 routes (docs/wire-contract.md §1.6), in the reference's ``{"detail": ...}``, for the
app to mount at ``/x`` and ``/api/x`` beside the other CMF routes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cmf_common import envelope
from cmf_common.dialects import ReferenceRoute
from cmf_common.envelope import EnvelopeRoute
from cmf_common.errors import reference_error

NOT_AVAILABLE = "Metahub is not available on this server yet"
NOT_IMPLEMENTED = 501

router = APIRouter(tags=["upstream v1: metahub (not yet)"], route_class=EnvelopeRoute)
reference_router = APIRouter(tags=["metahub (not yet)"], route_class=ReferenceRoute)

V1_ROUTES = (
    ("POST", "/acknowledge"),
    ("POST", "/servers/register"),
    ("POST", "/servers/sync"),
    ("GET", "/servers"),
    ("GET", "/servers/{server_id}/completed-logs"),
    ("POST", "/schedules"),
    ("GET", "/schedules"),
    ("GET", "/schedules/{schedule_id}/logs"),
    ("DELETE", "/schedules/{schedule_id}"),
)
REFERENCE_ROUTES = (
    ("POST", "/register-server"),
    ("POST", "/acknowledge"),
    ("POST", "/sync"),
    ("GET", "/server-list"),
    ("POST", "/schedule-sync"),
    ("GET", "/schedules"),
    ("GET", "/schedule-sync/logs/{schedule_id}"),
    ("DELETE", "/schedule-sync/{schedule_id}"),
    ("GET", "/server/{server_id}/completed-logs"),
)


async def not_available_v1() -> JSONResponse:
    return envelope.error(NOT_AVAILABLE, NOT_IMPLEMENTED)


async def not_available() -> JSONResponse:
    return reference_error(NOT_IMPLEMENTED, NOT_AVAILABLE)


def _add(
    router: APIRouter,
    routes: tuple[tuple[str, str], ...],
    endpoint: Callable[[], Awaitable[JSONResponse]],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    for method, path in routes:
        # The endpoint takes no parameter: the path's are declared for /openapi.json only.
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", path)
        ]
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            status_code=NOT_IMPLEMENTED,
            responses=responses,
            name=f"{endpoint.__name__}:{method}:{path}",
            openapi_extra={"parameters": parameters} if parameters else None,
        )


_add(
    router,
    V1_ROUTES,
    not_available_v1,
    {NOT_IMPLEMENTED: {"model": envelope.Envelope, "description": NOT_AVAILABLE}},
)
_add(
    reference_router,
    REFERENCE_ROUTES,
    not_available,
    {NOT_IMPLEMENTED: {"description": NOT_AVAILABLE}},
)
