"""``cmf-server worker relay``: the metadata service's outbox relay as a process of its own
(:mod:`cmf_common.relay_worker`)."""

from __future__ import annotations

from fastapi import FastAPI

from cmf_common.relay_worker import RelayState
from cmf_common.relay_worker import create_relay_service as relay_service
from cmf_common.service import Service
from cmf_metadata.settings import MetadataSettings


def create_relay_service(settings: MetadataSettings | None = None) -> Service[RelayState]:
    settings = settings or MetadataSettings()
    return relay_service(
        settings,
        topic=settings.events_topic,
        retention=settings.outbox_retention,
        batch_rows=settings.relay_batch_rows,
        subjects_per_round=settings.relay_subjects_per_round,
    )


def create_relay_app(settings: MetadataSettings | None = None) -> FastAPI:
    return create_relay_service(settings).app
