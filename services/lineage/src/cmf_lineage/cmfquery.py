"""CMFQuery's graph questions (cmflib's ``cmfquery.py``), answered from the lineage graph: an
artifact's parents, children, ancestors and descendants, the executions linked to it, and an
execution's parents, ancestors and artifacts. FastAPI-free; ``api/cmfquery.py`` routes them.

Each answer is what upstream's CMFQuery routes put in ``data``: records shaped as CmfQuery's
DataFrames come out (:mod:`cmf_common.frames`). ``None`` means CmfQuery's empty answer, which
the routes turn into upstream's HTTP 200 ``code: 404``. Sets come in server id order, where
CmfQuery's follow MLMD's store order (by id too, for the one-hop sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cmf_common.frames import artifact_row, frame_records, properties_row
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_lineage.graph_reader import ArtifactRecord, ExecutionRecord, GraphReader

# CmfQuery's get_one_hop_parent_artifacts_with_id leaves these out (its lineage views do).
EXCLUDED_TYPES = frozenset({"Environment", "Label"})
EXECUTION_TYPE_NAME = "Execution_type_name"
EXECUTION_UUID = "Execution_uuid"
PIPELINE_ID = "Pipeline_id"
KIND_NAMES = {INPUT: "INPUT", OUTPUT: "OUTPUT"}

Records = list[dict[str, Any]]


def artifact_record(record: ArtifactRecord) -> dict[str, Any]:
    """An artifact as CmfQuery's ``get_artifact_df`` row."""
    a = record.info
    return artifact_row(
        {
            "id": a.metadata_id,
            "type": a.type,
            "uri": a.uri,
            "name": a.name,
            "create_time_since_epoch": record.create_time,
            "last_update_time_since_epoch": record.last_update_time,
            "properties": record.properties,
            "custom_properties": record.custom_properties,
        }
    )


def execution_record(record: ExecutionRecord) -> dict[str, Any]:
    """An execution as CmfQuery's ``_transform_to_dataframe(execution, {"id", "name"})`` row."""
    return properties_row(
        {"properties": record.properties, "custom_properties": record.custom_properties},
        id=record.info.metadata_id,
        name=record.info.name,
    )


def _frames(rows: Iterable[dict[str, Any]]) -> Records | None:
    records = frame_records(rows)
    return records if isinstance(records, list) and records else None


async def artifact_named(graph: GraphReader, name: str) -> ArtifactRecord | None:
    """CmfQuery's ``_get_artifact``: the first artifact (by server id) of that name."""
    found = await graph.artifact_records(names=[name.strip()])
    return found[0] if found else None


async def artifact_with_id(graph: GraphReader, artifact_id: int) -> ArtifactRecord | None:
    found = await graph.artifact_records(ids=[artifact_id])
    return found[0] if found else None


async def _records_of(graph: GraphReader, uris: Iterable[str]) -> list[ArtifactRecord]:
    wanted = list(dict.fromkeys(uris))
    return await graph.artifact_records(uris=wanted) if wanted else []


async def _execution_records(
    graph: GraphReader, ids: Iterable[int], pipeline_id: int | None = None
) -> list[ExecutionRecord]:
    wanted = list(dict.fromkeys(ids))
    found = await graph.execution_records(wanted) if wanted else []
    if pipeline_id is None:
        return found
    # CmfQuery compares the execution's Pipeline_id property, as a string.
    return [x for x in found if str(x.properties.get(PIPELINE_ID)) == str(pipeline_id)]


async def _one_hop(
    graph: GraphReader, uris: Sequence[str], *, upstream: bool, pipeline_id: int | None = None
) -> list[ArtifactRecord]:
    """Parents (the inputs of what wrote ``uris``) or children (the outputs of what read
    them), each once."""
    via = await graph.executions_of_artifacts(uris, OUTPUT if upstream else INPUT)
    executions = {x.key: x for _, x in via}
    if pipeline_id is not None:
        kept = {
            x.info.key
            for x in await _execution_records(
                graph, (x.metadata_id for x in executions.values()), pipeline_id
            )
        }
        executions = {k: x for k, x in executions.items() if k in kept}
    linked = await graph.artifacts_of_executions(list(executions), INPUT if upstream else OUTPUT)
    return await _records_of(graph, (a.uri for _, a in linked))


