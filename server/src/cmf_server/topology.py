"""Distributed mode as data: every process, the command that runs it, its port, its health
routes and the settings it reads.

``docker-compose.yml`` and the Kubernetes manifests (``deploy/``) are written from this table,
and the distributed test (``tests/integration/test_distributed*.py``) starts its processes
from it, so the three cannot drift apart. Nothing here imports a service: the table is plain
data, cheap to read from a deployment script.

Each process is ``cmf-server serve <service>`` or ``cmf-server worker <worker>``; every one
answers ``/livez`` (its own loop, no dependency), ``/readyz`` (its dependencies, with a short
timeout) and ``/metrics`` on its port. The gateway is the only one a client reaches; it calls
the others at the URLs its ``<NAME>_URL`` settings give (:func:`upstream_env`), and the
services call each other the same way (the artifact service resolves names through the
metadata service, the metadata service asks the artifact service what is stored, the lineage
service asks the metadata service for committed sequences). They never read each other's
tables: each owns one PostgreSQL schema, reached by its own ``<SERVICE>_DATABASE_URL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

LIVEZ = "/livez"
READYZ = "/readyz"
METRICS = "/metrics"

# The processes by name (also the ``serve``/``worker`` argument and the compose service name).
GATEWAY = "gateway"
METADATA = "metadata"
LINEAGE = "lineage"
ARTIFACTS = "artifacts"
UI = "ui"
RELAY = "relay"
PROJECTOR = "projector"  # ``cmf-server worker lineage``: Kafka -> the lineage graph
ARTIFACTS_RELAY = "artifacts-relay"


@dataclass(frozen=True)
class Setting:
    """One environment variable a process reads. ``secret`` ones belong in a Secret (they hold
    passwords or keys); ``required`` ones have no usable default in distributed mode."""

    name: str
    meaning: str
    secret: bool = False
    required: bool = False


@dataclass(frozen=True)
class Process:
    """One process of distributed mode.

    ``command`` is what follows ``cmf-server`` (``serve metadata``); :meth:`argv` adds where it
    listens. ``calls`` are the processes it reaches over HTTP, each at the URL setting
    :func:`url_setting` names. ``replicas`` says whether more than one copy may run
    (``many``: stateless, or coordinated through PostgreSQL locks or a Kafka group).
    ``volumes`` are the settings that name a folder which must persist (and be shared by the
    replicas)."""

    name: str
    kind: Literal["service", "worker"]
    command: tuple[str, ...]
    port: int
    description: str
    settings: tuple[Setting, ...]
    calls: tuple[str, ...] = ()
    public: bool = False
    replicas: Literal["many", "one"] = "many"
    volumes: tuple[str, ...] = ()
    livez: str = LIVEZ
    readyz: str = READYZ
    metrics: str = METRICS

    def argv(self, host: str = "0.0.0.0", port: int | None = None) -> list[str]:
        """The full command line, listening on ``host:port`` (default: all addresses, its
        default port), as the container or the test runs it."""
        return [
            "cmf-server",
            *self.command,
            "--host",
            host,
            "--port",
            str(self.port if port is None else port),
        ]

    @property
    def env_names(self) -> tuple[str, ...]:
        """The names of every setting it reads, its upstream URLs included."""
        return tuple(s.name for s in self.settings)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings if s.secret)


def url_setting(process: str) -> str:
    """The setting that holds where ``process`` answers (``METADATA_URL``)."""
    return f"{process.upper().replace('-', '_')}_URL"


def database(service: str) -> Setting:
    return Setting(
        f"{service.upper()}_DATABASE_URL",
        f"PostgreSQL of the {service} schema (a role that sees only it); DATABASE_URL if unset",
        secret=True,
        required=True,
    )


def upstream(process: str, why: str) -> Setting:
    return Setting(url_setting(process), f"where the {process} process answers: {why}")


KAFKA = (
    Setting("KAFKA_BOOTSTRAP_SERVERS", "the Kafka brokers of the event bus", required=True),
    Setting("EVENTS_TOPIC", "the metadata events topic (default cmf.metadata.v1)"),
)
NEO4J = (
    Setting("NEO4J_URI", "the lineage graph in Neo4j; unset: in the lineage PostgreSQL schema"),
    Setting("NEO4J_USER", "the Neo4j user (default neo4j)"),
    Setting("NEO4J_PASSWORD", "the Neo4j password", secret=True),
)
REDIS = (
    Setting(
        "REDIS_URL",
        "lineage caches and the committed-sequence and graph-version boards; "
        "the gateway's rate limits; unset: in-process",
    ),
)
S3 = (
    Setting("ARTIFACT_STORAGE_TYPE", "s3 (or minio) in distributed mode; local: ARTIFACTS_DIR"),
    Setting("S3_ENDPOINT_URL", "the S3 endpoint (unset: AWS)"),
    Setting("S3_ACCESS_KEY_ID", "S3 credentials", secret=True),
    Setting("S3_SECRET_ACCESS_KEY", "S3 credentials", secret=True),
    Setting("S3_BUCKET", "the bucket (default cmf-artifacts)"),
    Setting("S3_PREFIX", "a key prefix inside the bucket (DVC's layout below it)"),
)
PRINCIPAL = (
    Setting(
        "PRINCIPAL_SECRET",
        "the key the gateway signs the principal with and the services verify it by "
        "(or PRINCIPAL_SECRET_FILE)",
        secret=True,
        required=True,
    ),
)
COMMON = (
    Setting("LOG_LEVEL", "log level (default INFO)"),
    Setting("LOG_JSON", "JSON log lines (default true)"),
    Setting("OTEL_TRACES_EXPORTER", "console prints spans; unset: none"),
)
ARTIFACT_TOPIC = Setting(
    "ARTIFACT_EVENTS_TOPIC", "the artifact events topic (default cmf.artifacts.v1)"
)
EDGE = (
    Setting("CORS_ORIGINS", "origins whose pages may call the server (comma list)"),
    Setting("ALLOWED_HOSTS", "host names a request's Host may carry (comma list)"),
)

PROCESSES: tuple[Process, ...] = (
    Process(
        name=GATEWAY,
        kind="service",
        command=("serve", GATEWAY),
        port=8080,
        public=True,
        description="the only public entry: routes each path to its service, streams bodies, "
        "aggregates /health, serves one /openapi.json",
        settings=(
            upstream(METADATA, "pushes, pulls, listings, files, CMFQuery's tables"),
            upstream(LINEAGE, "lineage trees, walks, CMFQuery's graph questions"),
            upstream(ARTIFACTS, "artifact bytes, blobs, uploads"),
            upstream(UI, "the web UI under /ui/"),
            upstream(RELAY, "its /readyz, for /health (kafka, loops)"),
            upstream(PROJECTOR, "its /readyz, for /health (loops)"),
            Setting("GATEWAY_DATABASE_URL", "PostgreSQL of the gateway schema (tokens)", True),
            Setting("AUTH", "on (the default here), or off-i-know to serve without tokens"),
            *REDIS,
            Setting("RATE_LIMIT_TOKEN_RPS", "requests/s per token (429 beyond)"),
            Setting("RATE_LIMIT_ADDRESS_RPS", "requests/s per client address (429 beyond)"),
            *PRINCIPAL,
            Setting("AUTH", "tokens required (default on); off-i-know runs without (access.md)"),
            Setting("REDIS_URL", "where the rate limits are counted, for every replica"),
            Setting("RATE_LIMIT_TOKEN_RPS", "requests a second per token (0: no limit)"),
            Setting("RATE_LIMIT_ADDRESS_RPS", "requests a second per client address"),
            Setting("GATEWAY_TIMEOUT_S", "how long a read may wait for its service (504)"),
            Setting(
                "GATEWAY_TRANSFER_TIMEOUT_S",
                "how long a push, an upload or a download may wait for its service (504)",
            ),
            Setting("GATEWAY_CONNECT_TIMEOUT_S", "connecting to a service (503 beyond)"),
            Setting("GATEWAY_UPSTREAM_CONNECTIONS", "kept-alive connections to each service"),
            Setting("TLS_CERT_PATH", "serve HTTPS with this certificate (and TLS_KEY_PATH)"),
            Setting("TLS_KEY_PATH", "the certificate's key", secret=True),
            *EDGE,
            *COMMON,
        ),
        calls=(METADATA, LINEAGE, ARTIFACTS, UI, RELAY, PROJECTOR),
    ),
    Process(
        name=METADATA,
        kind="service",
        command=("serve", METADATA),
        port=8081,
        description="the MLMD store: push, pull, listings, files, the outbox",
        settings=(
            database(METADATA),
            upstream(ARTIFACTS, "which artifacts have their bytes stored"),
            *REDIS,
            *PRINCIPAL,
            Setting("FILES_DIR", "uploaded python-env, label and tensorboard files"),
            Setting(
                "FILES_STORAGE",
                "artifacts (default with ARTIFACTS_URL: the uploaded files in the artifact "
                "service's store, shared by the replicas) or local (FILES_DIR)",
            ),
            Setting("PUSH_SPOOL_DIR", "where big pushes are spooled (default FILES_DIR/.spool)"),
            Setting("METAHUB_SECRET_KEY", "the key Metahub peer tokens are encrypted with", True),
            Setting("EVENTS_TOPIC", "the metadata events topic (default cmf.metadata.v1)"),
            *EDGE,
            *COMMON,
        ),
        calls=(ARTIFACTS,),
        volumes=("FILES_DIR",),
    ),
    Process(
        name=LINEAGE,
        kind="service",
        command=("serve", LINEAGE),
        port=8082,
        description="lineage reads from the graph (Neo4j, or the lineage PostgreSQL schema)",
        settings=(
            database(LINEAGE),
            *NEO4J,
            *REDIS,
            upstream(METADATA, "committed sequences when Redis fails"),
            *PRINCIPAL,
            Setting("EVENTS_TOPIC", "the metadata events topic (default cmf.metadata.v1)"),
            Setting("LINEAGE_CONSUMER_GROUP", "the projector's name (default cmf-lineage)"),
            *COMMON,
        ),
        calls=(METADATA,),
    ),
    Process(
        name=ARTIFACTS,
        kind="service",
        command=("serve", ARTIFACTS),
        port=8083,
        description="artifact bytes by content hash on S3",
        settings=(
            database(ARTIFACTS),
            *S3,
            upstream(METADATA, "which artifact a pipeline's name is"),
            *PRINCIPAL,
            *COMMON,
        ),
        calls=(METADATA,),
    ),
    Process(
        name=UI,
        kind="service",
        command=("serve", UI),
        port=8084,
        description="the web UI's static files under /ui/",
        settings=(Setting("UI_DIR", "the built UI (default the checkout's dist)"), *COMMON),
    ),
    Process(
        name=RELAY,
        kind="worker",
        command=("worker", RELAY),
        port=9101,
        description="the metadata outbox to Kafka, in order per pipeline",
        settings=(database(METADATA), *KAFKA, *COMMON),
    ),
    Process(
        name=PROJECTOR,
        kind="worker",
        command=("worker", LINEAGE),
        port=9102,
        description="Kafka to the lineage graph",
        settings=(
            database(LINEAGE),
            *NEO4J,
            *KAFKA,
            ARTIFACT_TOPIC,
            *REDIS,
            Setting("LINEAGE_CONSUMER_GROUP", "the Kafka group (default cmf-lineage)"),
            *COMMON,
        ),
    ),
    Process(
        name=ARTIFACTS_RELAY,
        kind="worker",
        command=("worker", ARTIFACTS_RELAY),
        port=9103,
        description="the artifact service's outbox (blobs stored) to Kafka, for the projector",
        settings=(database(ARTIFACTS), *KAFKA[:1], ARTIFACT_TOPIC, *COMMON),
    ),
)

BY_NAME: dict[str, Process] = {p.name: p for p in PROCESSES}


def process(name: str) -> Process:
    return BY_NAME[name]


def upstream_env(urls: Mapping[str, str], of: str) -> dict[str, str]:
    """The URL settings process ``of`` reads, from ``urls`` (``{process name: base URL}``):
    ``{"METADATA_URL": "http://metadata:8081", ...}`` for each process it calls."""
    return {url_setting(name): urls[name] for name in BY_NAME[of].calls if name in urls}


def default_urls(host_of: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each process's URL at its default port, on the host ``host_of`` names (default: its own
    name, as compose and Kubernetes services resolve)."""
    hosts = dict(host_of or {})
    return {p.name: f"http://{hosts.get(p.name, p.name)}:{p.port}" for p in PROCESSES}


@dataclass(frozen=True)
class Layout:
    """Where each process of one stack listens: ``{name: port}`` on ``host``."""

    host: str
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    def urls(self) -> dict[str, str]:
        return {name: self.url(name) for name in self.ports}

    def argv(self, name: str) -> list[str]:
        return BY_NAME[name].argv(self.host, self.ports[name])

    def env(self, name: str) -> dict[str, str]:
        """The upstream URL settings of process ``name`` in this layout."""
        return upstream_env(self.urls(), name)


def names(kind: Literal["service", "worker"] | None = None) -> list[str]:
    return [p.name for p in PROCESSES if kind is None or p.kind == kind]


def every_setting(processes: Iterable[Process] = PROCESSES) -> list[str]:
    """Every setting name any of ``processes`` reads, once, in order."""
    seen: dict[str, None] = {}
    for p in processes:
        for s in p.settings:
            seen.setdefault(s.name, None)
    return list(seen)
