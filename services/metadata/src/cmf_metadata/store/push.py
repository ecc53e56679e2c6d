"""The SQL of the CMF push: every write is one set-based statement per entity batch.

Rows shared between pipelines (types, artifacts, uuids) are written in key order, so pushes that
share them never deadlock. Functions take a connection that the caller's transaction owns;
nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg

from cmf_common import db
from cmf_common.db import Connection, json_dumps
from cmf_metadata.store.backup import DERIVED


async def lock_pipeline(conn: Connection, name: str) -> None:
    """Serialise writers of one pipeline across every process and replica, until commit."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"cmf.metadata.pipeline:{name}"
    )


async def stored_uuids(conn: Connection, pipeline: int, uuids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT uuid FROM execution_uuids WHERE pipeline_id = $1 AND uuid = ANY($2::text[])",
        pipeline,
        list(uuids),
    )
    return {r["uuid"] for r in rows}


async def ensure_types(
    conn: Connection, wanted: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """The ids of the ``wanted`` types (kind, name), storing the missing ones. New types are
    numbered in the order ``wanted`` lists them, as MLMD registers a type when the merge first
    meets it (``/artifact_types`` lists them in that order); they are inserted in key order
    all the same, so pushes adding the same types never deadlock."""
    kinds = [k for k, _ in wanted]
    names = [n for _, n in wanted]
    await conn.execute(
        "WITH missing AS ("
        "  SELECT w.kind, w.name, w.ord FROM unnest($1::smallint[], $2::text[])"
        "    WITH ORDINALITY AS w(kind, name, ord)"
        "  WHERE NOT EXISTS (SELECT 1 FROM types t WHERE t.kind = w.kind AND t.name = w.name)"
        "), numbered AS ("
        "  SELECT m.kind, m.name, n.id FROM"
        "    (SELECT kind, name, row_number() OVER (ORDER BY ord) AS rank FROM missing) AS m"
        "  JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM"
        "          (SELECT nextval(pg_get_serial_sequence('types', 'id')) AS id"
        "           FROM missing) AS ids) AS n ON n.rank = m.rank"
        ") INSERT INTO types (id, kind, name) SELECT id, kind, name FROM numbered"
        " ORDER BY kind, name ON CONFLICT (kind, name) DO NOTHING",
        kinds,
        names,
    )
    rows = await conn.fetch(
        "SELECT t.id, t.kind, t.name FROM types t"
        " JOIN unnest($1::smallint[], $2::text[]) AS w(kind, name)"
        "   ON t.kind = w.kind AND t.name = w.name",
        kinds,
        names,
    )
    return {(r["kind"], r["name"]): r["id"] for r in rows}


async def upsert_pipeline(
    conn: Connection,
    *,
    name: str,
    type_id: int,
    properties: dict[str, Any],
    custom: dict[str, Any],
    now: int,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO pipelines AS p (name, type_id, properties, custom_properties,"
            "   create_time_since_epoch, last_update_time_since_epoch)"
            " VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5, $5)"
            " ON CONFLICT (name) DO UPDATE SET"
            "   properties = p.properties || excluded.properties,"
            "   custom_properties = p.custom_properties || excluded.custom_properties,"
            "   last_update_time_since_epoch = excluded.last_update_time_since_epoch"
            " RETURNING id",
            name,
            type_id,
            json_dumps(properties),
            json_dumps(custom),
            now,
        )
    )


class StageRow(NamedTuple):
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]


async def upsert_stages(
    conn: Connection,
    *,
    pipeline: int,
    type_id: int,
    stages: Sequence[StageRow],
    now: int,
) -> dict[str, int]:
    """Stages by name; a known stage keeps its first creation time and merges custom properties."""
    ordered = sorted(stages, key=lambda s: s.name)
    rows = await conn.fetch(
        "INSERT INTO stages AS s (pipeline_id, name, type_id, properties, custom_properties,"
        "   create_time_since_epoch, last_update_time_since_epoch)"
        " SELECT $1, v.name, $2, v.props::jsonb, v.custom::jsonb, $3, $3"
        " FROM unnest($4::text[], $5::text[], $6::text[]) AS v(name, props, custom)"
        " ORDER BY v.name"
        " ON CONFLICT (pipeline_id, name) DO UPDATE SET"
        "   properties = s.properties || excluded.properties,"
        "   custom_properties = s.custom_properties"
        "     || (excluded.custom_properties - 'original_create_time_since_epoch'),"
        "   last_update_time_since_epoch = excluded.last_update_time_since_epoch"
        " RETURNING id, name",
        pipeline,
        type_id,
        now,
        [s.name for s in ordered],
        [json_dumps(s.properties) for s in ordered],
        [json_dumps(s.custom_properties) for s in ordered],
    )
    return {r["name"]: r["id"] for r in rows}


class ExecutionKey(NamedTuple):
    """What identifies a re-used execution in its pipeline."""

    type: str
    name: str


class StoredExecution(NamedTuple):
    id: int
    uuid: str  # the comma list of its uuids


