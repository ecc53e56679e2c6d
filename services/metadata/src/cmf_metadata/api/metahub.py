"""Metahub's 0.1.0 routes (docs/wire-contract.md §1.6, docs/metahub.md), in the reference's
shapes, at /x and /api/x. The domain is :mod:`cmf_metadata.metahub`; upstream's v1 routes are
in :mod:`cmf_metadata.api.upstream.metahub`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cmf_common.dialects import ReferenceRoute
from cmf_common.errors import reference_error
from cmf_metadata.api.deps import Hub
from cmf_metadata.api.metahub_requests import AcknowledgeBody, ScheduleBody, ServerBody
from cmf_metadata.metahub.peers import SERVER_ID_HEADER, MetahubError, NameTaken, SelfRegistration

router = APIRouter(tags=["metahub"], route_class=ReferenceRoute)

ACKNOWLEDGED = "Hi, I acknowledge your request."
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
IdQuery = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


class Message(BaseModel):
    message: str


class Detail(BaseModel):
    detail: Any


class Server(BaseModel):
    id: int
    server_name: str
    host_info: str
    last_sync_time: int | None


class SyncAnswer(BaseModel):
    message: str
    status: str
    last_sync_time: int


class ScheduleCreated(BaseModel):
    message: str
    schedule_id: int
    next_run_time_utc: int | None


class Schedule(BaseModel):
    id: int
    server_id: int
    timezone: str
    start_time_utc: int
    next_run_time_utc: int | None
    active: bool
    status: str
    one_time: bool
    created_at: int
    recurrence_mode: str | None
    interval_unit: str | None
    interval_value: int | None
    daily_time: str | None
    weekly_day: str | None
    weekly_time: str | None


class SyncLog(BaseModel):
    id: int
    schedule_id: int | None
    server_id: int
    run_time_utc: int
    status: str
    message: str
    sync_type: str
    executions_pulled: int
    executions_merged: int


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Detail, "description": '``{"detail": message}``'} for code in codes}


def own_url(request: Request) -> str:
    """How the caller reached us (a peer registered under it would be ourselves)."""
    return str(request.base_url).rstrip("/")


def failed(error: MetahubError) -> JSONResponse:
    return reference_error(error.status, error.message)


@router.post("/acknowledge", response_model=Message)
async def acknowledge(body: AcknowledgeBody, hub: Hub) -> JSONResponse:
    """A peer asks whether we answer; our server id rides in ``X-CMF-Server-Id``."""
    return JSONResponse(
        {"message": ACKNOWLEDGED}, headers={SERVER_ID_HEADER: await hub.server_id()}
    )


@router.post("/register-server", response_model=Message, responses=errors(400, 502))
async def register_server(body: ServerBody, request: Request, hub: Hub) -> JSONResponse:
    """As the reference: refusals of ourselves and of a taken name are 200 with a message;
    a bad URL is 400; a peer that does not acknowledge is 502."""
    try:
        await hub.register(
            body.server_name, body.server_url, own_url=own_url(request), token=body.token
        )
    except SelfRegistration as refused:
        return JSONResponse({"message": f"Registration failed: {refused.message}"})
    except NameTaken as taken:
        return JSONResponse({"message": taken.message})
    except MetahubError as error:
        return failed(error)
    return JSONResponse({"message": "Server registered successfully"})


@router.get("/server-list", response_model=list[Server])
async def server_list(hub: Hub) -> list[dict[str, Any]]:
    return await hub.peers()


@router.post("/sync", response_model=SyncAnswer, responses=errors(404, 502))
async def sync(body: ServerBody, hub: Hub) -> JSONResponse:
    """Pull the peer's changes since the last successful sync and merge them; 502 with the
    reason when the peer is down or answers wrong (logged, retried by the next sync)."""
    try:
        peer = await hub.peer_named(body.server_name, body.server_url)
        result = await hub.sync(peer["id"])
    except MetahubError as error:
        return failed(error)
    return JSONResponse(
        {
            "message": result.message,
            "status": result.status,
            "last_sync_time": result.last_sync_time,
        }
    )


@router.post("/schedule-sync", response_model=ScheduleCreated, responses=errors(400, 404))
async def schedule_sync(body: ScheduleBody, hub: Hub) -> JSONResponse:
    try:
        return JSONResponse(await hub.add_schedule(body.spec()))
    except MetahubError as error:
        return failed(error)


@router.get("/schedules", response_model=list[Schedule])
async def schedules(hub: Hub, server_id: IdQuery = None) -> list[dict[str, Any]]:
    return await hub.schedules(server_id)


@router.get("/schedule-sync/logs/{schedule_id}", response_model=list[SyncLog])
async def schedule_logs(schedule_id: IdPath, hub: Hub) -> list[dict[str, Any]]:
    """The schedule's last 50 runs, newest first."""
    return await hub.schedule_logs(schedule_id)


@router.delete("/schedule-sync/{schedule_id}", response_model=Message, responses=errors(404))
async def delete_schedule(schedule_id: IdPath, hub: Hub) -> JSONResponse:
    if not await hub.cancel_schedule(schedule_id):
        return reference_error(404, "Schedule not found")
    return JSONResponse({"message": "Schedule deactivated"})


@router.get("/server/{server_id}/completed-logs", response_model=list[SyncLog])
async def completed_logs(server_id: IdPath, hub: Hub) -> list[dict[str, Any]]:
    """The peer's last 100 runs (sync now and scheduled), newest first."""
    return await hub.completed_logs(server_id)
