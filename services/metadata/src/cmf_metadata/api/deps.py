"""The metadata service's typed state and every ``Annotated`` dependency its routes take.

The lifespan (``cmf_metadata.app``) makes one :class:`MetadataState` once the pool is open;
routes get its pieces from here, never from ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import httpx
from fastapi import Depends, Request

from cmf_common.committed import CommittedPublisher
from cmf_common.service import state_of
from cmf_metadata import files
from cmf_metadata.big_push import BigPushes, BigPushSettings
from cmf_metadata.match_counts import MatchCounts
from cmf_metadata.metahub.peers import TokenCipher
from cmf_metadata.metahub.service import Metahub
from cmf_metadata.settings import MetadataSettings
from cmf_metadata.stored import NothingStored, StoredBlobs
from cmf_metadata.views import StageColumnsKept


@dataclass
class MetadataState:
    """What the metadata routes use while the app runs."""

    settings: MetadataSettings
    pool: asyncpg.Pool
    file_store: files.FileStore
    match_counts: MatchCounts = field(default_factory=MatchCounts)
    # The web UI's stage columns, kept per pipeline version (cmf_metadata.views).
    stage_columns: StageColumnsKept = field(default_factory=StageColumnsKept)
    # Where a push posts its pipeline's committed sequence before it answers (None: nowhere).
    committed: CommittedPublisher | None = None
    # Which artifacts have their bytes stored (the artifact service's answer).
    stored: StoredBlobs = field(default_factory=NothingStored)
    # Registrations, syncs and schedules of peers (its HTTP client made by the lifespan).
    metahub: Metahub | None = None
    big_pushes: BigPushes | None = None

    def __post_init__(self) -> None:
        if self.big_pushes is None:
            s = self.settings
            self.big_pushes = BigPushes(
                BigPushSettings(
                    threshold_bytes=s.big_push_bytes,
                    concurrency=s.big_pushes,
                    retry_after_s=s.big_push_retry_after_s,
                    spool_dir=s.push_spool_dir or s.files_dir / ".spool",
                    database_url=s.database_url.get_secret_value() if s.database_url else None,
                    schema=s.db_schema,
                    statement_timeout_ms=s.database_statement_timeout_ms,
                )
            )

    @classmethod
    def on(
        cls,
        settings: MetadataSettings,
        pool: asyncpg.Pool,
        committed: CommittedPublisher | None = None,
        stored: StoredBlobs | None = None,
        peers: httpx.AsyncClient | None = None,
        file_store: files.FileStore | None = None,
    ) -> MetadataState:
        """The state over ``pool``, files in ``file_store`` (None: a local folder at
        ``settings.files_dir``); peers called through ``peers`` (None: a client of its own,
        with the settings' timeouts)."""
        secret = settings.metahub_secret_key
        file_store = file_store or files.LocalFileStore(settings.files_dir)
        metahub = Metahub(
            pool,
            peers if peers is not None else peer_client(settings),
            cipher=TokenCipher(secret.get_secret_value()) if secret is not None else None,
            committed=committed,
            overlap_ms=settings.metahub_sync_overlap_ms,
            peer_hosts=settings.peer_hosts(),
            files=file_store,
            max_file_bytes=settings.max_upload_bytes,
        )
        return cls(
            settings=settings,
            pool=pool,
            file_store=file_store,
            committed=committed,
            stored=stored if stored is not None else NothingStored(),
            metahub=metahub,
        )


def peer_client(settings: MetadataSettings) -> httpx.AsyncClient:
    """The client Metahub calls peers with: timeouts from settings, no redirects followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.metahub_read_timeout_s, connect=settings.metahub_connect_timeout_s
        ),
        follow_redirects=False,
    )


def get_state(request: Request) -> MetadataState:
    return state_of(request.app, MetadataState)


State = Annotated[MetadataState, Depends(get_state)]


def get_pool(state: State) -> asyncpg.Pool:
    return state.pool


def get_match_counts(state: State) -> MatchCounts:
    return state.match_counts


def get_store(state: State) -> files.FileStore:
    return state.file_store


def get_committed(state: State) -> CommittedPublisher | None:
    return state.committed


def get_big_pushes(state: State) -> BigPushes:
    assert state.big_pushes is not None
    return state.big_pushes


def get_upload_limit(state: State) -> int:
    return state.settings.max_upload_bytes


def get_stored(state: State) -> StoredBlobs:
    return state.stored


def get_metahub(state: State) -> Metahub:
    assert state.metahub is not None, "MetadataState.on makes the Metahub"
    return state.metahub


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]
Hub = Annotated[Metahub, Depends(get_metahub)]
Stored = Annotated[StoredBlobs, Depends(get_stored)]
Counts = Annotated[MatchCounts, Depends(get_match_counts)]
Store = Annotated[files.FileStore, Depends(get_store)]
UploadLimit = Annotated[int, Depends(get_upload_limit)]
Committed = Annotated[CommittedPublisher | None, Depends(get_committed)]
BigPushesOf = Annotated[BigPushes, Depends(get_big_pushes)]
