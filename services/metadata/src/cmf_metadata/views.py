"""What the web UI's views read (``/api/native/v1/views/``, docs/ui.md): pipeline cards, one
pipeline's overview, a stage's columns, numbered table pages, the comparison of executions, label
CSV pages, the model card, the python environment and the tensorboard logs.

The data arrives shaped for the page (counts, default columns, which rows differ, the numbers
to chart), so the browser only renders it. No FastAPI here: errors are
:class:`~cmf_common.errors.Invalid` and :class:`~cmf_common.errors.NotFound`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import asyncpg

from cmf_common.access import current_prefix
from cmf_common.db import read_snapshot
from cmf_common.errors import Invalid, NotFound
from cmf_common.tracing import span
from cmf_metadata import files
from cmf_metadata.artifacts import api_item as artifact_item
from cmf_metadata.executions import api_item as execution_item
from cmf_metadata.filters import check_text, json_like_pattern, like_pattern
from cmf_metadata.match_counts import KeptPerVersion
from cmf_metadata.model_card import MODEL
from cmf_metadata.pipelines import find_pipeline
from cmf_metadata.store import artifacts as artifact_store
from cmf_metadata.store import executions as execution_store
from cmf_metadata.store import views as store
from cmf_metadata.store.paging import custom_plans
from cmf_metadata.store.pipelines import pipeline_version
from cmf_metadata.stored import StoredBlobs, with_stored

MAX_PAGE = 500
MAX_OFFSET = 10_000_000
MAX_COMPARE = 10
COLUMN_SAMPLE = 250
MAX_DEFAULT_COLUMNS = 8
MAX_LABEL_BYTES = 64 * 1024 * 1024

# Keys a table does not show by default: the bookkeeping every CMF execution carries.
HIDDEN_BY_DEFAULT = frozenset(
    {
        "Context_ID",
        "Context_Type",
        "Execution_type_name",
        "Pipeline_id",
        "Pipeline_Type",
        "Git_Repo",
        "Git_Start_Commit",
        "Git_End_Commit",
        "Python_Env",
        "Execution_uuid",
        "original_create_time_since_epoch",
    }
)
# Shown by default after the user's own properties.
SHOWN_AFTER = ("Execution",)


def check_page(offset: int, limit: int) -> None:
    if not 0 <= offset <= MAX_OFFSET:
        raise Invalid(f"offset must be between 0 and {MAX_OFFSET}", code="invalid_parameter")
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}", code="invalid_parameter")


# What the pages sort by, besides property:<key> (their routes' OpenAPI says it too).
EXECUTION_SORTS = tuple(store.EXECUTION_COLUMNS)
ARTIFACT_SORTS = tuple(store.ARTIFACT_COLUMNS)


def parse_sort(sort: str, columns: Sequence[str]) -> store.Sort:
    """``column``, ``property:<key>``, each with a leading ``-`` for descending."""
    check_text("sort", sort)
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    if name.startswith("property:") and len(name) > len("property:"):
        return store.Sort(column=None, property=name[len("property:") :], descending=descending)
    if name not in columns:
        raise Invalid(
            f"cannot sort by {sort!r}; sort by one of {', '.join(columns)} or property:<key>"
            " (a leading '-' sorts descending)",
            code="invalid_sort",
        )
    return store.Sort(column=name, descending=descending)


def _text(q: str | None) -> str | None:
    if not q:
        return None
    check_text("q", q)
    return like_pattern(q)


def card(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_push_time_since_epoch": row["last_update_time_since_epoch"],
        "stage_count": row["stages"],
        "execution_count": row["executions"],
        "artifact_count": row["artifacts"],
    }


async def pipeline_cards(
    pool: asyncpg.Pool, *, q: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """Pipelines whose name holds ``q`` (any case), the last pushed first."""
    check_page(offset, limit)
    with span("metadata.views.pipelines"):
        async with read_snapshot(pool) as conn:
            total, rows = await store.pipeline_cards(
                conn, name_like=_text(q), offset=offset, limit=limit, prefix=current_prefix()
            )
    return {"items": [card(r) for r in rows], "total": total, "offset": offset}


def short_stage(pipeline: str, stage: str) -> str:
    prefix = f"{pipeline}/"
    return stage[len(prefix) :] if stage.startswith(prefix) else stage


async def pipeline_overview(pool: asyncpg.Pool, name: str) -> dict[str, Any]:
    """One pipeline's card, its stages with their counts and its artifact types with theirs."""
    check_text("pipeline", name)
    async with read_snapshot(pool) as conn:
        pipeline = await find_pipeline(conn, name)
        assert pipeline is not None
        row = await store.pipeline_card(conn, pipeline)
        assert row is not None
        stages = await store.pipeline_stages(conn, pipeline)
        types = await store.pipeline_artifact_types(conn, pipeline)
    return {
        **card(row),
        "stages": [
            {
                "id": s["id"],
                "name": s["name"],
                "label": short_stage(name, s["name"]),
                "execution_count": s["executions"],
                "artifact_count": s["artifacts"],
                "create_time_since_epoch": s["create_time_since_epoch"],
            }
            for s in stages
        ],
        "artifact_types": [{"type": t["type"], "count": t["artifacts"]} for t in types],
    }