async def reused_executions(
    conn: Connection, pipeline: int, keys: Sequence[ExecutionKey]
) -> dict[ExecutionKey, StoredExecution]:
    """Stored executions with a non-empty name, by (type, name): CMF's re-used executions."""
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT e.id, e.type, e.name, e.uuid FROM executions e"
        " JOIN unnest($2::text[], $3::text[]) AS k(type, name)"
        "   ON e.type = k.type AND e.name = k.name"
        " WHERE e.pipeline_id = $1 AND e.name <> ''",
        pipeline,
        [k.type for k in keys],
        [k.name for k in keys],
    )
    return {ExecutionKey(r["type"], r["name"]): StoredExecution(r["id"], r["uuid"]) for r in rows}


async def allocate_execution_ids(conn: Connection, count: int) -> list[int]:
    if count == 0:
        return []
    rows = await conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('executions', 'id')) AS id"
        " FROM generate_series(1, $1)",
        count,
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True)
class ExecutionRow:
    id: int
    stage_id: int
    type_id: int
    type: str
    name: str
    uuid: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]


async def insert_executions(
    conn: Connection, *, pipeline: int, rows: Sequence[ExecutionRow], now: int
) -> None:
    if not rows:
        return
    await conn.execute(
        "INSERT INTO executions (id, pipeline_id, stage_id, type_id, type, name, uuid,"
        "   properties, custom_properties, create_time_since_epoch, last_update_time_since_epoch)"
        " SELECT v.id, $1, v.stage_id, v.type_id, v.type, v.name, v.uuid,"
        "   v.props::jsonb, v.custom::jsonb, $2, $2"
        " FROM unnest($3::bigint[], $4::bigint[], $5::int[], $6::text[], $7::text[], $8::text[],"
        "   $9::text[], $10::text[]) AS v(id, stage_id, type_id, type, name, uuid, props, custom)",
        pipeline,
        now,
        [r.id for r in rows],
        [r.stage_id for r in rows],
        [r.type_id for r in rows],
        [r.type for r in rows],
        [r.name for r in rows],
        [r.uuid for r in rows],
        [json_dumps(r.properties) for r in rows],
        [json_dumps(r.custom_properties) for r in rows],
    )


async def update_reused_executions(
    conn: Connection, *, rows: Sequence[ExecutionRow], now: int
) -> None:
    if not rows:
        return
    await conn.execute(
        "UPDATE executions e SET uuid = v.uuid,"
        "   properties = e.properties || v.props::jsonb,"
        "   custom_properties = e.custom_properties"
        "     || (v.custom::jsonb - 'original_create_time_since_epoch'),"
        "   last_update_time_since_epoch = $1"
        " FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])"
        "   AS v(id, uuid, props, custom)"
        " WHERE e.id = v.id",
        now,
        [r.id for r in rows],
        [r.uuid for r in rows],
        [json_dumps(r.properties) for r in rows],
        [json_dumps(r.custom_properties) for r in rows],
    )


class ExecutionUuid(NamedTuple):
    uuid: str
    execution_id: int


async def insert_execution_uuids(
    conn: Connection, *, pipeline: int, pairs: Sequence[ExecutionUuid]
) -> None:
    ordered = sorted(pairs)
    await conn.execute(
        "INSERT INTO execution_uuids (pipeline_id, uuid, execution_id)"
        " SELECT $1, v.uuid, v.execution_id FROM unnest($2::text[], $3::bigint[])"
        "   AS v(uuid, execution_id)"
        " ON CONFLICT (pipeline_id, uuid) DO NOTHING",
        pipeline,
        [p.uuid for p in ordered],
        [p.execution_id for p in ordered],
    )


class ArtifactRow(NamedTuple):
    uri: str
    type_id: int
    type: str
    name: str
    properties: dict[str, Any]
    custom_properties: dict[str, Any]


