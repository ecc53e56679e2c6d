"""GET /api/native/v1/export: the store as NDJSON event envelopes, paged, from which a consumer
rebuilds the lineage graph. In-process on real PostgreSQL, each test rolled back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from cmf_common.events import Envelope, event_type
from cmf_metadata.push import push as merge
from cmf_testing.generator import payload_text
from cmf_testing.generator import push_body as generated_push

EXPORT = "/api/native/v1/export"


def renamed(payload: dict[str, Any], name: str) -> dict[str, Any]:
    text = json.dumps(payload).replace('"Test-env', f'"{name}')
    return {"exec_uuid": None, "pipeline_name": name, "json_payload": text}


async def push(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await client.post("/api/mlmd_push", json=body)
    assert answer.json() == {"status": "success"}, answer.text


async def export_page(
    client: httpx.AsyncClient, cursor: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    answer = await client.get(EXPORT, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()]


async def export_all(client: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        page = await export_page(client, cursor, limit)
        lines += page
        if len(page) < limit:
            return lines
        cursor = page[-1]["export_cursor"]
    raise AssertionError("the export never ended")


@dataclass
class Graph:
    """What a lineage consumer keeps of the events: nodes by stable key, and edges."""

    pipelines: set[str] = field(default_factory=set)
    stages: set[tuple[str, str]] = field(default_factory=set)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str, str, int]] = field(default_factory=set)

    def apply(self, envelope: Envelope) -> None:
        data = envelope.data
        if envelope.type == event_type("pipeline", "upserted"):
            self.pipelines.add(data["pipeline"]["name"])
        elif envelope.type == event_type("stage", "upserted"):
            self.stages |= {(data["pipeline"], s["name"]) for s in data["stages"]}
        elif envelope.type == event_type("artifact", "upserted"):
            for a in data["artifacts"]:
                self.artifacts[a["uri"]] = {k: a[k] for k in ("type", "name")}
        elif envelope.type == event_type("execution", "merged"):
            for x in data["executions"]:
                key = (data["pipeline"], x["uuids"][0])
                self.executions[key] = {k: x[k] for k in ("stage", "type", "properties")}
                for e in x["events"]:
                    self.edges.add((data["pipeline"], x["uuids"][0], e["artifact_uri"], e["type"]))
        else:
            raise AssertionError(f"unexpected event type {envelope.type}")


def graph_of(envelopes: list[Envelope]) -> Graph:
    graph = Graph()
    for envelope in envelopes:
        graph.apply(envelope)
    return graph


def envelopes(lines: list[dict[str, Any]]) -> list[Envelope]:
    return [Envelope.from_json(json.dumps(line)) for line in lines]


async def outbox_envelopes(conn: asyncpg.Connection) -> list[Envelope]:
    rows = await conn.fetch(
        "SELECT id, type, source, subject, time, seq, data FROM outbox ORDER BY position"
    )
    return [
        Envelope(
            id=str(r["id"]),
            type=r["type"],
            source=r["source"],
            subject=r["subject"],
            time=r["time"].isoformat(),
            seq=r["seq"],
            data=r["data"],
        )
        for r in rows
    ]


@pytest.fixture
async def three_pipelines(
    client: httpx.AsyncClient, push_body: dict[str, Any], payload: dict[str, Any]
) -> None:
    """The captured push, the same pipeline under another name (every artifact shared) and a
    generated one."""
    await push(client, push_body)
    await push(client, renamed(payload, "Other-env"))
    await push(client, generated_push("gen", 5, stages=2))


async def test_every_line_is_an_event_envelope(
    client: httpx.AsyncClient, three_pipelines: None
) -> None:
    lines = await export_page(client)
    assert lines
    for line in lines:
        envelope = Envelope.from_json(json.dumps(line))
        assert envelope.type.startswith("cmf.metadata.") and envelope.specversion == "1.0"
        assert envelope.subject in {"Test-env", "Other-env", "gen"} and envelope.seq > 0
    assert len({line["id"] for line in lines}) == len(lines)


@pytest.mark.usefixtures("three_pipelines")
async def test_export_rebuilds_the_graph_the_outbox_events_build(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    exported = graph_of(envelopes(await export_page(client)))
    live = graph_of(await outbox_envelopes(conn))
    assert exported == live


@pytest.mark.usefixtures("three_pipelines")
async def test_export_holds_every_edge_of_the_store(
    client: httpx.AsyncClient, conn: asyncpg.Connection
) -> None:
    stored = await conn.fetch(
        "SELECT p.name AS pipeline, split_part(x.uuid, ',', 1) AS uuid, a.uri, ev.type"
        " FROM events ev JOIN executions x ON x.id = ev.execution_id"
        " JOIN pipelines p ON p.id = x.pipeline_id JOIN artifacts a ON a.id = ev.artifact_id"
    )
    exported = graph_of(envelopes(await export_page(client)))
    assert exported.edges == {(r["pipeline"], r["uuid"], r["uri"], r["type"]) for r in stored}
    assert len(exported.edges) == 9 + 9 + 25


async def test_lines_carry_the_pipeline_sequence_of_the_snapshot(
    client: httpx.AsyncClient, three_pipelines: None, conn: asyncpg.Connection
) -> None:
    await push(client, generated_push("gen", 7, stages=2, seed=1))  # the same pipeline again
    expected = {
        r["subject"]: r["last_seq"]
        for r in await conn.fetch("SELECT subject, last_seq FROM outbox_sequences")
    }
    lines = await export_page(client)
    assert {line["subject"]: line["seq"] for line in lines} == expected


@pytest.mark.parametrize("limit", [1, 2, 5])
async def test_pages_resume_where_the_last_line_ends(
    client: httpx.AsyncClient, three_pipelines: None, limit: int
) -> None:
    whole = await export_page(client)
    paged = await export_all(client, limit)
    strip = ("id", "time", "export_cursor")  # fresh per line / per page
    assert [{k: v for k, v in line.items() if k not in strip} for line in paged] == [
        {k: v for k, v in line.items() if k not in strip} for line in whole
    ]


async def push_big(pool: Any) -> None:
    """1,001 executions: over the test app's body limit, so pushed in-process."""
    outcome = await merge(
        pool,
        pipeline_name="big",
        json_payload=payload_text("big", 1001),
        exec_uuid=None,
    )
    assert outcome.status.value == "success"


