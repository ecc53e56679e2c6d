"""Metahub's v1 routes (docs/upstream-v1.md §8, docs/metahub.md), in upstream's envelope,
at /v1/x and /api/v1/x; the 0.1.0 routes are :mod:`cmf_metadata.api.metahub`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cmf_common import envelope
from cmf_common.envelope import EnvelopeRoute
from cmf_metadata.api.deps import Hub
from cmf_metadata.api.metahub import IdPath, IdQuery, own_url
from cmf_metadata.api.metahub_requests import AcknowledgeBody, RegisterBody, ScheduleBody
from cmf_metadata.metahub.peers import SERVER_ID_HEADER, MetahubError

router = APIRouter(
    tags=["upstream v1: metahub"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)
RESPONSES_502: dict[int | str, dict[str, object]] = {
    502: {"model": envelope.Envelope, "description": "The peer is down or answered wrong"}
}


def failed(error: MetahubError) -> JSONResponse:
    return envelope.error(error.message, error.status)


@router.post("/acknowledge")
async def acknowledge(body: AcknowledgeBody, hub: Hub) -> JSONResponse:
    return envelope.success(
        {"server_name": body.server_name, "server_url": body.server_url, "status": "ok"},
        "Server acknowledged successfully",
        headers={SERVER_ID_HEADER: await hub.server_id()},
    )


@router.post("/servers/register", responses=RESPONSES_502)
async def register(body: RegisterBody, request: Request, hub: Hub) -> JSONResponse:
    """201 in the body (HTTP 200, as upstream); 400 ourselves or a bad URL, 409 a name taken,
    502 a peer that does not acknowledge."""
    try:
        row = await hub.register(
            body.server_name, body.server_url, own_url=own_url(request), token=body.token
        )
    except MetahubError as error:
        return failed(error)
    return envelope.success(row, "Server registered successfully", code=201)


@router.post("/servers/sync", responses=RESPONSES_502)
async def sync(body: RegisterBody, hub: Hub) -> JSONResponse:
    try:
        peer = await hub.peer_named(body.server_name, body.server_url)
        result = await hub.sync(peer["id"])
    except MetahubError as error:
        return failed(error)
    return envelope.success(
        {
            "message": result.message,
            "status": result.status,
            "last_sync_time": result.last_sync_time,
            "executions_pulled": result.executions_pulled,
            "executions_merged": result.executions_merged,
        },
        result.message,
    )


@router.get("/servers")
async def servers(hub: Hub) -> JSONResponse:
    return envelope.success(await hub.peers(), "Registered servers")


@router.get("/servers/{server_id}/completed-logs")
async def completed_logs(server_id: IdPath, hub: Hub) -> JSONResponse:
    return envelope.success(await hub.completed_logs(server_id), "Completed logs")


@router.post("/schedules")
async def create_schedule(body: ScheduleBody, hub: Hub) -> JSONResponse:
    try:
        created = await hub.add_schedule(body.spec())
    except MetahubError as error:
        return failed(error)
    return envelope.success(created, "Schedule created", code=201)


@router.get("/schedules")
async def schedules(hub: Hub, server_id: IdQuery = None) -> JSONResponse:
    return envelope.success(await hub.schedules(server_id), "Schedules")


@router.get("/schedules/{schedule_id}/logs")
async def schedule_logs(schedule_id: IdPath, hub: Hub) -> JSONResponse:
    return envelope.success(await hub.schedule_logs(schedule_id), "Schedule logs")


@router.delete("/schedules/{schedule_id}")
async def delete_schedule(schedule_id: IdPath, hub: Hub) -> JSONResponse:
    if not await hub.cancel_schedule(schedule_id):
        return envelope.error("Schedule not found", 404)
    return envelope.success({"schedule_id": schedule_id}, "Schedule deleted successfully")
