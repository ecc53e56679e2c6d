"""The frame every service app shares: middleware, problem handlers, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from cmf_common.body_limit import BodyLimitMiddleware
from cmf_common.errors import install_problem_handlers
from cmf_common.health import Check, health_router
from cmf_common.metrics import metrics_router
from cmf_common.middleware import ObservabilityMiddleware
from cmf_common.settings import ServiceSettings
from cmf_common.tracing import configure_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def service_app(
    *,
    settings: ServiceSettings,
    title: str,
    lifespan: Lifespan | Callable[[FastAPI], AsyncIterator[None]],
    checks: Callable[[FastAPI], dict[str, Check | None]],
    max_body_bytes: int | None = None,
    liveness: Callable[[FastAPI], Check | None] | None = None,
) -> FastAPI:
    configure_tracing(f"cmf-{settings.service_name}", settings.otel_service_namespace)
    app = FastAPI(title=title, lifespan=lifespan)  # type: ignore[arg-type]
    install_problem_handlers(app)
    # The gateway's /health aggregates these without going through HTTP in the embedded server.
    app.state.readiness_checks = lambda: checks(app)
    app.include_router(
        health_router(
            lambda: checks(app),
            settings.readiness_timeout_s,
            (lambda: liveness(app)) if liveness is not None else None,
        )
    )
    app.include_router(metrics_router())
    if max_body_bytes is not None:
        app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, service=settings.service_name)
    return app