async def test_large_pipelines_are_split_into_lines_of_500(
    client: httpx.AsyncClient, single_connection_pool: Any
) -> None:
    await push_big(single_connection_pool)
    lines = await export_page(client)
    executions = [
        len(line["data"]["executions"])
        for line in lines
        if line["type"] == event_type("execution", "merged")
    ]
    artifacts = [
        len(line["data"]["artifacts"])
        for line in lines
        if line["type"] == event_type("artifact", "upserted")
    ]
    assert executions == [500, 500, 1] and sum(artifacts) == 1 + 2 * 1002
    assert max(artifacts) == 500


async def test_a_cursor_inside_a_pipeline_continues_inside_it(
    client: httpx.AsyncClient, single_connection_pool: Any
) -> None:
    await push_big(single_connection_pool)
    lines = await export_page(client)
    middle = next(
        i for i, line in enumerate(lines) if line["type"] == event_type("execution", "merged")
    )
    rest = await export_page(client, lines[middle]["export_cursor"])
    assert [line["data"] for line in rest] == [line["data"] for line in lines[middle + 1 :]]


async def test_an_artifact_of_several_stages_appears_once_per_pipeline(
    client: httpx.AsyncClient, three_pipelines: None
) -> None:
    lines = await export_page(client, limit=1000)
    listed = [
        (line["subject"], a["uri"])
        for line in lines
        if line["type"] == event_type("artifact", "upserted")
        for a in line["data"]["artifacts"]
    ]
    assert len(listed) == len(set(listed)) == 7 + 7 + 13


async def test_export_of_an_empty_store_is_empty(client: httpx.AsyncClient) -> None:
    assert await export_page(client) == []


async def test_page_after_the_last_line_is_empty(
    client: httpx.AsyncClient, three_pipelines: None
) -> None:
    lines = await export_page(client)
    assert await export_page(client, lines[-1]["export_cursor"]) == []


@pytest.mark.parametrize("cursor", ["garbage", "WzEsIngiLDEsMSwxXQ", ""])
async def test_garbled_cursor_is_422_problem(client: httpx.AsyncClient, cursor: str) -> None:
    answer = await client.get(EXPORT, params={"cursor": cursor})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "invalid_cursor" and body["trace_id"]


async def test_listing_cursor_is_refused_by_the_export(
    client: httpx.AsyncClient, three_pipelines: None
) -> None:
    page = (await client.get("/api/native/v1/executions", params={"limit": 1})).json()
    answer = await client.get(EXPORT, params={"cursor": page["next_cursor"]})
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 1001])
async def test_limit_outside_1_to_1000_lines_is_422_problem(
    client: httpx.AsyncClient, limit: int
) -> None:
    answer = await client.get(EXPORT, params={"limit": limit})
    assert answer.status_code == 422 and answer.json()["code"] == "invalid"