async def _stage(conn: Any, pipeline_name: str, stage_name: str) -> tuple[int, int]:
    check_text("stage", stage_name)
    pipeline = await find_pipeline(conn, pipeline_name)
    assert pipeline is not None
    stage = await store.stage_id(conn, pipeline, stage_name)
    if stage is None:
        raise NotFound(
            f"pipeline {pipeline_name!r} has no stage {stage_name!r}", code="stage_not_found"
        )
    return pipeline, stage


def default_columns(keys: Sequence[dict[str, Any]]) -> list[str]:
    """The columns a table opens with: the user's own custom properties (the parameters and
    settings that tell runs apart), then the command line; at most eight."""
    own = [
        k["key"]
        for k in keys
        if k["bag"] == "custom_properties" and k["key"] not in HIDDEN_BY_DEFAULT
    ]
    after = [k["key"] for k in keys if k["key"] in SHOWN_AFTER]
    return (own + after)[:MAX_DEFAULT_COLUMNS]


class StageColumnsKept(KeptPerVersion[dict[str, Any]]):
    """The last stage-columns answers, each under its pipeline's version (its last outbox
    sequence, read in the answer's snapshot): a stage's keys change only with a push of its
    pipeline, and every such push raises that sequence (as for ``match_counts``), so a kept
    answer is exactly the one of the version in its key. The UI asks for a stage's columns with
    every load of its table; the keys cost a pass over 250 executions' properties, the version a
    key lookup. Each process keeps its own."""

    def __init__(self, max_entries: int = 512) -> None:
        super().__init__(max_entries)


async def stage_columns(
    pool: asyncpg.Pool,
    pipeline_name: str,
    stage_name: str,
    kept: StageColumnsKept | None = None,
) -> dict[str, Any]:
    """The property keys of a stage's newest executions, for a table's columns."""
    async with read_snapshot(pool) as conn:
        pipeline, stage = await _stage(conn, pipeline_name, stage_name)
        key = (pipeline, stage, await pipeline_version(conn, pipeline_name))
        answer = kept.get(key) if kept is not None else None
        if answer is not None:
            return answer
        sampled, rows = await store.stage_property_keys(conn, stage, sample=COLUMN_SAMPLE)
    seen: set[str] = set()
    keys: list[dict[str, Any]] = []
    for r in rows:  # custom first: when both bags have a key, the custom value is shown
        if r["key"] in seen:
            continue
        seen.add(r["key"])
        keys.append(
            {"key": r["key"], "bag": r["bag"], "count": r["n"], "numeric": bool(r["numeric"])}
        )
    keys.sort(key=lambda k: (k["bag"] != "custom_properties", k["key"].lower()))
    answer = {
        "pipeline": pipeline_name,
        "stage": stage_name,
        "sampled": sampled,
        "columns": keys,
        "default_columns": default_columns(keys),
    }
    if kept is not None:
        kept.put(key, answer)
    return answer