async def parents(graph: GraphReader, artifact: ArtifactRecord) -> Records | None:
    """``get_one_hop_parent_artifacts``."""
    return _frames(
        artifact_record(r) for r in await _one_hop(graph, [artifact.info.uri], upstream=True)
    )


async def parents_of_id(graph: GraphReader, artifact_id: int) -> Records | None:
    """``get_one_hop_parent_artifacts_with_id``: Environment and Label left out."""
    artifact = await artifact_with_id(graph, artifact_id)
    if artifact is None:
        return None
    found = await _one_hop(graph, [artifact.info.uri], upstream=True)
    return _frames(artifact_record(r) for r in found if r.info.type not in EXCLUDED_TYPES)


async def children(
    graph: GraphReader, artifact: ArtifactRecord, pipeline_id: int | None = None
) -> Records | None:
    """``get_one_hop_child_artifacts``: of the readers in pipeline ``pipeline_id`` if given."""
    found = await _one_hop(graph, [artifact.info.uri], upstream=False, pipeline_id=pipeline_id)
    return _frames(artifact_record(r) for r in found)


async def linked(graph: GraphReader, artifact: ArtifactRecord, *, upstream: bool) -> Records | None:
    """``get_all_parent_artifacts`` (upstream) or ``get_all_child_artifacts``: every artifact
    the walk reaches, each once, in one query however deep."""
    uris = await graph.linked_artifacts([artifact.info.uri], upstream=upstream)
    return _frames(artifact_record(r) for r in await _records_of(graph, uris))


async def _linked_executions(graph: GraphReader, uris: Sequence[str]) -> Records | None:
    """CmfQuery's ``get_all_executions_for_artifact`` rows: one per edge of the artifact."""
    edges = [
        (kind, x)
        for kind in (INPUT, OUTPUT)
        for _, x in await graph.executions_of_artifacts(uris, kind)
    ]
    details = {
        r.info.key: r for r in await _execution_records(graph, (x.metadata_id for _, x in edges))
    }
    edges.sort(key=lambda e: (e[1].metadata_id, e[0]))
    rows = []
    for kind, x in edges:
        record = details.get(x.key)
        type_name = record.properties.get(EXECUTION_TYPE_NAME) if record else None
        rows.append(
            {
                "Type": KIND_NAMES[kind],
                "execution_id": x.metadata_id,
                "execution_name": x.name,
                "execution_type_name": type_name if type_name is not None else x.type,
                "stage": x.stage,
                "pipeline": x.pipeline,
            }
        )
    return _frames(rows)


async def executions_of(graph: GraphReader, artifact: ArtifactRecord) -> Records | None:
    return await _linked_executions(graph, [artifact.info.uri])


async def executions_of_id(graph: GraphReader, artifact_id: int) -> Records | None:
    artifact = await artifact_with_id(graph, artifact_id)
    return await _linked_executions(graph, [artifact.info.uri]) if artifact else None


async def parent_executions(graph: GraphReader, artifact: ArtifactRecord) -> Records | None:
    """``get_all_parent_executions``: what wrote any of the artifact's ancestors."""
    uris = await graph.linked_artifacts([artifact.info.uri], upstream=True)
    if not uris:
        return None
    writers = await graph.executions_of_artifacts(uris, OUTPUT)
    found = await _execution_records(graph, (x.metadata_id for _, x in writers))
    return _frames(execution_record(r) for r in found)


async def producer_execution(graph: GraphReader, artifact: ArtifactRecord) -> dict[str, Any] | None:
    """``find_producer_execution``: the first (by server id) execution that wrote it."""
    writers = await graph.executions_of_artifacts([artifact.info.uri], OUTPUT)
    found = await _execution_records(graph, (x.metadata_id for _, x in writers))
    return execution_record(found[0]) if found else None


# Execution questions.


