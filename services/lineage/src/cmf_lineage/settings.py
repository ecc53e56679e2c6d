from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import Field, SecretStr

from cmf_common.settings import ServiceSettings


class LineageSettings(ServiceSettings):
    service_name: ClassVar[str] = "lineage"

    # Neo4j when set; otherwise the graph lives in this service's PostgreSQL schema.
    neo4j_uri: str | None = None
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr | None = None
    # The Kafka consumer group and the name the graph records applied events under; a second
    # projection of the same topic (another store, a rebuild) takes a name of its own.
    lineage_consumer_group: str = "cmf-lineage"
    # The projector remembers the ids of the events it applied this long (ISO 8601 duration or
    # seconds), to skip redeliveries; then forgets them (see cmf_common.inbox.forget_older_than).
    inbox_retention: timedelta = Field(default=timedelta(days=7))
    # Lineage answers are cached in Redis when set, else in an in-process LRU.
    redis_url: str | None = None
    lineage_cache_ttl_s: int = Field(default=300, ge=1)
    lineage_cache_max_entries: int = Field(default=2048, ge=1)
    # With Redis, the graph version is posted there for reads (the projector posts it after
    # each commit); every process posts the store's version this often, healing a lost post.
    lineage_version_sync_s: float = Field(default=1.0, gt=0)
    # How long a read waits for the projection to reach the pushes already acknowledged for the
    # pipelines it covers (and its X-CMF-Consistency-Token's) before a 503
    # (cmf_lineage.consistency).
    lineage_consistency_wait_s: float = Field(default=5.0, gt=0)
    # The metadata service, asked for the pipelines' committed sequences when the board fails a
    # read (distributed; the embedded server asks its in-process metadata app).
    metadata_url: str | None = None
