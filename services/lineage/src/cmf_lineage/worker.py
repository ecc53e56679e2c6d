"""``cmf-server worker lineage``: the projector as a Kafka consumer (group ``cmf-lineage``) of
the metadata events and the artifact service's (``ARTIFACT_EVENTS_TOPIC``),
with /livez (its loop's liveness, see :mod:`cmf_common.workers`), /readyz (graph store and the
loop) and /metrics. With ``REDIS_URL`` it posts the graph's version to the Redis board after
each commit, at start and every ``LINEAGE_VERSION_SYNC_S`` (see :mod:`cmf_lineage.versions`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass

from fastapi import FastAPI

from cmf_common.dispatch import Dispatcher
from cmf_common.kafka import KafkaConsumerRunner, KafkaPublisher
from cmf_common.service import Checks, Service, build_service
from cmf_lineage.board import RedisBoard
from cmf_lineage.projector import Projector
from cmf_lineage.settings import LineageSettings
from cmf_lineage.store import OpenStore, open_graph_reader, open_graph_store
from cmf_lineage.versions import GraphVersions


@dataclass(frozen=True)
class ProjectorState:
    graph: OpenStore
    runner: KafkaConsumerRunner


def create_projector_service(settings: LineageSettings | None = None) -> Service[ProjectorState]:
    settings = settings or LineageSettings()
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError("the lineage worker needs KAFKA_BOOTSTRAP_SERVERS")
    bootstrap = settings.kafka_bootstrap_servers

    @asynccontextmanager
    async def start() -> AsyncIterator[ProjectorState]:
        async with open_graph_store(settings) as opened:
            group = settings.lineage_consumer_group
            board = RedisBoard(settings.redis_url) if settings.redis_url else None
            versions = (
                GraphVersions(
                    await open_graph_reader(opened),
                    group,
                    board,
                    sync_every_s=settings.lineage_version_sync_s,
                )
                if board is not None
                else None
            )
            projector = Projector(opened.store, consumer=group, versions=versions)
            dead_letters = KafkaPublisher(bootstrap, client_id="cmf-lineage-dlq")
            await dead_letters.start()
            runner = KafkaConsumerRunner(
                bootstrap_servers=bootstrap,
                topic=settings.events_topic,
                # The artifact service's blob events mark artifacts stored (cmf_lineage.graph).
                also_topics=(settings.artifact_events_topic,),
                group_id=group,
                dispatcher=Dispatcher(group, projector.handlers()),
                dead_letters=dead_letters,
                housekeeping=lambda: opened.store.forget_applied(group, settings.inbox_retention),
                stall_after_s=settings.loop_stall_s,
            )
            stop = asyncio.Event()
            try:
                await runner.start()
                task = asyncio.create_task(runner.run(stop), name="lineage-projector")
                try:
                    async with versions.kept_synced() if versions is not None else nullcontext():
                        yield ProjectorState(opened, runner)
                finally:
                    # SIGTERM: finish and commit the batch in hand, then close.
                    stop.set()
                    with suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(task, timeout=60)
            finally:
                await runner.stop()
                await dead_letters.stop()
                if board is not None:
                    await board.close()

    def checks(state: ProjectorState | None) -> Checks:
        if state is None:
            return {"graph": None, "loop": None}
        return {"graph": state.graph.check, "loop": state.runner.loop.check}

    return build_service(
        settings=settings,
        title="CMF Server — lineage projector",
        kind=ProjectorState,
        start=start,
        checks=checks,
        liveness=lambda state: state.runner.loop.check,
    )


def create_projector_app(settings: LineageSettings | None = None) -> FastAPI:
    return create_projector_service(settings).app