async def _parent_ids(
    graph: GraphReader, executions: Sequence[ExecutionRecord], pipeline_id: int | None
) -> dict[int, list[int]]:
    """Each execution's parents (the writers of what it read) by server id, each once."""
    keys = {x.info.key: x.info.metadata_id for x in executions}
    read = await graph.artifacts_of_executions(list(keys), INPUT)
    readers: dict[str, list[int]] = {}
    for key, a in read:
        readers.setdefault(a.uri, []).append(keys[key])
    writers = await graph.executions_of_artifacts(list(readers), OUTPUT)
    allowed: set[int] | None = None
    if pipeline_id is not None:
        allowed = {
            r.info.metadata_id
            for r in await _execution_records(
                graph, (x.metadata_id for _, x in writers), pipeline_id
            )
        }
    parents: dict[int, list[int]] = {x.info.metadata_id: [] for x in executions}
    for uri, writer in sorted(writers, key=lambda w: (w[1].metadata_id, w[0])):
        if allowed is not None and writer.metadata_id not in allowed:
            continue
        for child in readers.get(uri, []):
            if writer.metadata_id not in parents[child]:
                parents[child].append(writer.metadata_id)
    return parents


async def parent_execution_ids(
    graph: GraphReader, execution_id: int, pipeline_id: int | None
) -> list[int] | None:
    """``get_one_hop_parent_execution_ids``."""
    found = await _execution_records(graph, [execution_id])
    if not found:
        return None
    ids = (await _parent_ids(graph, found, pipeline_id)).get(execution_id, [])
    return ids or None


async def parent_executions_of(
    graph: GraphReader, execution_ids: Sequence[int], pipeline_id: int | None
) -> Records | None:
    """``get_one_hop_parent_executions``: the parents of any of these executions, each once."""
    found = await _execution_records(graph, execution_ids)
    if not found:
        return None
    parents = await _parent_ids(graph, found, pipeline_id)
    ids = list(dict.fromkeys(p for ps in parents.values() for p in ps))
    return _frames(execution_record(r) for r in await _execution_records(graph, ids))


async def ancestor_executions(
    graph: GraphReader, execution_ids: Sequence[int], pipeline_id: int | None
) -> dict[str, Any] | None:
    """``get_all_parent_executions_by_id``: every ancestor as ``[id, Execution_type_name,
    Execution_uuid]`` and a ``{"source": parent, "target": child}`` link per parent, found a
    generation at a time (one set-based read of each kind per generation)."""
    frontier = await _execution_records(graph, execution_ids)
    seen = {x.info.metadata_id for x in frontier}
    ancestors: list[list[Any]] = []
    links: list[dict[str, int]] = []
    while frontier:
        parents = await _parent_ids(graph, frontier, pipeline_id)
        fresh = list(dict.fromkeys(p for ps in parents.values() for p in ps if p not in seen))
        for child, ps in parents.items():
            links.extend({"source": p, "target": child} for p in ps)
        frontier = await _execution_records(graph, fresh) if fresh else []
        for x in frontier:
            seen.add(x.info.metadata_id)
            ancestors.append(
                [
                    x.info.metadata_id,
                    x.properties.get(EXECUTION_TYPE_NAME, x.info.type),
                    x.properties.get(EXECUTION_UUID, x.info.uuid),
                ]
            )
    if not ancestors and not links:
        return None
    return {"parent_executions": ancestors, "links": links}


async def artifacts_of_execution(graph: GraphReader, execution_id: int) -> Records | None:
    """``get_all_artifacts_for_execution``: each edge's artifact with its ``event``."""
    found = await _execution_records(graph, [execution_id])
    if not found:
        return None
    key = found[0].info.key
    edges = [
        (kind, a.uri)
        for kind in (INPUT, OUTPUT)
        for _, a in await graph.artifacts_of_executions([key], kind)
    ]
    records = {r.info.uri: r for r in await _records_of(graph, (u for _, u in edges))}
    edges.sort(key=lambda e: (e[0], records[e[1]].info.metadata_id if e[1] in records else 0))
    rows = [
        {"event": KIND_NAMES[kind], **artifact_record(records[uri])}
        for kind, uri in edges
        if uri in records
    ]
    return _frames(rows)


async def artifacts_of_executions(
    graph: GraphReader, execution_ids: Sequence[int]
) -> Records | None:
    """``get_all_artifacts_for_executions``: every artifact any of them read or wrote, once."""
    found = await _execution_records(graph, execution_ids)
    keys = [x.info.key for x in found]
    if not keys:
        return None
    uris = [
        a.uri
        for kind in (INPUT, OUTPUT)
        for _, a in await graph.artifacts_of_executions(keys, kind)
    ]
    return _frames(artifact_record(r) for r in await _records_of(graph, uris))