async def upsert_artifacts(
    conn: Connection, *, rows: Sequence[ArtifactRow], now: int
) -> list[asyncpg.Record]:
    """Artifacts by uri; ``rows`` come in the client's order (first sighting in the payload).
    Returns each one's ``id`` and ``uri``, in uri order (:func:`artifacts_by_id` reads them
    back as stored, a batch at a time, for the push's events).

    The reference creates a push's artifacts one by one, so their ids and creation times
    follow the client's order; here the new ones are numbered in that order (ids drawn from the
    sequence, matched to the rows by rank) and created ``now`` plus their rank in ms. A known
    uri is given its own id, so a re-push draws no ids. The rows are still written in uri
    order, so pushes sharing artifacts never deadlock.

    A known uri keeps its id, name and first creation time; its ``url`` list gains this push's
    entries and its custom properties merge, all under the row lock the upsert takes.

    From its sixth run on a connection, PostgreSQL may keep a generic plan of this statement,
    which guesses 10 rows for each unnest and joins the ranks by nested loops: the merge then
    took 3 s instead of 0.3 s for 1,000 executions, and 60 s more for 10,000. So it is planned
    for its own arrays every time, and only it: the listing triggers' statements, run once per
    row, must keep their cached plans (planning them each time made a push twice as slow).
    """
    async with db.local_setting(conn, "plan_cache_mode", "force_custom_plan"):
        return await conn.fetch(
            "WITH pushed AS ("
            "  SELECT v.* FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[],"
            "    $7::text[])"
            "    WITH ORDINALITY AS v(uri, type_id, type, name, props, custom, ord)"
            "), missing AS ("
            "  SELECT p.uri, row_number() OVER (ORDER BY p.ord) AS rank FROM pushed p"
            "  WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.uri = p.uri)"
            "), numbered AS ("
            "  SELECT m.uri, n.id, m.rank FROM missing m"
            "  JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM"
            "          (SELECT nextval(pg_get_serial_sequence('artifacts', 'id')) AS id"
            "           FROM missing) AS ids) AS n ON n.rank = m.rank"
            ")"
            " INSERT INTO artifacts AS a (id, uri, type_id, type, name, properties,"
            "   custom_properties, create_time_since_epoch, last_update_time_since_epoch)"
            " SELECT coalesce(n.id, (SELECT k.id FROM artifacts k WHERE k.uri = p.uri)),"
            "   p.uri, p.type_id, p.type, p.name, p.props::jsonb, p.custom::jsonb,"
            "   $1 + coalesce(n.rank - 1, 0), $1 + coalesce(n.rank - 1, 0)"
            " FROM pushed p LEFT JOIN numbered n ON n.uri = p.uri"
            " ORDER BY p.uri"
            " ON CONFLICT (uri) DO UPDATE SET"
            "   properties = a.properties || (excluded.properties - 'url')"
            "     || jsonb_strip_nulls(jsonb_build_object('url',"
            "          merge_comma_lists(a.properties ->> 'url', excluded.properties ->> 'url'))),"
            "   custom_properties = a.custom_properties"
            "     || (excluded.custom_properties - 'original_create_time_since_epoch'),"
            "   last_update_time_since_epoch = $1"
            " RETURNING id, uri",
            now,
            [r.uri for r in rows],
            [r.type_id for r in rows],
            [r.type for r in rows],
            [r.name for r in rows],
            [json_dumps(r.properties) for r in rows],
            [json_dumps(r.custom_properties) for r in rows],
        )


async def artifacts_by_id(conn: Connection, ids: Sequence[int]) -> list[asyncpg.Record]:
    """The artifacts ``ids`` as stored (the caller's transaction sees its own upserts), in the
    order of ``ids``."""
    return await conn.fetch(
        "SELECT a.id, a.uri, a.type, a.name, a.properties, a.custom_properties,"
        "   a.create_time_since_epoch, a.last_update_time_since_epoch"
        " FROM unnest($1::bigint[]) WITH ORDINALITY AS k(id, ord)"
        " JOIN artifacts a ON a.id = k.id ORDER BY k.ord",
        list(ids),
    )


class EventRow(NamedTuple):
    """An MLMD event: the execution read or wrote the artifact, at ``position`` among its
    events; one per (execution, artifact, type)."""

    execution_id: int
    artifact_id: int
    type: int
    position: int
    step_key: str


async def insert_events(conn: Connection, *, rows: Sequence[EventRow], now: int) -> None:
    """An event already linked is kept."""
    await conn.execute(
        "INSERT INTO events (execution_id, artifact_id, type, position, step_key,"
        "   milliseconds_since_epoch)"
        " SELECT v.execution_id, v.artifact_id, v.type, v.position, v.step_key, $1"
        " FROM unnest($2::bigint[], $3::bigint[], $4::smallint[], $5::int[], $6::text[])"
        "   AS v(execution_id, artifact_id, type, position, step_key)"
        " ON CONFLICT (execution_id, artifact_id, type) DO NOTHING",
        now,
        [r.execution_id for r in rows],
        [r.artifact_id for r in rows],
        [r.type for r in rows],
        [r.position for r in rows],
        [r.step_key for r in rows],
    )


class Attribution(NamedTuple):
    """The artifact was linked in the stage."""

    artifact_id: int
    stage_id: int


async def insert_attributions(conn: Connection, pairs: Sequence[Attribution]) -> None:
    ordered = sorted(set(pairs))
    await conn.execute(
        "INSERT INTO attributions (artifact_id, stage_id)"
        " SELECT * FROM unnest($1::bigint[], $2::bigint[])"
        " ON CONFLICT DO NOTHING",
        [p.artifact_id for p in ordered],
        [p.stage_id for p in ordered],
    )


# What a push writes (directly, or through the listing triggers: the tables a backup leaves
# out as derived), analyzed after a push that grew them (cmf_common.db.analyze_if_grown).
PUSHED_TABLES = (
    "executions",
    "execution_uuids",
    "artifacts",
    "events",
    "attributions",
    "stages",
    *DERIVED,
)


async def analyze_if_grown(conn: Connection, executions: int) -> bool:
    """After a push's commit: ANALYZE what it wrote when its ``executions`` grew the store
    by a tenth or more."""
    return await db.analyze_if_grown(conn, PUSHED_TABLES, measure="executions", added=executions)