async def stage_executions(
    pool: asyncpg.Pool,
    *,
    pipeline_name: str,
    stage_name: str,
    q: str | None,
    sort: str,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """One numbered page of a stage's executions: sorted by a column or a property, filtered
    by free text in any property value."""
    check_page(offset, limit)
    order = parse_sort(sort, list(store.EXECUTION_COLUMNS))
    text = _text(q)
    with span("metadata.views.executions"):
        async with read_snapshot(pool) as conn:
            pipeline, stage = await _stage(conn, pipeline_name, stage_name)
            await custom_plans(conn)
            total, rows = await store.stage_executions(
                conn,
                pipeline=pipeline,
                stage=stage,
                stage_name=stage_name,
                text=text,
                text_in_json=json_like_pattern(q) if q else None,
                sort=order,
                offset=offset,
                limit=limit,
            )
    return {"items": [execution_item(r) for r in rows], "total": total, "offset": offset}


def as_number(value: Any) -> float | None:
    """A property value as a number to chart: a JSON number, or a string that reads as one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def comparison(executions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per property key of any of ``executions``: each one's value (``None`` where it
    has none), whether they differ, and, when every present value is a number, the numbers."""
    keys: dict[str, str] = {}
    for e in executions:
        for bag in ("custom_properties", "properties"):
            for key in e[bag]:
                keys.setdefault(key, bag)
    rows = []
    for key, bag in sorted(
        keys.items(), key=lambda kv: (kv[1] != "custom_properties", kv[0].lower())
    ):
        values = [e["custom_properties"].get(key, e["properties"].get(key)) for e in executions]
        present = [v for v in values if v is not None]
        numbers = [as_number(v) if v is not None else None for v in values]
        numeric = bool(present) and all(
            n is not None for v, n in zip(values, numbers, strict=True) if v is not None
        )
        differs = len({repr(v) for v in values}) > 1
        rows.append(
            {
                "key": key,
                "bag": bag,
                "values": values,
                "differs": differs,
                "numeric": numeric,
                "numbers": numbers if numeric else None,
                # Worth a chart: numbers that tell the runs apart, not CMF's bookkeeping.
                "chart": numeric and differs and key not in HIDDEN_BY_DEFAULT,
            }
        )
    return rows


def parse_ids(raw: str) -> list[int]:
    """``1,2,3`` → distinct ids in the order given; 1 to :data:`MAX_COMPARE` of them."""
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) < 2**63:
            raise Invalid(
                f"ids must be a comma list of execution ids, not {raw!r}", code="invalid_parameter"
            )
        if int(part) not in ids:
            ids.append(int(part))
    if not 1 <= len(ids) <= MAX_COMPARE:
        raise Invalid(f"compare 1 to {MAX_COMPARE} executions", code="invalid_parameter")
    return ids


async def compare_executions(pool: asyncpg.Pool, raw_ids: str) -> dict[str, Any]:
    """Up to ten executions side by side: each one's header and a row per property."""
    ids = parse_ids(raw_ids)
    async with read_snapshot(pool) as conn:
        rows = {r["id"]: r for r in await store.executions_by_ids(conn, ids, current_prefix())}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound(
            f"execution {', '.join(map(str, missing))} not found", code="execution_not_found"
        )
    executions = [execution_item(rows[i]) for i in ids]
    return {
        "executions": [
            {
                k: e[k]
                for k in ("id", "uuid", "pipeline", "stage", "type", "create_time_since_epoch")
            }
            for e in executions
        ],
        "rows": comparison(executions),
    }


async def pipeline_artifacts(
    pool: asyncpg.Pool,
    *,
    pipeline_name: str,
    type: str | None,
    q: str | None,
    sort: str,
    offset: int,
    limit: int,
    stored: StoredBlobs,
) -> dict[str, Any]:
    """One numbered page of the pipeline's artifacts of a type, each with ``stored``: whether
    the artifact service holds its bytes."""
    check_page(offset, limit)
    check_text("type", type)
    order = parse_sort(sort, list(store.ARTIFACT_COLUMNS))
    text = _text(q)
    with span("metadata.views.artifacts"):
        async with read_snapshot(pool) as conn:
            pipeline = await find_pipeline(conn, pipeline_name)
            assert pipeline is not None
            total, rows = await store.pipeline_artifacts(
                conn,
                pipeline=pipeline,
                type=type,
                text=text,
                sort=order,
                offset=offset,
                limit=limit,
            )
    items = await with_stored([artifact_item(r) for r in rows], stored)
    return {"items": items, "total": total, "offset": offset}


def label_file_name(artifact: dict[str, Any]) -> str | None:
    """The uploaded label CSV of an artifact: a Label's own (its name is ``csvpath:md5``), or
    the one a Dataset names in its ``labels_uri`` custom property."""
    if artifact["type"] == "Label":
        name = artifact["name"]
    else:
        name = artifact["custom_properties"].get("labels_uri")
        if not isinstance(name, str) or not name:
            return None
    md5 = name.rsplit(":", 1)[-1] if ":" in name else name
    return md5 or None


