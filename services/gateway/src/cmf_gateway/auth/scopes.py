"""What each route needs: its scope, its error dialect, the largest body it takes
(docs/access.md, "Scopes").

The table is the gateway's route table (``cmf_common.dialects``: every route of every service
that declares a dialect, and the gateway's own token routes), looked up by method and path.
A route's scope follows its method: ``GET`` and ``HEAD`` read, the others write; the routes
below say where that rule is wrong. Some reads are ``POST``s (a pull names its pipeline in the
body, CMFQuery's batch questions send their ids); registering peers and syncing from them
(Metahub), minting and revoking tokens, and the export of every entity are administration.

Each declaration is a path as its router declares it, under whatever prefix the router is
mounted at (``/x`` and ``/api/x``, ``/v1/x`` and ``/api/v1/x``, ``/api/native/v1/x``): one
entry covers every form. ``services/gateway/tests/test_auth_matrix.py`` holds every
declaration to a route that exists, and every route of the merged OpenAPI to a scope.

A path no route takes needs ``read`` (it answers 404 or 405 after that, so who holds no token
learns nothing of what exists); the health routes, ``/livez``, ``/readyz``, ``/metrics``, the
OpenAPI document and the UI's files need nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cmf_common.dialects import Dialect, Entry, RouteTable
from cmf_common.principal import ADMIN, READ, WRITE
from cmf_gateway.auth.settings import AccessSettings

# The prefixes one router is mounted at, longest first.
MOUNTS = ("/api/native/v1", "/api/v1", "/v1", "/api")

READ_POSTS = frozenset(
    {
        "/mlmd_pull",  # CMF: the pipeline's name in the body
        "/mlmd/pull",  # upstream v1
        "/acknowledge",  # Metahub's handshake: a peer asks whether this is a CMF server
        "/blobs/stored",  # which of these digests are stored
        # upstream v1's stage listings, their filters in the body
        "/pipelines/{pipeline_name}/stages/{stage:path}/artifacts/types",
        "/pipelines/{pipeline_name}/stages/{stage:path}/artifacts",
        "/pipelines/{pipeline_name}/stages/{stage:path}/executions",
        # CMFQuery's batch questions (metadata and lineage)
        "/artifacts/batch-get",
        "/executions/batch-get",
        "/executions/batch-summary",
        "/executions/parents/batch-get",
        "/executions/ancestors/batch-get",
        "/executions/artifacts/batch-get",
    }
)
ADMINISTRATION = frozenset(
    {
        # Metahub: registering a peer (its URL and token are kept, the server calls it) and
        # syncing from it, now or on a schedule.
        ("POST", "/register-server"),
        ("POST", "/sync"),
        ("POST", "/schedule-sync"),
        ("DELETE", "/schedule-sync/{schedule_id}"),
        ("POST", "/servers/register"),
        ("POST", "/servers/sync"),
        ("POST", "/schedules"),
        ("DELETE", "/schedules/{schedule_id}"),
        # Every entity of every pipeline (backups, rebuilds).
        ("GET", "/export"),
        # The tokens themselves (cmf_gateway.auth.routes).
        ("GET", "/tokens"),
        ("POST", "/tokens"),
        ("GET", "/tokens/{token_id}"),
        ("DELETE", "/tokens/{token_id}"),
    }
)
# Writes whose body is an uploaded file, bounded by ``MAX_UPLOAD_BYTES``; a push is bounded by
# ``MAX_BODY_BYTES``. The artifact service's bytes are bounded by that service alone.
UPLOADS = frozenset({"/python-env", "/label", "/tensorboard"})
UNBOUNDED_OWNERS = frozenset({"artifacts"})

PUBLIC = frozenset(
    {
        *("/", "/ui", "/livez", "/readyz", "/metrics"),
        *("/openapi.json", "/docs", "/redoc", "/health", "/api/health"),
    }
)
PUBLIC_UNDER = ("/ui/", "/health/", "/api/health/", "/docs/")


def declared_path(path: str) -> str:
    """``path`` without the prefix its router is mounted at."""
    for mount in MOUNTS:
        if path.startswith(mount + "/"):
            return path.removeprefix(mount)
    return path


def default_scope(method: str, path: str) -> str:
    """The scope a route of ``method`` at ``path`` (as its router declares it) needs."""
    declared = declared_path(path)
    if (method, declared) in ADMINISTRATION:
        return ADMIN
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    if method == "POST" and declared in READ_POSTS:
        return READ
    return WRITE


def is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_UNDER)


@dataclass(frozen=True, slots=True)
class Rule:
    """What a request needs: ``scope`` (``None``: nothing, a public path), the dialect its
    refusals answer in, and the largest body it may send (``None``: the gateway sets none)."""

    scope: str | None
    dialect: Dialect
    body_limit: int | None
    route: str | None = None  # the route's path, as declared (for logs)


class AccessTable:
    """The rule of each (method, path), read off the route table's entries."""

    def __init__(
        self, entries: Iterable[Entry], settings: AccessSettings, fallback: RouteTable
    ) -> None:
        self.entries = tuple(entries)
        self.settings = settings
        self.fallback = fallback
        by_method: dict[str, list[Entry]] = {}
        for entry in self.entries:
            for method in entry.methods:
                by_method.setdefault(method, []).append(entry)
        self._tables = {method: RouteTable(found) for method, found in by_method.items()}
        self.rule = lru_cache(maxsize=8192)(self._rule)

    def entry(self, method: str, path: str) -> Entry | None:
        """The route that answers ``method`` at ``path``, if one does."""
        for candidate in (method, "GET") if method == "HEAD" else (method,):
            table = self._tables.get(candidate)
            found = table.matching(path) if table is not None else []
            if found:
                return found[0]
        return None

    def _rule(self, method: str, path: str) -> Rule:
        if is_public(path):
            return Rule(None, self.fallback.dialect_of(path), self.settings.max_query_body_bytes)
        entry = self.entry(method, path)
        if entry is None:
            return Rule(READ, self.fallback.dialect_of(path), self.settings.max_query_body_bytes)
        assert entry.dialect is not None  # the table holds only routes that declare one
        scope = default_scope(method, entry.path)
        return Rule(scope, entry.dialect, self._body_limit(entry, scope), entry.path)

    def _body_limit(self, entry: Entry, scope: str) -> int | None:
        if scope != WRITE:
            return self.settings.max_query_body_bytes
        if entry.owner in UNBOUNDED_OWNERS:
            return None
        if declared_path(entry.path) in UPLOADS:
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes
