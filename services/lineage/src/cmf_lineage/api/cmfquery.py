"""Upstream's CMFQuery REST routes that are graph questions (docs/upstream-v1.md §5–§6),
answered from the lineage graph (:mod:`cmf_lineage.cmfquery`) through the lineage cache.

Upstream's conventions: a found answer is a success envelope; an empty one (unknown name, no
parents…) is HTTP 200 with ``status: "error"``, ``code: 404`` and one ``errors`` entry; a body
that does not validate is the 422 envelope. Every ``/v1/artifacts/name/…`` route is here, the
artifact's own record too: the name may hold ``/`` (``{artifact_name:path}``), so the record
route would match every graph route's path, and the gateway sends a path to one service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictInt

from cmf_common import envelope
from cmf_common.cmfquery_bodies import ExecutionIdsRequest, ServerId, ServerIds
from cmf_common.envelope import EnvelopeRoute
from cmf_common.paging import BIGINT_MAX
from cmf_lineage import cmfquery
from cmf_lineage.api.deps import Reader
from cmf_lineage.graph_reader import ArtifactRecord, GraphReader
from cmf_lineage.reads import LineageReader

router = APIRouter(
    tags=["upstream v1: CMFQuery"], responses=envelope.RESPONSES, route_class=EnvelopeRoute
)

NOT_FOUND = b"null"

# A graph question: (graph, *the route's inputs) -> what it found, or None.
Ask = Callable[..., Awaitable[Any]]
# The answer's data from the route's inputs and what the question found; None when empty.
Body = Callable[[dict[str, Any], Any], dict[str, Any] | None]
Endpoint = Callable[..., Awaitable[Response]]


class ExecutionIdsWithPipelineRequest(BaseModel):
    execution_id: ServerIds
    pipeline_id: Annotated[StrictInt, Field(ge=0, le=BIGINT_MAX)] | None = None


@dataclass(frozen=True)
class Question:
    """One CMFQuery route. ``name`` is its endpoint's (its OpenAPI operation and summary),
    ``takes`` makes its endpoint from what it takes (``_artifact_name``… below), ``query``
    names it in the cache and the metrics. Its data is ``body`` of what ``ask`` found; an
    empty answer says ``missing``'s message and detail (formatted with the route's inputs)
    about the field of its first input."""

    name: str
    method: str
    path: str
    takes: Callable[[Question], Endpoint]
    query: str
    ask: Ask
    body: Body
    message: str
    missing: tuple[str, str]


def listed(key: str) -> Body:
    """The inputs, then the records found under ``key`` with ``total_<key>``."""

    def body(inputs: dict[str, Any], found: Any) -> dict[str, Any] | None:
        return {**inputs, key: found, f"total_{key}": len(found)} if found else None

    return body


def _one_execution(inputs: dict[str, Any], found: Any) -> dict[str, Any] | None:
    return {**inputs, "execution": found} if found else None


def _ancestry(inputs: dict[str, Any], found: Any) -> dict[str, Any] | None:
    if found is None:
        return None
    return {**inputs, **found, "total_parent_executions": len(found["parent_executions"])}


async def _record(_graph: GraphReader, artifact: ArtifactRecord) -> Any:
    return [cmfquery.artifact_record(artifact)]


def _of_artifact(ask: Ask) -> Ask:
    """``ask`` about the artifact named by the first input; nothing when there is none."""

    async def asked(graph: GraphReader, artifact_name: str, *rest: Any) -> Any:
        artifact = await cmfquery.artifact_named(graph, artifact_name)
        return await ask(graph, artifact, *rest) if artifact is not None else None

    return asked


async def _answer(
    question: Question,
    reader: LineageReader,
    inputs: dict[str, Any],
    cached_by: dict[str, Any],
    ask: Ask,
) -> Response:
    """The question's ``data`` (cached), or upstream's 200 ``code: 404`` when it is empty."""

    async def compute() -> dict[str, Any] | None:
        return question.body(inputs, await ask(reader.graph, *inputs.values()))

    body = await reader.answer(f"cmfquery-{question.query}", cached_by, compute)
    if body == NOT_FOUND:
        message, detail = question.missing
        return envelope.not_found(message, next(iter(inputs)), detail.format(**inputs))
    return envelope.success_json(body, question.message)


# What a route takes: its endpoint's signature (its OpenAPI parameters and body), its inputs in
# the answer and the cache's key.


def _artifact_name(question: Question) -> Endpoint:
    ask = _of_artifact(question.ask)

    async def endpoint(artifact_name: str, reader: Reader) -> Response:
        inputs = {"artifact_name": artifact_name}
        return await _answer(question, reader, inputs, {"n": artifact_name}, ask)

    return endpoint


def _artifact_name_in_pipeline(question: Question) -> Endpoint:
    ask = _of_artifact(question.ask)

    async def endpoint(
        artifact_name: str, reader: Reader, pipeline_id: int | None = None
    ) -> Response:
        inputs = {"artifact_name": artifact_name, "pipeline_id": pipeline_id}
        cached_by = {"n": artifact_name, "pipeline_id": pipeline_id}
        return await _answer(question, reader, inputs, cached_by, ask)

    return endpoint


def _artifact_id(question: Question) -> Endpoint:
    async def endpoint(artifact_id: ServerId, reader: Reader) -> Response:
        inputs = {"artifact_id": artifact_id}
        return await _answer(question, reader, inputs, {"id": artifact_id}, question.ask)

    return endpoint


def _execution_id(question: Question) -> Endpoint:
    async def endpoint(execution_id: ServerId, reader: Reader) -> Response:
        inputs = {"execution_id": execution_id}
        return await _answer(question, reader, inputs, {"id": execution_id}, question.ask)

    return endpoint


def _execution_id_in_pipeline(question: Question) -> Endpoint:
    async def endpoint(
        execution_id: ServerId, reader: Reader, pipeline_id: int | None = None
    ) -> Response:
        inputs = {"execution_id": execution_id, "pipeline_id": pipeline_id}
        cached_by = {"id": execution_id, "p": pipeline_id}
        return await _answer(question, reader, inputs, cached_by, question.ask)

    return endpoint


def _execution_ids_in_pipeline(question: Question) -> Endpoint:
    async def endpoint(request: ExecutionIdsWithPipelineRequest, reader: Reader) -> Response:
        inputs = {"execution_id": request.execution_id, "pipeline_id": request.pipeline_id}
        cached_by = {"ids": request.execution_id, "p": request.pipeline_id}
        return await _answer(question, reader, inputs, cached_by, question.ask)

    return endpoint


def _exe_ids(question: Question) -> Endpoint:
    async def endpoint(request: ExecutionIdsRequest, reader: Reader) -> Response:
        inputs = {"exe_ids": request.exe_ids}
        return await _answer(question, reader, inputs, {"ids": request.exe_ids}, question.ask)

    return endpoint


NAME = "/artifacts/name/{artifact_name:path}"
ID = "/artifacts/id/{artifact_id}"

# Registered in this order: the artifacts by name before the record route, which matches their
# paths too.
QUESTIONS = (
    # Artifacts by name.
    Question(
        "artifact_dataframe", "GET", f"{NAME}/dataframe", _artifact_name,
        "dataframe", _record, listed("artifacts"),
        "Artifact dataframe retrieved successfully",
        ("Artifact not found", "Artifact '{artifact_name}' not found"),
    ),
    Question(
        "children", "GET", f"{NAME}/children", _artifact_name_in_pipeline,
        "children", cmfquery.children, listed("artifacts"),
        "One-hop child artifacts retrieved successfully",
        ("Artifacts not found", "Child artifacts not found for artifact '{artifact_name}'"),
    ),
    Question(
        "descendants", "GET", f"{NAME}/descendants", _artifact_name,
        "descendants", partial(cmfquery.linked, upstream=False), listed("artifacts"),
        "All child artifacts retrieved successfully",
        ("Artifacts not found", "Child artifacts not found for artifact '{artifact_name}'"),
    ),
    Question(
        "parents", "GET", f"{NAME}/parents", _artifact_name,
        "parents", cmfquery.parents, listed("artifacts"),
        "One-hop parent artifacts retrieved successfully",
        ("Artifacts not found", "Parent artifacts not found for artifact '{artifact_name}'"),
    ),
    Question(
        "ancestors", "GET", f"{NAME}/ancestors", _artifact_name,
        "ancestors", partial(cmfquery.linked, upstream=True), listed("artifacts"),
        "All parent artifacts retrieved successfully",
        ("Artifacts not found", "Parent artifacts not found for artifact '{artifact_name}'"),
    ),
    Question(
        "artifact_executions", "GET", f"{NAME}/executions", _artifact_name,
        "executions", cmfquery.executions_of, listed("executions"),
        "Executions for artifact retrieved successfully",
        ("Executions not found", "Executions not found for artifact '{artifact_name}'"),
    ),
    Question(
        "parent_executions", "GET", f"{NAME}/parent-executions", _artifact_name,
        "parent-executions", cmfquery.parent_executions, listed("executions"),
        "All parent executions retrieved successfully",
        ("Executions not found", "Parent executions not found for artifact '{artifact_name}'"),
    ),
    Question(
        "producer_execution", "GET", f"{NAME}/producer-execution", _artifact_name,
        "producer-execution", cmfquery.producer_execution, _one_execution,
        "Producer execution retrieved successfully",
        (
            "Producer execution not found",
            "Producer execution not found for artifact '{artifact_name}'",
        ),
    ),
    Question(
        "artifact", "GET", NAME, _artifact_name,
        "artifact", _record, listed("artifacts"),
        "Artifact retrieved successfully",
        ("Artifacts not found", "Artifact '{artifact_name}' not found"),
    ),
    # Artifacts by server id.
    Question(
        "parents_of_id", "GET", f"{ID}/parents", _artifact_id,
        "id-parents", cmfquery.parents_of_id, listed("artifacts"),
        "One-hop parent artifacts retrieved successfully",
        ("Artifacts not found", "Parent artifacts not found for artifact id {artifact_id}"),
    ),
    Question(
        "executions_of_id", "GET", f"{ID}/executions", _artifact_id,
        "id-executions", cmfquery.executions_of_id, listed("executions"),
        "Executions for artifact retrieved successfully",
        ("Executions not found", "Executions not found for artifact id {artifact_id}"),
    ),
    # Executions.
    Question(
        "parent_execution_ids", "GET", "/executions/id/{execution_id}/parents/ids",
        _execution_id_in_pipeline,
        "parent-ids", cmfquery.parent_execution_ids, listed("parent_execution_ids"),
        "One-hop parent execution ids retrieved successfully",
        (
            "Parent execution ids not found",
            "Parent execution ids not found for execution id {execution_id}",
        ),
    ),
    Question(
        "parent_executions_batch", "POST", "/executions/parents/batch-get",
        _execution_ids_in_pipeline,
        "parents-batch", cmfquery.parent_executions_of, listed("executions"),
        "One-hop parent executions retrieved successfully",
        ("Executions not found", "Parent executions not found for execution ids {execution_id}"),
    ),
    Question(
        "ancestor_executions_batch", "POST", "/executions/ancestors/batch-get",
        _execution_ids_in_pipeline,
        "ancestors-batch", cmfquery.ancestor_executions, _ancestry,
        "All parent executions retrieved successfully",
        (
            "Parent executions not found",
            "Parent executions not found for execution ids {execution_id}",
        ),
    ),
    Question(
        "execution_artifacts", "GET", "/executions/id/{execution_id}/artifacts", _execution_id,
        "execution-artifacts", cmfquery.artifacts_of_execution, listed("artifacts"),
        "Artifacts for execution retrieved successfully",
        ("Artifacts not found", "Artifacts not found for execution id {execution_id}"),
    ),
    Question(
        "executions_artifacts_batch", "POST", "/executions/artifacts/batch-get", _exe_ids,
        "executions-artifacts", cmfquery.artifacts_of_executions, listed("artifacts"),
        "Artifacts for executions retrieved successfully",
        ("Artifacts not found", "Artifacts not found for execution ids {exe_ids}"),
    ),
)  # fmt: skip

for _question in QUESTIONS:
    router.add_api_route(
        _question.path,
        _question.takes(_question),
        methods=[_question.method],
        name=_question.name,
    )