async def label_page(
    pool: asyncpg.Pool, file_store: files.FileStore, artifact_id: int, *, offset: int, limit: int
) -> dict[str, Any]:
    """A page of the label CSV of an artifact: its header, ``limit`` rows from ``offset`` and
    how many rows it has."""
    check_page(offset, limit)
    async with read_snapshot(pool) as conn:
        row = await artifact_store.artifact(conn, artifact_id, current_prefix())
    if row is None:
        raise NotFound(f"artifact {artifact_id} not found", code="artifact_not_found")
    name = label_file_name(artifact_item(row))
    if name is None:
        raise NotFound(f"artifact {artifact_id} has no labels", code="labels_not_found")
    try:
        chunks = await files.open_label(file_store, name)
    except NotFound as exc:
        raise NotFound(
            f"the labels of artifact {artifact_id} ({name}) were not uploaded",
            code="labels_not_found",
        ) from exc
    data = bytearray()
    async for chunk in chunks:
        data.extend(chunk)
        if len(data) > MAX_LABEL_BYTES:
            raise Invalid("the label file is too large to show", code="labels_too_large")
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    header = next(reader, [])
    rows = list(reader)
    return {
        "artifact_id": artifact_id,
        "file_name": name,
        "columns": header,
        "rows": rows[offset : offset + limit],
        "total": len(rows),
        "offset": offset,
    }


async def model_card(pool: asyncpg.Pool, artifact_id: int) -> dict[str, Any]:
    """A model, the executions that produced or used it, and what they read and wrote."""
    prefix = current_prefix()
    async with read_snapshot(pool) as conn:
        model = await artifact_store.artifact(conn, artifact_id, prefix)
        if model is None:
            raise NotFound(f"artifact {artifact_id} not found", code="artifact_not_found")
        if model["type"] != MODEL:
            raise NotFound(
                f"artifact {artifact_id} is a {model['type']}, not a Model", code="not_a_model"
            )
        executions = await execution_store.executions_of_artifact(conn, artifact_id, prefix)
        ids = [e["id"] for e in executions]
        full = await store.executions_by_ids(conn, ids)
        inputs = await artifact_store.artifacts_of_executions(conn, ids, 3, artifact_id)
        outputs = await artifact_store.artifacts_of_executions(conn, ids, 4, artifact_id)
    return {
        "model": artifact_item(model),
        "executions": [execution_item(r) for r in sorted(full, key=lambda r: r["id"])],
        "inputs": [_brief(a) for a in inputs],
        "outputs": [_brief(a) for a in outputs],
    }


def _brief(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "type": row["type"], "uri": row["uri"]}


async def python_env(
    pool: asyncpg.Pool, file_store: files.FileStore, execution_id: int
) -> tuple[str, files.Chunks]:
    """The python environment file an execution names (``Python_Env``) and its bytes."""
    async with read_snapshot(pool) as conn:
        row = await execution_store.execution(conn, execution_id, current_prefix())
    if row is None:
        raise NotFound(f"execution {execution_id} not found", code="execution_not_found")
    path = row["custom_properties"].get("Python_Env") or row["properties"].get("Python_Env")
    if not isinstance(path, str) or not path:
        raise NotFound(
            f"execution {execution_id} names no python environment", code="python_env_not_found"
        )
    name = path.rsplit("/", 1)[-1]
    try:
        return name, await files.open_python_env(file_store, name)
    except NotFound as exc:
        raise NotFound(
            f"the python environment {name} of execution {execution_id} was not uploaded",
            code="python_env_not_found",
        ) from exc


async def tensorboard(
    pool: asyncpg.Pool, file_store: files.FileStore, pipeline_name: str, url: str | None
) -> dict[str, Any]:
    """The tensorboard logs uploaded for a pipeline, and where TensorBoard shows them (``None``
    until a TensorBoard runs beside the server)."""
    check_text("pipeline", pipeline_name)
    async with read_snapshot(pool) as conn:
        await find_pipeline(conn, pipeline_name)
    listing = await files.tensorboard_logs(file_store, pipeline_name)
    return {
        "pipeline": pipeline_name,
        "configured": url is not None,
        "url": url,
        "files": listing["files"],
    }
