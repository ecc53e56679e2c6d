"""Metahub (server registry, sync, schedules) is a later issue: until then every one of its
routes answers 501 with a message that says so, in each generation's shape.

``router`` holds upstream's v1 routes (cmf-v1-contract.md §8), enveloped; ``reference_router``
the 0.1.0 routes (cmf-wire-contract.md §1.6), in the reference's ``{"detail": ...}``, for the
app to mount at ``/x`` and ``/api/x`` beside the other CMF routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cmf_common.errors import reference_error
from cmf_metadata.api.upstream import envelope

NOT_AVAILABLE = "Metahub is not available on this server yet"
NOT_IMPLEMENTED = 501

router = APIRouter(tags=["upstream v1: metahub (not yet)"])
reference_router = APIRouter(tags=["metahub (not yet)"])

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


_RESPONSES: dict[int | str, dict[str, Any]] = {NOT_IMPLEMENTED: {"description": NOT_AVAILABLE}}
_V1_RESPONSES: dict[int | str, dict[str, Any]] = {
    NOT_IMPLEMENTED: {"model": envelope.Envelope, "description": NOT_AVAILABLE}
}
for _method, _path in V1_ROUTES:
    router.add_api_route(
        _path,
        not_available_v1,
        methods=[_method],
        status_code=NOT_IMPLEMENTED,
        responses=_V1_RESPONSES,
        name=f"metahub_v1:{_method}:{_path}",
    )
for _method, _path in REFERENCE_ROUTES:
    reference_router.add_api_route(
        _path,
        not_available,
        methods=[_method],
        status_code=NOT_IMPLEMENTED,
        responses=_RESPONSES,
        name=f"metahub:{_method}:{_path}",
    )
