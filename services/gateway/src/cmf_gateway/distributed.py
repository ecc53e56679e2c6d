"""The gateway of distributed mode (``cmf-server serve gateway``): every service is a process of
its own, reached at its URL.

The route table is the embedded server's: read off the services' apps, which this process
builds but never starts (their routes are all it needs, and their OpenAPI documents make the
merged ``/openapi.json``). Each table owner's transport is a :class:`cmf_gateway.proxy.Upstream`
instead of the app itself. The gateway forwards only what a route matches (``strict``), so a
path no service routes, or one in a non-canonical form, is answered here and never reaches a
service; and it holds the HTTP edge itself (origin and host checks, body read deadline, request
ids, logs and metrics), where the embedded server's apps hold it in-process.

``/health`` asks each process's ``/readyz`` (its dependencies, as that process checks them)
and reports each part with its latency: the dependencies (``HEALTH_PARTS``) as the processes
that use them see them, and each process itself (``PROCESS_PARTS``). A process whose URL is
not set is ``disabled``; one that does not answer is ``down``, and so is every part only it
reports (``EXPECTS``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from cmf_common.dialects import REFERENCE, Dialect
from cmf_common.edge import BodyReadDeadline, CrossOriginGuard, DialectOf, UnexpectedErrors
from cmf_common.health import CheckResult
from cmf_common.middleware import ObservabilityMiddleware
from cmf_gateway.app import HEALTH_PARTS, Gateway, gateway_own_app
from cmf_gateway.auth import Access
from cmf_gateway.proxy import Timeouts, Upstream, path_refusal
from cmf_gateway.routing import ARTIFACTS, LINEAGE, METADATA, route_table
from cmf_gateway.settings import GatewaySettings

UI = "ui"
RELAY = "relay"
PROJECTOR = "projector"
ARTIFACTS_RELAY = "artifacts-relay"
# The processes /health reports on, each a part of its own: every process of distributed mode
# but the gateway itself (``cmf_server.topology``).
PROCESS_PARTS = (METADATA, LINEAGE, ARTIFACTS, UI, RELAY, PROJECTOR, ARTIFACTS_RELAY)
# A process down makes these parts down (no other process reports them).
EXPECTS: dict[str, tuple[str, ...]] = {
    ARTIFACTS: ("storage",),
    RELAY: ("kafka", "loops"),
    PROJECTOR: ("loops",),
    ARTIFACTS_RELAY: ("kafka", "loops"),
}
# The names a process's /readyz gives a part, as /health names it.
RENAMED = {"graph": "database", "loop": "loops"}
# Without these /health is down; any other part down is degraded.
REQUIRED = ("database", METADATA)


def url_setting(process: str) -> str:
    """The setting that says where ``process`` answers (``ARTIFACTS_RELAY_URL``)."""
    return f"{process.upper().replace('-', '_')}_URL"


def urls_of(settings: GatewaySettings) -> dict[str, str | None]:
    return {
        METADATA: settings.metadata_url,
        LINEAGE: settings.lineage_url,
        ARTIFACTS: settings.artifacts_url,
        UI: settings.ui_url,
        RELAY: settings.relay_url,
        PROJECTOR: settings.projector_url,
        ARTIFACTS_RELAY: settings.artifacts_relay_url,
    }


def edged(app: ASGIApp, settings: GatewaySettings, dialect_of: DialectOf) -> ASGIApp:
    """``app`` behind the HTTP edge a service app has (``cmf_common.service.service_app``),
    with the gateway's settings: its logs and metrics, the 500 that keeps the connection, the
    origin and host checks, the body read deadline; and a request id for every request."""
    inner: ASGIApp = BodyReadDeadline(
        app,
        timeout_s=settings.http_body_timeout_s,
        min_rate=settings.http_body_min_rate,
        dialect_of=dialect_of,
    )
    inner = CrossOriginGuard(
        inner,
        allowed_origins=settings.allowed_origins(),
        allowed_hosts=settings.allowed_host_names(),
        dialect_of=dialect_of,
    )
    inner = UnexpectedErrors(inner, dialect_of=dialect_of)
    return ObservabilityMiddleware(inner, service=settings.service_name, assign_ids=True)


async def _readiness(
    client: httpx.AsyncClient, name: str, url: str, timeout_s: float
) -> tuple[CheckResult, dict[str, CheckResult]]:
    """A process's own result (its /readyz round trip) and the parts it reported."""
    started = time.perf_counter()
    try:
        answer = await client.get(f"{url.rstrip('/')}/readyz", timeout=timeout_s)
    except httpx.TimeoutException:
        return CheckResult(
            "down", None, f"the {name} process gave no answer in {timeout_s:g} s"
        ), {}
    except httpx.HTTPError as exc:
        return CheckResult("down", None, f"the {name} process is not reachable ({exc})"[:300]), {}
    latency = round((time.perf_counter() - started) * 1000, 2)
    try:
        reported = {
            RENAMED.get(part, part): CheckResult(
                str(body["status"]), body.get("latency_ms"), body.get("detail")
            )
            for part, body in answer.json()["checks"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return CheckResult("down", latency, f"the {name} process's /readyz is not valid"), {}
    if answer.status_code == 200:
        return CheckResult("ok", latency, None), reported
    down = sorted(p for p, r in reported.items() if r.status == "down")
    return CheckResult("down", latency, f"not ready: {', '.join(down) or 'unknown'}"), reported


def _combined(reports: list[tuple[str, CheckResult]]) -> CheckResult:
    """One part as every process that reports it sees it: down when one sees it down."""
    used = [(name, r) for name, r in reports if r.status != "disabled"]
    if not used:
        return CheckResult("disabled", None, "not configured in this mode")
    down = [(name, r) for name, r in used if r.status == "down"]
    if down:
        detail = "; ".join(f"{name}: {r.detail or 'down'}" for name, r in down)
        return CheckResult("down", None, detail[:300])
    latencies = [r.latency_ms for _, r in used if r.latency_ms is not None]
    return CheckResult("ok", max(latencies) if latencies else None, None)


async def gather_health(
    client: httpx.AsyncClient, urls: Mapping[str, str | None], timeout_s: float
) -> dict[str, CheckResult]:
    """Every part of /health: ``HEALTH_PARTS`` then ``PROCESS_PARTS``."""
    asked = {name: url for name, url in urls.items() if url}
    answers = await asyncio.gather(
        *(_readiness(client, name, url, timeout_s) for name, url in asked.items())
    )
    own = dict(zip(asked, answers, strict=True))
    results: dict[str, CheckResult] = {}
    for part in HEALTH_PARTS:
        reports: list[tuple[str, CheckResult]] = []
        for name, (process, reported) in own.items():
            if part in reported:
                reports.append((name, reported[part]))
            elif process.status == "down" and part in EXPECTS.get(name, ()):
                reports.append((name, CheckResult("down", None, process.detail)))
        results[part] = _combined(reports)
    for name in PROCESS_PARTS:
        results[name] = (
            own[name][0]
            if name in own
            else CheckResult("disabled", None, f"{url_setting(name)} is not set")
        )
    return results


def create_distributed_gateway(settings: GatewaySettings, apps: Mapping[str, FastAPI]) -> Gateway:
    """The gateway over the services whose apps are ``apps`` (``{owner: app}``, built, not
    started), each reached at its URL setting (``METADATA_URL``, ``LINEAGE_URL``,
    ``ARTIFACTS_URL``); ``UI_URL`` serves the UI (else the gateway serves ``UI_DIR``)."""
    urls = urls_of(settings)
    missing = [name for name in apps if not urls.get(name)]
    if missing:
        names = ", ".join(f"{name.upper()}_URL" for name in missing)
        raise RuntimeError(f"the gateway needs {names}: where each service answers")
    table = route_table(apps)
    # Auth is on unless AUTH=off-i-know (AUTH=off is refused): cmf_gateway.auth, docs/access.md.
    access = Access(settings, distributed=True)
    timeouts = Timeouts(
        read=settings.gateway_timeout_s,
        transfer=settings.gateway_transfer_timeout_s,
        connect=settings.gateway_connect_timeout_s,
    )

    def route_of(path: str) -> BaseRoute | None:
        matched = table.matching(path)
        return matched[0].route if matched else None

    def upstream(name: str, url: str, dialect_of: DialectOf) -> Upstream:
        return Upstream(
            name,
            url,
            dialect_of=dialect_of,
            timeouts=timeouts,
            route_of=route_of,
            connections=settings.gateway_upstream_connections,
        )

    upstreams = {name: upstream(name, urls[name] or "", table.dialect_of) for name in apps}
    ui = upstream(UI, settings.ui_url, _reference) if settings.ui_url else None
    probes: list[httpx.AsyncClient] = []  # the /readyz client, while the gateway runs

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(access.started())
            for each in (*upstreams.values(), *([ui] if ui is not None else [])):
                await stack.enter_async_context(each.opened())
            client = httpx.AsyncClient(timeout=settings.readiness_timeout_s)
            stack.push_async_callback(client.aclose)
            probes.append(client)
            try:
                yield
            finally:
                probes.clear()

    async def gather() -> dict[str, CheckResult]:
        if not probes:
            raise RuntimeError("the gateway's lifespan has not started")
        return await gather_health(probes[0], urls, settings.readiness_timeout_s)

    own = gateway_own_app(
        settings,
        apps,
        table,
        lifespan=lifespan,
        checks=lambda: {},
        gather=gather,
        access=access,
        required=REQUIRED,
    )
    return Gateway(
        own,
        {name: edged(u, settings, table.dialect_of) for name, u in upstreams.items()},
        table,
        cors_origins=settings.allowed_origins(),
        ui=edged(ui, settings, _reference) if ui is not None else None,
        strict=True,
        refusal=path_refusal,
        access=access,
    )


def _reference(_: str) -> Dialect:
    return REFERENCE
