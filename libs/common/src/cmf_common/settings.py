"""Settings shared by every service.

Each service reads its own settings class, built on :class:`ServiceSettings`. The database URL is
looked up as ``<SERVICE>_DATABASE_URL`` first and ``DATABASE_URL`` second, so one PostgreSQL can
serve every schema in the embedded server while production gives each service its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from cmf_common.principal import MIN_SECRET_BYTES


def split_list(raw: str) -> list[str]:
    """A comma list of origins (``scheme://host[:port]``) or host names, blanks and trailing
    slashes dropped."""
    return [o.strip().rstrip("/") for o in raw.split(",") if o.strip()]


def _secret_file(name: str) -> str | None:
    """The text of the file ``name`` in ``SECRETS_DIR`` (surrounding blanks dropped), if both
    exist: a secret mounted as a file (:meth:`ServiceSettings.settings_customise_sources`)."""
    secrets_dir = os.environ.get("SECRETS_DIR")
    if not secrets_dir:
        return None
    path = Path(secrets_dir) / name
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


# The limits of the HTTP edge a composing process hands every service it serves.
EDGE_LIMITS = (
    "http_keep_alive_timeout_s",
    "http_header_timeout_s",
    "http_body_timeout_s",
    "http_body_min_rate",
    "http_max_header_bytes",
    "http_max_connections",
)


# The host names the embedded server's apps call each other by, over in-process transports,
# and the base URL of each.
IN_PROCESS_HOSTS = ("metadata", "lineage", "artifacts")
IN_PROCESS_URLS = {host: f"http://{host}" for host in IN_PROCESS_HOSTS}


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
    # The artifact service's events (``cmf-server worker artifacts-relay`` publishes them, the
    # lineage worker consumes them beside ``events_topic``).
    artifact_events_topic: str = "cmf.artifacts.v1"

    # The HTTP edge (docs/architecture.md, "Limits and timeouts"): what the process's HTTP
    # server (cmf_server.serving) and every app's edge middleware (cmf_common.edge) allow.
    # ``CORS_ORIGINS``: the origins (comma list, ``*`` for any) whose pages may call this
    # process, writes included; unset, none but its own (same-origin requests).
    cors_origins: str | None = None
    # ``ALLOWED_HOSTS``: the names (comma list; ``.example.org`` is it and its subdomains, ``*``
    # any) a request's ``Host`` may carry; unset, any.
    allowed_hosts: str | None = None
    # An open connection that sends nothing for this long (fresh, or between requests) is closed.
    # Longer than the idle expiry of common client pools (httpx's, the SDK's: 5 s), so a client
    # never sends on a connection the server is closing at that moment (a ReadError, measured
    # in bench.concurrent at 5 s each); the cap sheds idle connections first anyway.
    http_keep_alive_timeout_s: float = Field(default=15.0, gt=0)
    # From a request's first byte to the end of its headers; then 408 and the connection closes.
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    # A body must arrive within this many seconds, plus one more second per
    # ``http_body_min_rate`` bytes received (so a slow link is fine, a trickle is not); 408.
    http_body_timeout_s: float = Field(default=20.0, gt=0)
    http_body_min_rate: int = Field(default=1024, ge=1)
    # The request line and headers together; 431 beyond.
    http_max_header_bytes: int = Field(default=65536, ge=1024)
    # Open connections of the process; at the cap a new one sheds the longest idle one.
    http_max_connections: int = Field(default=1000, ge=1)
    # HTTPS: the certificate chain and its private key (PEM files); both set, the process
    # serves TLS only (cmf_server.serving).
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None

    # The signed principal the gateway forwards (cmf_common.principal, docs/prefixes.md): the
    # secret it is signed with (``PRINCIPAL_SECRET``, or the first line of the file
    # ``PRINCIPAL_SECRET_FILE``), and whether a request without a valid one is refused (401).
    # Unset, an absent principal means full access (the embedded server without auth); a
    # service run on its own (``cmf-server serve``) requires one unless told otherwise
    # (:meth:`standalone`).
    principal_secret: SecretStr | None = None
    principal_secret_file: Path | None = None
    require_principal: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secrets from files (compose's ``secrets:``, a mounted Kubernetes Secret): with
        ``SECRETS_DIR`` set, a setting the environment does not give is read from the file of
        its name there (``/run/secrets/neo4j_password``, ``principal_secret``, …), its value
        the file's text without surrounding blanks; ``<service>_database_url`` there stands
        for ``<SERVICE>_DATABASE_URL``. The environment still wins."""
        secrets_dir = os.environ.get("SECRETS_DIR")
        if secrets_dir:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _tls_needs_both(self) -> Self:
        if (self.tls_cert_path is None) != (self.tls_key_path is None):
            raise ValueError("TLS needs both TLS_CERT_PATH and TLS_KEY_PATH")
        return self

    @model_validator(mode="before")
    @classmethod
    def _service_database_url_wins(cls, values: dict[str, object]) -> dict[str, object]:
        override = os.environ.get(f"{cls.service_name.upper()}_DATABASE_URL") or _secret_file(
            f"{cls.service_name}_database_url"
        )
        if override and isinstance(values, dict):
            values = {**values, "database_url": override}
        return values

    def allowed_origins(self) -> list[str]:
        """The other origins whose pages may call this process (``CORS_ORIGINS``)."""
        return split_list(self.cors_origins) if self.cors_origins is not None else []

    def allowed_host_names(self) -> list[str] | None:
        """The names ``Host`` may carry (``ALLOWED_HOSTS``); ``None``: any."""
        return split_list(self.allowed_hosts) if self.allowed_hosts is not None else None

    def with_edge_of(self, process: ServiceSettings) -> Self:
        """These settings with the HTTP edge of ``process``, the settings of the process that
        serves this service among others (the embedded server): one set of allowed origins,
        hosts and limits for every app behind it. The apps also call each other in-process
        under names of their own (``http://metadata``): those names are allowed too."""
        hosts = process.allowed_host_names()
        if hosts is not None:
            hosts = [*hosts, *IN_PROCESS_HOSTS]
        return self.model_copy(
            update={
                "cors_origins": ",".join(process.allowed_origins()),
                "allowed_hosts": ",".join(hosts) if hosts is not None else None,
                **{name: getattr(process, name) for name in EDGE_LIMITS},
            }
        )

    def principal_secret_bytes(self) -> bytes | None:
        """The principal secret (``PRINCIPAL_SECRET`` first, else ``PRINCIPAL_SECRET_FILE``'s
        first line), ``None`` when neither is set; one shorter than 16 bytes is refused."""
        if self.principal_secret is not None:
            secret = self.principal_secret.get_secret_value().encode()
        elif self.principal_secret_file is not None:
            lines = self.principal_secret_file.read_bytes().splitlines()
            secret = lines[0].strip() if lines else b""
        else:
            return None
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the principal secret must be at least {MIN_SECRET_BYTES} bytes")
        return secret

    def standalone(self) -> Self:
        """These settings for a service run on its own behind the gateway (distributed mode):
        a principal is required unless ``REQUIRE_PRINCIPAL`` says otherwise."""
        if "require_principal" in self.model_fields_set:
            return self
        return self.model_copy(update={"require_principal": True})

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
