"""What metadata events mean for the lineage graph, independent of where the graph is stored.

Node keys are the client's stable keys (docs/wire-contract.md §2.3): pipeline name, stage
name, execution uuid (the first of its comma list, which never changes when a re-used
execution gains uuids) within its pipeline (the merge deduplicates uuids per pipeline, as the
reference does) and artifact uri. Each node carries ``version``, the metadata row's own
last-update time, so a replayed or late update never overwrites a newer one.

The artifact service's ``cmf.artifacts.blob.stored.v1`` events add the blobs it holds (digest,
size, sha256), kept apart from the artifacts: an artifact is ``stored`` when a blob's digest is
its uri. So a blob stored before its artifact is pushed (or one that is a file of a directory
artifact, no artifact of its own) is marked all the same, in whatever order the two streams
arrive, and a replay changes nothing. Blobs are not derived from the metadata, so a rebuild
keeps them and the snapshot (what the metadata export describes) leaves them out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from cmf_common import artifact_events
from cmf_common.dispatch import PermanentError
from cmf_common.events import Envelope
from cmf_common.metadata_events import (
    EVENT_TYPES,
    INPUT,
    OUTPUT,
    ArtifactUpserted,
    ExecutionMerged,
    MalformedEvent,
    PipelineUpserted,
    StageUpserted,
    parse_envelope,
)
from cmf_lineage.display import artifact_display_name, execution_display_name

EDGE_KINDS = {INPUT: "INPUT", OUTPUT: "OUTPUT"}
# The projector handles every metadata event type and the artifact service's blob events.
BLOB_TYPES = artifact_events.EVENT_TYPES
PROJECTED_TYPES = EVENT_TYPES + BLOB_TYPES


@dataclass(frozen=True)
class PipelineNode:
    name: str
    properties: dict[str, Any]
    version: int


@dataclass(frozen=True)
class StageNode:
    pipeline: str
    name: str
    properties: dict[str, Any]
    version: int


@dataclass(frozen=True)
class ArtifactNode:
    uri: str
    type: str
    name: str
    display_name: str
    metadata_id: int
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    create_time: int
    version: int


@dataclass(frozen=True)
class ExecutionNode:
    uuid: str
    uuids: list[str]
    pipeline: str
    stage: str
    type: str
    name: str
    display_name: str
    metadata_id: int
    properties: dict[str, Any]
    custom_properties: dict[str, Any]
    version: int


@dataclass(frozen=True)
class BlobNode:
    """A blob the artifact service holds: the artifact whose uri is ``digest`` is stored."""

    digest: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class Edge:
    """artifact -INPUT-> execution, or execution -OUTPUT-> artifact, within a pipeline."""

    execution: str
    artifact: str
    kind: int
    pipeline: str


@dataclass
class GraphBatch:
    pipelines: list[PipelineNode] = field(default_factory=list)
    stages: list[StageNode] = field(default_factory=list)
    artifacts: list[ArtifactNode] = field(default_factory=list)
    memberships: set[tuple[str, str]] = field(default_factory=set)  # (uri, pipeline)
    executions: list[ExecutionNode] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    blobs: list[BlobNode] = field(default_factory=list)
    # Blob events applied: they count into the graph's version (see ``progress_events``).
    blob_events: int = 0

    def merged(self, other: GraphBatch) -> GraphBatch:
        """Both batches' writes, for reporting what several transactions did together."""
        return GraphBatch(
            pipelines=self.pipelines + other.pipelines,
            stages=self.stages + other.stages,
            artifacts=self.artifacts + other.artifacts,
            memberships=self.memberships | other.memberships,
            executions=self.executions + other.executions,
            edges=self.edges + other.edges,
            blobs=self.blobs + other.blobs,
            blob_events=self.blob_events + other.blob_events,
        )

    def writes(self) -> int:
        """Nodes, edges and memberships merged: the unit the projection's throughput is counted
        in. A push's artifacts event records each artifact's membership with the artifact; its
        executions event repeats the membership for every artifact an edge links, but that is
        implied by the edge (counted already), so only memberships of artifacts this batch
        upserts count, and each membership is counted once per push."""
        upserted = {a.uri for a in self.artifacts}
        return (
            len(self.pipelines)
            + len(self.stages)
            + len(self.artifacts)
            + len(self.executions)
            + len(self.edges)
            + len(self.blobs)
            + sum(1 for uri, _ in self.memberships if uri in upserted)
        )


@dataclass(frozen=True)
class GraphSnapshot:
    """A store-independent picture of a graph: node keys with their content (as canonical
    JSON), and edges. Two stores, or a rebuilt and an incremental graph, compare equal when
    their snapshots do."""

    nodes: dict[str, dict[str, str]]
    edges: frozenset[tuple[str, str, str, int]]  # (pipeline, execution, artifact, kind)

    @classmethod
    def of(cls, *, edges: set[tuple[str, str, str, int]], **kinds: dict[str, Any]) -> GraphSnapshot:
        return cls(
            nodes={
                kind: {
                    key: json.dumps(value, sort_keys=True, default=str)
                    for key, value in nodes.items()
                }
                for kind, nodes in kinds.items()
            },
            edges=frozenset(edges),
        )

    def differences(self, other: GraphSnapshot, limit: int = 20) -> list[str]:
        found: list[str] = []
        for kind in sorted(set(self.nodes) | set(other.nodes)):
            mine, theirs = self.nodes.get(kind, {}), other.nodes.get(kind, {})
            for key in sorted(set(mine) | set(theirs)):
                if mine.get(key) != theirs.get(key):
                    found.append(f"{kind} {key}: {mine.get(key)} != {theirs.get(key)}")
        for edge in sorted(self.edges ^ other.edges):
            side = "only in first" if edge in self.edges else "only in second"
            found.append(f"edge {edge} {side}")
        return found[:limit]


