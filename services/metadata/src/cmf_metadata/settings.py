from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from cmf_common.settings import ServiceSettings


class MetadataSettings(ServiceSettings):
    service_name: ClassVar[str] = "metadata"

    # Pushes of large pipelines are large: the reference's proxy once refused them with 413.
    max_body_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)

    # A push whose body is larger is spooled to disk and merged in a process of its own
    # (cmf_metadata.big_push), so reading it never stalls other requests; at most
    # ``big_pushes`` such pushes run at once, one more is answered 503 with ``Retry-After``
    # (``big_push_retry_after_s``). Spool files go to ``push_spool_dir`` (default: a
    # ``.spool`` folder in ``files_dir``): a disk, not memory.
    big_push_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    big_pushes: int = Field(default=2, ge=1)
    big_push_retry_after_s: int = Field(default=30, ge=1)
    push_spool_dir: Path | None = None

    # Where uploaded python-env, label and tensorboard files live (the FileStore's folder).
    files_dir: Path = Field(default=Path("/var/lib/cmf-server/files"))
    # ``local``: in ``files_dir``; ``artifacts``: in the artifact service's store (through its
    # API at ``artifacts_url``, or the embedded server's in-process artifact app), so that the
    # replicas of a distributed metadata service share them. Unset: ``artifacts`` when
    # ``ARTIFACTS_URL`` is set, else ``local``.
    files_storage: Literal["local", "artifacts"] | None = None
    # The largest python-env, label or tensorboard file one upload may carry (413 beyond).
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    # ``TENSORBOARD_URL``: where a TensorBoard over the uploaded logs answers (the web UI links
    # there); unset, the UI says TensorBoard is not configured.
    tensorboard_url: str | None = None

    # Published outbox rows are kept this long (ISO 8601 duration or seconds), then deleted.
    outbox_retention: timedelta = Field(default=timedelta(days=7))
    # Outbox rows the relay publishes per round (one transaction, one batch of acks).
    relay_batch_rows: int = Field(default=5000, ge=1)
    # Pipelines one relay round takes rows of, oldest waiting first; each is locked for the
    # round, so several relays share the backlog without two sending one pipeline's events.
    relay_subjects_per_round: int = Field(default=500, ge=1)
    # With Redis, each push posts its pipeline's committed outbox sequence there before it
    # answers, for lineage reads to wait on (cmf_common.committed); a refused post is retried.
    redis_url: str | None = None
    # The artifact service, asked which artifacts have their bytes stored (distributed; the
    # embedded server hands in its in-process artifact app). Unset: none is.
    artifacts_url: str | None = None

    # Metahub (docs/metahub.md). The key peer tokens are encrypted with at rest (unset: a
    # registration that carries a token is refused); never logged.
    metahub_secret_key: SecretStr | None = None
    # Calls to peers: connect and read timeouts (a full pull of a big pipeline reads long).
    metahub_connect_timeout_s: float = Field(default=5.0, gt=0)
    metahub_read_timeout_s: float = Field(default=120.0, gt=0)
    # A sync's next start is the peer's clock at this sync's start less this overlap, so a
    # push committing while the pull read is pulled again (merged as exists), not lost.
    metahub_sync_overlap_ms: int = Field(default=5000, ge=0)
    # The host names a peer may be registered at, comma separated (unset: any host). The
    # server calls every registered peer, so an operator can keep those calls inside a network.
    metahub_peer_hosts: str | None = None
    # How often the schedule runner looks for due schedules (the reference: 30 s).
    metahub_scheduler_interval_s: float = Field(default=30.0, gt=0)

    def peer_hosts(self) -> frozenset[str] | None:
        """``METAHUB_PEER_HOSTS`` as lower-case host names (None: unset, any host)."""
        if self.metahub_peer_hosts is None:
            return None
        return frozenset(h.strip().lower() for h in self.metahub_peer_hosts.split(",") if h.strip())

    @property
    def files_in_artifact_store(self) -> bool:
        if self.files_storage is None:
            return self.artifacts_url is not None
        return self.files_storage == "artifacts"
