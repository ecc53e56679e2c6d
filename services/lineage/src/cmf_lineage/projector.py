"""The projector: the handlers that turn metadata events into the lineage graph.

They are the same whether events arrive from Kafka (``cmf-server worker lineage``) or straight
from the outbox (the embedded server). Applying is idempotent and order-tolerant: replaying any
prefix, or everything, leaves the same graph.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import Counter, Histogram

from cmf_common.dispatch import Handler
from cmf_common.events import Envelope
from cmf_lineage.graph import PROJECTED_TYPES, GraphStore
from cmf_lineage.versions import GraphVersions

CONSUMER = "cmf-lineage"

GRAPH_WRITES = Counter("cmf_lineage_graph_writes_total", "Nodes and edges merged into the graph.")
PROJECTION_LAG = Histogram(
    "cmf_lineage_projection_lag_seconds",
    "From an event's commit to its graph commit.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)


class Projector:
    def __init__(
        self, store: GraphStore, consumer: str = CONSUMER, versions: GraphVersions | None = None
    ) -> None:
        self.store = store
        self.consumer = consumer
        # Where the graph's version is posted for readers, right after each commit.
        self.versions = versions

    async def apply(self, envelopes: list[Envelope]) -> None:
        batch = await self.store.apply(self.consumer, envelopes)
        if batch is None:
            return
        if self.versions is not None:
            await self.versions.publish()
        GRAPH_WRITES.inc(batch.writes())
        now = time.time()
        for envelope in envelopes:
            PROJECTION_LAG.observe(
                max(0.0, now - datetime.fromisoformat(envelope.time).timestamp())
            )

    def handlers(self) -> dict[str, Handler]:
        return dict.fromkeys(PROJECTED_TYPES, self.apply)