class GraphStore(Protocol):
    """Where the projected graph lives: PostgreSQL (schema ``lineage``) or Neo4j."""

    async def apply(self, consumer: str, envelopes: list[Envelope]) -> GraphBatch | None:
        """Apply the events not applied before, in one transaction, and record each pipeline's
        highest applied sequence; ``None`` when every event had been applied already."""
        ...

    async def applied_seq(self, consumer: str, pipeline: str) -> int: ...

    async def forget_applied(self, consumer: str, retention: timedelta) -> int:
        """Forget the ids of events ``consumer`` applied longer than ``retention`` ago; returns
        how many. Its progress stays."""
        ...

    async def snapshot(self) -> GraphSnapshot: ...


def to_batch(envelopes: list[Envelope]) -> GraphBatch:
    """The graph writes ``envelopes`` ask for; later duplicates of a key win only if newer."""
    batch = GraphBatch()
    try:
        for envelope in envelopes:
            _add(batch, envelope)
    except MalformedEvent as exc:
        raise PermanentError(str(exc)) from exc
    batch.pipelines = _newest(batch.pipelines, lambda n: n.name)
    batch.stages = _newest(batch.stages, lambda n: (n.pipeline, n.name))
    batch.artifacts = _newest(batch.artifacts, lambda n: n.uri)
    batch.executions = _newest(batch.executions, lambda n: (n.pipeline, n.uuid))
    batch.edges = list(set(batch.edges))
    batch.blobs = _blobs(batch.blobs)
    return batch


def progress_events(envelopes: list[Envelope]) -> list[Envelope]:
    """The envelopes whose subject's applied sequence is recorded: the metadata events (their
    subject a pipeline, what consistency tokens wait on). A blob event's subject is its digest,
    each with one event: they are counted instead (``GraphBatch.blob_events`` raise a counter of
    the consumer's, part of its graph version), so the progress keeps one row per pipeline, not
    one per blob."""
    return [e for e in envelopes if e.type not in BLOB_TYPES]


def _blobs(blobs: list[BlobNode]) -> list[BlobNode]:
    """One node per digest, sorted (writers lock rows in one order); a sha256 any of the events
    knew is kept (a blob found in the store first has none)."""
    chosen: dict[str, BlobNode] = {}
    for blob in blobs:
        known = chosen.get(blob.digest)
        if known is not None and blob.sha256 is None:
            blob = BlobNode(blob.digest, blob.size, known.sha256)
        chosen[blob.digest] = blob
    return [chosen[d] for d in sorted(chosen)]


def _newest(nodes: list[Any], key: Any) -> list[Any]:
    chosen: dict[Any, Any] = {}
    for node in nodes:
        known = chosen.get(key(node))
        if known is None or node.version >= known.version:
            chosen[key(node)] = node
    return [chosen[k] for k in sorted(chosen)]  # sorted: writers lock rows in one order


def _add(batch: GraphBatch, envelope: Envelope) -> None:
    if envelope.type not in PROJECTED_TYPES:
        return  # not an event the graph draws
    if envelope.type in BLOB_TYPES:
        blob = artifact_events.parse_envelope(envelope)
        batch.blobs.append(BlobNode(blob.digest, blob.size, blob.sha256))
        batch.blob_events += 1
        return
    event = parse_envelope(envelope)
    if isinstance(event, PipelineUpserted):
        p = event.pipeline
        batch.pipelines.append(PipelineNode(p.name, p.properties, envelope.seq))
    elif isinstance(event, StageUpserted):
        for s in event.stages:
            batch.stages.append(StageNode(event.pipeline, s.name, s.properties, envelope.seq))
    elif isinstance(event, ArtifactUpserted):
        for a in event.artifacts:
            batch.artifacts.append(
                ArtifactNode(
                    uri=a.uri,
                    type=a.type,
                    name=a.name,
                    display_name=artifact_display_name(a.type, a.name, a.uri),
                    metadata_id=a.id,
                    properties=a.properties,
                    custom_properties=a.custom_properties,
                    create_time=a.create_time_since_epoch,
                    version=a.last_update_time_since_epoch,
                )
            )
            batch.memberships.add((a.uri, event.pipeline))
    elif isinstance(event, ExecutionMerged):
        pipeline = event.pipeline
        for x in event.executions:
            key = x.uuids[0]
            batch.executions.append(
                ExecutionNode(
                    uuid=key,
                    uuids=x.uuids,
                    pipeline=pipeline,
                    stage=x.stage,
                    type=x.type,
                    name=x.name,
                    display_name=execution_display_name(x.type, key),
                    metadata_id=x.id,
                    properties=x.properties,
                    custom_properties=x.custom_properties,
                    version=x.last_update_time_since_epoch,
                )
            )
            for link in x.events:
                if link.type in EDGE_KINDS:
                    batch.edges.append(Edge(key, link.artifact_uri, link.type, pipeline))
                    batch.memberships.add((link.artifact_uri, pipeline))
