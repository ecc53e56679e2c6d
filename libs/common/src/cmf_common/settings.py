"""Settings shared by every service.

Each service reads its own settings class, built on :class:`ServiceSettings`. The database URL is
looked up as ``<SERVICE>_DATABASE_URL`` first and ``DATABASE_URL`` second, so one PostgreSQL can
serve every schema in the embedded server while production gives each service its own.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service process needs to start; unknown env vars are ignored."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    service_name: ClassVar[str] = "service"

    database_url: SecretStr | None = Field(default=None)
    database_pool_min: int = Field(default=1, ge=0)
    database_pool_max: int = Field(default=10, ge=1)
    database_statement_timeout_ms: int = Field(default=300_000, ge=0)
    # Bounds on reaching PostgreSQL, so a request never hangs on a database that is down or
    # saturated (it answers 503 with Retry-After instead): opening one connection, and waiting
    # for one from the pool (opening included).
    database_connect_timeout_s: float = Field(default=5.0, gt=0)
    database_acquire_timeout_s: float = Field(default=30.0, gt=0)
    # A background loop that has made no progress for this long while work waits fails
    # /livez and /health, whatever the reason (cmf_common.workers).
    loop_stall_s: float = Field(default=60.0, gt=0)
    log_level: str = "INFO"
    log_json: bool = True
    otel_service_namespace: str = "cmf-server"
    readiness_timeout_s: float = Field(default=2.0, gt=0)
    # /docs and /redoc: FastAPI's pages load their scripts from a CDN, so they are off unless
    # asked for (an offline server would serve a blank page); /openapi.json is always served.
    api_docs: bool = False
    # The event bus; unset in the embedded server, which delivers events in-process.
    kafka_bootstrap_servers: str | None = None
    events_topic: str = "cmf.metadata.v1"

    @model_validator(mode="before")
    @classmethod
    def _service_database_url_wins(cls, values: dict[str, object]) -> dict[str, object]:
        override = os.environ.get(f"{cls.service_name.upper()}_DATABASE_URL")
        if override and isinstance(values, dict):
            values = {**values, "database_url": override}
        return values

    @property
    def db_schema(self) -> str:
        """The PostgreSQL schema this service owns."""
        return self.service_name

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise RuntimeError(
                f"no database configured for the {self.service_name} service: "
                f"set {self.service_name.upper()}_DATABASE_URL or DATABASE_URL"
            )
        return self.database_url.get_secret_value()
