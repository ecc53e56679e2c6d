"""A graph store in memory: what ``lineage verify`` projects the metadata export into, to
compare with a live store. It follows the same rules as the real stores (newer versions win,
edges and memberships accumulate, applied ids are skipped)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cmf_common.events import Envelope
from cmf_lineage.graph import BlobNode, GraphBatch, GraphSnapshot, progress_events, to_batch


@dataclass
class MemoryGraphStore:
    pipelines: dict[str, Any] = field(default_factory=dict)
    stages: dict[tuple[str, str], Any] = field(default_factory=dict)
    executions: dict[tuple[str, str], Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    memberships: set[tuple[str, str]] = field(default_factory=set)
    edges: set[tuple[str, str, str, int]] = field(default_factory=set)
    applied: set[tuple[str, str]] = field(default_factory=set)
    progress: dict[tuple[str, str], int] = field(default_factory=dict)
    blobs: dict[str, BlobNode] = field(default_factory=dict)

    async def apply(self, consumer: str, envelopes: list[Envelope]) -> GraphBatch | None:
        fresh = [e for e in envelopes if (consumer, e.id) not in self.applied]
        if not fresh:
            return None
        batch = to_batch(fresh)
        _newer(self.pipelines, {p.name: p for p in batch.pipelines})
        _newer(self.stages, {(s.pipeline, s.name): s for s in batch.stages})
        _newer(self.artifacts, {a.uri: a for a in batch.artifacts})
        _newer(self.executions, {(x.pipeline, x.uuid): x for x in batch.executions})
        self.memberships |= batch.memberships
        self.edges |= {(e.pipeline, e.execution, e.artifact, e.kind) for e in batch.edges}
        for blob in batch.blobs:
            known = self.blobs.get(blob.digest)
            sha256 = known.sha256 if known is not None and known.sha256 else blob.sha256
            self.blobs[blob.digest] = BlobNode(blob.digest, blob.size, sha256)
        for envelope in fresh:
            self.applied.add((consumer, envelope.id))
        for envelope in progress_events(fresh):
            key = (consumer, envelope.subject)
            self.progress[key] = max(self.progress.get(key, 0), envelope.seq)
        return batch

    async def applied_seq(self, consumer: str, pipeline: str) -> int:
        return self.progress.get((consumer, pipeline), 0)

    async def forget_applied(self, consumer: str, retention: timedelta) -> int:
        """Nothing: this store lives for one verify, and keeps no time an id was applied."""
        return 0

    async def snapshot(self) -> GraphSnapshot:
        members: dict[str, list[str]] = {}
        for uri, pipeline in sorted(self.memberships):
            members.setdefault(uri, []).append(pipeline)
        return GraphSnapshot.of(
            pipelines={n.name: [n.properties] for n in self.pipelines.values()},
            stages={f"{n.pipeline}/{n.name}": [n.properties] for n in self.stages.values()},
            executions={
                f"{x.pipeline}/{x.uuid}": [
                    x.uuids,
                    x.stage,
                    x.type,
                    x.name,
                    x.display_name,
                    x.properties,
                    x.custom_properties,
                ]
                for x in self.executions.values()
            },
            artifacts={
                a.uri: [
                    a.type,
                    a.name,
                    a.display_name,
                    a.properties,
                    a.custom_properties,
                    members.get(a.uri, []),
                ]
                for a in self.artifacts.values()
            },
            edges=self.edges,
        )


def _newer(known: dict[Any, Any], incoming: dict[Any, Any]) -> None:
    for key, node in incoming.items():
        if key not in known or node.version >= known[key].version:
            known[key] = node
