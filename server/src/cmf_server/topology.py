"""Distributed mode as data: every process, the command that runs it, its port, its health
routes and the settings it reads.

``docker-compose.yml`` and the Kubernetes manifests (``deploy/``) are written from this table,
and the distributed test (``tests/integration/test_distributed*.py``) starts its processes
from it, so the three cannot drift apart. Nothing here imports a service: the table is plain
data, cheap to read from a deployment script.

Each CMF process is ``cmf-server serve <service>`` or ``cmf-server worker <worker>``; every one
answers ``/livez`` (its own loop, no dependency), ``/readyz`` (its dependencies, with a short
timeout) and ``/metrics`` on its port. The gateway is the only one a client reaches; it calls
the others at the URLs its ``<NAME>_URL`` settings give (:func:`upstream_env`), and the
services call each other the same way (the artifact service resolves names through the
metadata service, the metadata service asks the artifact service what is stored, the lineage
service asks the metadata service for committed sequences). They never read each other's
tables: each owns one PostgreSQL schema, reached by its own ``<SERVICE>_DATABASE_URL``.

Beside them run programs that are not ``cmf-server`` (:data:`INFRA`): TensorBoard, over the
logs the metadata service keeps on the shared files volume, which the gateway proxies under
``/tensorboard/``.

Each entry is made by the builder of its kind (:func:`service`, :func:`worker`,
:func:`infra`), which supplies what every process of that kind shares; an entry states only
what is its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

LIVEZ = "/livez"
READYZ = "/readyz"
METRICS = "/metrics"

Kind = Literal["service", "worker", "infra"]

# The processes by name (also the ``serve``/``worker`` argument and the compose service name).
GATEWAY = "gateway"
METADATA = "metadata"
LINEAGE = "lineage"
ARTIFACTS = "artifacts"
UI = "ui"
RELAY = "relay"
PROJECTOR = "projector"  # ``cmf-server worker lineage``: Kafka -> the lineage graph
ARTIFACTS_RELAY = "artifacts-relay"
TENSORBOARD = "tensorboard"

# Where the metadata service keeps the uploaded files in an image (MetadataSettings.files_dir's
# default), the folder of the TensorBoard logs in it (cmf_metadata.files.TENSORBOARD) and the
# path the gateway serves TensorBoard under (cmf_server.tensorboard.PREFIX); server/tests
# holds these to the code's.
FILES_DIR = "/var/lib/cmf-server/files"
TENSORBOARD_LOGS = "tensorboard-logs"
TENSORBOARD_PREFIX = "/tensorboard"


@dataclass(frozen=True)
class Setting:
    """One environment variable a process reads. ``secret`` ones belong in a Secret (they hold
    passwords or keys); ``required`` ones have no usable default in distributed mode.
    ``calls`` names the process whose URL it holds (an upstream); ``value`` is the one value
    every deployment gives it."""

    name: str
    meaning: str
    secret: bool = False
    required: bool = False
    calls: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class Process:
    """One process of distributed mode.

    ``program`` and ``command`` are what runs (``cmf-server`` ``serve metadata``); :meth:`argv`
    adds where it listens. ``replicas`` says whether more than one copy may run (``many``:
    stateless, or coordinated through PostgreSQL locks or a Kafka group). ``volumes`` are the
    settings that name a folder which must persist (and be shared by the replicas).
    ``metrics`` is ``None`` for a program that serves no Prometheus metrics."""

    name: str
    kind: Kind
    command: tuple[str, ...]
    port: int
    description: str
    settings: tuple[Setting, ...] = ()
    program: str = "cmf-server"
    public: bool = False
    replicas: Literal["many", "one"] = "many"
    volumes: tuple[str, ...] = ()
    livez: str = LIVEZ
    readyz: str = READYZ
    metrics: str | None = METRICS

    def argv(self, host: str = "0.0.0.0", port: int | None = None) -> list[str]:
        """The full command line, listening on ``host:port`` (default: all addresses, its
        default port), as the container or the test runs it."""
        listen = ["--host", host, "--port", str(self.port if port is None else port)]
        return [self.program, *self.command, *listen]

    @property
    def env_names(self) -> tuple[str, ...]:
        """The names of every setting it reads, its upstream URLs included."""
        return tuple(s.name for s in self.settings)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings if s.secret)

    @property
    def calls(self) -> tuple[str, ...]:
        """The processes it reaches over HTTP, in the order of their settings."""
        return tuple(s.calls for s in self.settings if s.calls is not None)

    @property
    def upstreams(self) -> dict[str, str]:
        """``{called process: the setting that holds its URL}``."""
        return {s.calls: s.name for s in self.settings if s.calls is not None}

    @property
    def fixed(self) -> dict[str, str]:
        """The settings every deployment gives one value: ``{name: value}``."""
        return {s.name: s.value for s in self.settings if s.value is not None}


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
    return Setting(
        url_setting(process), f"where the {process} process answers: {why}", calls=process
    )


EVENTS_TOPIC = Setting("EVENTS_TOPIC", "the metadata events topic (default cmf.metadata.v1)")
KAFKA = (
    Setting("KAFKA_BOOTSTRAP_SERVERS", "the Kafka brokers of the event bus", required=True),
    EVENTS_TOPIC,
)
NEO4J = (
    Setting("NEO4J_URI", "the lineage graph in Neo4j; unset: in the lineage PostgreSQL schema"),
    Setting("NEO4J_USER", "the Neo4j user (default neo4j)"),
    Setting("NEO4J_PASSWORD", "the Neo4j password", secret=True),
)
REDIS = Setting(
    "REDIS_URL",
    "lineage caches and the committed-sequence and graph-version boards; "
    "the gateway's rate limits, counted for every replica; unset: in-process",
)
S3 = (
    Setting("ARTIFACT_STORAGE_TYPE", "s3 (or minio) in distributed mode; local: ARTIFACTS_DIR"),
    Setting("S3_ENDPOINT_URL", "the S3 endpoint (unset: AWS)"),
    Setting("S3_ACCESS_KEY_ID", "S3 credentials", secret=True),
    Setting("S3_SECRET_ACCESS_KEY", "S3 credentials", secret=True),
    Setting("S3_BUCKET", "the bucket (default cmf-artifacts)"),
    Setting("S3_PREFIX", "a key prefix inside the bucket (DVC's layout below it)"),
)
PRINCIPAL = Setting(
    "PRINCIPAL_SECRET",
    "the key the gateway signs the principal with and the services verify it by "
    "(or PRINCIPAL_SECRET_FILE)",
    secret=True,
    required=True,
)
# Read by every CMF process; the builders add them.
COMMON = (
    Setting("LOG_LEVEL", "log level (default INFO)"),
    Setting("LOG_JSON", "JSON log lines (default true)"),
    Setting("OTEL_TRACES_EXPORTER", "console prints spans; unset: none"),
)
ARTIFACT_TOPIC = Setting(
    "ARTIFACT_EVENTS_TOPIC", "the artifact events topic (default cmf.artifacts.v1)"
)
CONSUMER_GROUP = Setting(
    "LINEAGE_CONSUMER_GROUP", "the projector's Kafka group (default cmf-lineage)"
)
EDGE = (
    Setting("CORS_ORIGINS", "origins whose pages may call the server (comma list)"),
    Setting("ALLOWED_HOSTS", "host names a request's Host may carry (comma list)"),
)


def service(
    name: str,
    port: int,
    description: str,
    *settings: Setting,
    public: bool = False,
    volumes: tuple[str, ...] = (),
) -> Process:
    """``cmf-server serve <name>``: an HTTP service, its ``settings`` and the common ones."""
    return Process(
        name=name,
        kind="service",
        command=("serve", name),
        port=port,
        description=description,
        settings=(*settings, *COMMON),
        public=public,
        volumes=volumes,
    )


def worker(
    name: str, port: int, description: str, *settings: Setting, runs: str | None = None
) -> Process:
    """``cmf-server worker <runs>`` (default: its name): a loop, serving only its health and
    metrics routes on ``port``."""
    return Process(
        name=name,
        kind="worker",
        command=("worker", runs or name),
        port=port,
        description=description,
        settings=(*settings, *COMMON),
    )


def infra(name: str, program: str, port: int, description: str, *args: str, probe: str) -> Process:
    """A program that is not ``cmf-server`` (``program args... --host --port``), reading none
    of our settings, with one page that is its liveness and readiness and no metrics."""
    return Process(
        name=name,
        kind="infra",
        command=args,
        port=port,
        description=description,
        program=program,
        replicas="one",
        livez=probe,
        readyz=probe,
        metrics=None,
    )


PROCESSES: tuple[Process, ...] = (
    service(
        GATEWAY,
        8080,
        "the only public entry: routes each path to its service, streams bodies, "
        "aggregates /health, serves one /openapi.json and TensorBoard under /tensorboard/",
        upstream(METADATA, "pushes, pulls, listings, files, CMFQuery's tables"),
        upstream(LINEAGE, "lineage trees, walks, CMFQuery's graph questions"),
        upstream(ARTIFACTS, "artifact bytes, blobs, uploads"),
        upstream(UI, "the web UI under /ui/"),
        upstream(RELAY, "its /readyz, for /health (kafka, loops)"),
        upstream(PROJECTOR, "its /readyz, for /health (loops)"),
        upstream(ARTIFACTS_RELAY, "its /readyz, for /health (kafka, loops)"),
        Setting(
            "TENSORBOARD_UPSTREAM_URL",
            "where TensorBoard answers (run with --path_prefix /tensorboard), proxied under "
            "/tensorboard/; unset: not served",
            required=True,
            calls=TENSORBOARD,
        ),
        Setting("GATEWAY_DATABASE_URL", "PostgreSQL of the gateway schema (tokens)", True),
        Setting("AUTH", "tokens required (default on); off-i-know runs without (access.md)"),
        REDIS,
        Setting("RATE_LIMIT_TOKEN_RPS", "requests a second per token (0: no limit; 429 beyond)"),
        Setting("RATE_LIMIT_ADDRESS_RPS", "requests a second per client address (429 beyond)"),
        PRINCIPAL,
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
        public=True,
    ),
    service(
        METADATA,
        8081,
        "the MLMD store: push, pull, listings, files, the outbox",
        database(METADATA),
        upstream(ARTIFACTS, "which artifacts have their bytes stored"),
        REDIS,
        PRINCIPAL,
        Setting("FILES_DIR", "uploaded python-env, label and tensorboard files"),
        Setting(
            "FILES_STORAGE",
            "local: the uploaded files in FILES_DIR, the volume TensorBoard reads (shared by "
            "the replicas); artifacts (the default with ARTIFACTS_URL): the artifact service's "
            "store, where no TensorBoard sees them",
            required=True,
            value="local",
        ),
        Setting(
            "TENSORBOARD_URL",
            "where the web UI's TensorBoard page points: the gateway's /tensorboard/",
            required=True,
            value=f"{TENSORBOARD_PREFIX}/",
        ),
        Setting("PUSH_SPOOL_DIR", "where big pushes are spooled (default FILES_DIR/.spool)"),
        Setting("METAHUB_SECRET_KEY", "the key Metahub peer tokens are encrypted with", True),
        EVENTS_TOPIC,
        *EDGE,
        volumes=("FILES_DIR",),
    ),
    service(
        LINEAGE,
        8082,
        "lineage reads from the graph (Neo4j, or the lineage PostgreSQL schema)",
        database(LINEAGE),
        *NEO4J,
        REDIS,
        upstream(METADATA, "committed sequences when Redis fails"),
        PRINCIPAL,
        EVENTS_TOPIC,
        CONSUMER_GROUP,
    ),
    service(
        ARTIFACTS,
        8083,
        "artifact bytes by content hash on S3",
        database(ARTIFACTS),
        *S3,
        upstream(METADATA, "which artifact a pipeline's name is"),
        PRINCIPAL,
    ),
    service(
        UI,
        8084,
        "the web UI's static files under /ui/",
        Setting("UI_DIR", "the built UI (default the checkout's dist)"),
    ),
    worker(
        RELAY,
        9101,
        "the metadata outbox to Kafka, in order per pipeline",
        database(METADATA),
        *KAFKA,
    ),
    worker(
        PROJECTOR,
        9102,
        "Kafka to the lineage graph",
        database(LINEAGE),
        *NEO4J,
        *KAFKA,
        ARTIFACT_TOPIC,
        REDIS,
        CONSUMER_GROUP,
        runs=LINEAGE,
    ),
    worker(
        ARTIFACTS_RELAY,
        9103,
        "the artifact service's outbox (blobs stored) to Kafka, for the projector",
        database(ARTIFACTS),
        KAFKA[0],
        ARTIFACT_TOPIC,
    ),
)

INFRA: tuple[Process, ...] = (
    infra(
        TENSORBOARD,
        "tensorboard",
        6006,
        "TensorBoard over the uploaded logs (the metadata service's files volume, read only)",
        "--logdir",
        f"{FILES_DIR}/{TENSORBOARD_LOGS}",
        "--path_prefix",
        TENSORBOARD_PREFIX,
        "--reload_interval",
        "5",
        probe=f"{TENSORBOARD_PREFIX}/",
    ),
)

BY_NAME: dict[str, Process] = {p.name: p for p in (*PROCESSES, *INFRA)}


def process(name: str) -> Process:
    return BY_NAME[name]


def upstream_env(urls: Mapping[str, str], of: str) -> dict[str, str]:
    """The URL settings process ``of`` reads, from ``urls`` (``{process name: base URL}``):
    ``{"METADATA_URL": "http://metadata:8081", ...}`` for each process it calls."""
    return {
        setting: urls[called] for called, setting in BY_NAME[of].upstreams.items() if called in urls
    }


def default_urls(host_of: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each process's URL at its default port, on the host ``host_of`` names (default: its own
    name, as compose and Kubernetes services resolve)."""
    hosts = dict(host_of or {})
    return {name: f"http://{hosts.get(name, name)}:{p.port}" for name, p in BY_NAME.items()}


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


def names(kind: Kind | None = None) -> list[str]:
    """The CMF processes (every ``cmf-server`` one), or every process of ``kind``."""
    if kind is None:
        return [p.name for p in PROCESSES]
    return [p.name for p in BY_NAME.values() if p.kind == kind]


def every_setting(processes: Iterable[Process] = PROCESSES) -> list[str]:
    """Every setting name any of ``processes`` reads, once, in order."""
    seen: dict[str, None] = {}
    for p in processes:
        for s in p.settings:
            seen.setdefault(s.name, None)
    return list(seen)
