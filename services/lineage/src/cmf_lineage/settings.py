from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

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
