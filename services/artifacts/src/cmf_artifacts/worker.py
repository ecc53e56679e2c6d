"""``cmf-server worker artifacts-relay``: the artifact service's outbox (its
``cmf.artifacts.blob.stored.v1`` events) relayed to ``ARTIFACT_EVENTS_TOPIC``, which the lineage
worker consumes beside the metadata events (:mod:`cmf_common.relay_worker`). The embedded
server delivers the same outbox in-process instead."""

from __future__ import annotations

from fastapi import FastAPI

from cmf_artifacts.settings import ArtifactSettings
from cmf_common.relay_worker import RelayState
from cmf_common.relay_worker import create_relay_service as relay_service
from cmf_common.service import Service


def create_relay_service(settings: ArtifactSettings | None = None) -> Service[RelayState]:
    settings = settings or ArtifactSettings()
    return relay_service(
        settings,
        topic=settings.artifact_events_topic,
        retention=settings.outbox_retention,
        name="cmf-artifacts-relay",
    )


def create_relay_app(settings: ArtifactSettings | None = None) -> FastAPI:
    return create_relay_service(settings).app
