"""The frame every service app shares: middleware, problem handlers, health and metrics; and
the typed handle of a service app (:class:`Service`) with its typed state.

A service's state (its pool, its clients, what its routes read) is one dataclass of its own,
made by its lifespan once the clients are open. It is put on the app in one place,
:func:`install_state`, and read back by type with :func:`state_of` (the service's
``api/deps.py`` does, for its routes). Nothing else is kept in ``app.state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Depends, FastAPI

from cmf_common.access import PrincipalMiddleware
from cmf_common.body_limit import BodyLimitMiddleware
from cmf_common.dialects import Dialect, app_dialects, install_error_handlers
from cmf_common.edge import BodyReadDeadline, CrossOriginGuard, UnexpectedErrors
from cmf_common.health import Check, health_router
from cmf_common.metrics import metrics_router
from cmf_common.middleware import ObservabilityMiddleware
from cmf_common.parameters import check_parameters, document_parameter_checks
from cmf_common.settings import ServiceSettings
from cmf_common.tracing import configure_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
Checks = dict[str, Check | None]
S = TypeVar("S")

_STATE = "service"


def install_state(app: FastAPI, state: object) -> None:
    """Put ``state`` on ``app`` for its routes (its lifespan does; a test may, without one)."""
    setattr(app.state, _STATE, state)


def state_of(app: FastAPI, kind: type[S]) -> S:
    """``app``'s state, which must be a ``kind``: its lifespan has started (or a test set it)."""
    state = getattr(app.state, _STATE, None)
    if not isinstance(state, kind):
        raise RuntimeError(f"{app.title}: no {kind.__name__}; its lifespan has not started")
    return state


def _state_or_none(app: FastAPI, kind: type[S]) -> S | None:
    state = getattr(app.state, _STATE, None)
    return state if isinstance(state, kind) else None


@dataclass(frozen=True)
class Service(Generic[S]):
    """A service app and how to run it.

    ``started()`` opens the service's clients, installs its state on ``app`` and yields that
    state to whoever runs it: the app's own lifespan when it runs alone, or the process that
    composes several services (the embedded server), which so gets what it wires together
    explicitly instead of reading another app's state. ``checks()`` are its readiness checks,
    which the gateway's ``/health`` aggregates without going through HTTP.
    """

    app: FastAPI
    started: Callable[[], AbstractAsyncContextManager[S]]
    checks: Callable[[], Checks]


def build_service(
    *,
    settings: ServiceSettings,
    title: str,
    kind: type[S],
    start: Callable[[], AbstractAsyncContextManager[S]],
    checks: Callable[[S | None], Checks],
    max_body_bytes: int | None = None,
    liveness: Callable[[S], Check] | None = None,
) -> Service[S]:
    """A service app whose lifespan runs ``start`` (which yields the service's state, a
    ``kind``); ``checks`` map the state (``None`` before it starts) to readiness checks, and
    ``liveness`` the started state to its ``/livez`` check (a worker's loop)."""

    @asynccontextmanager
    async def started() -> AsyncIterator[S]:
        async with start() as state:
            install_state(app, state)
            try:
                yield state
            finally:
                install_state(app, None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with started():
            yield

    def current_checks() -> Checks:
        return checks(_state_or_none(app, kind))

    def current_liveness(_: FastAPI) -> Check | None:
        state = _state_or_none(app, kind)
        return liveness(state) if liveness is not None and state is not None else None

    app = service_app(
        settings=settings,
        title=title,
        lifespan=lifespan,
        checks=lambda _: current_checks(),
        max_body_bytes=max_body_bytes,
        liveness=current_liveness,
    )
    return Service(app=app, started=started, checks=current_checks)


def service_app(
    *,
    settings: ServiceSettings,
    title: str,
    lifespan: Lifespan | Callable[[FastAPI], AsyncIterator[None]],
    checks: Callable[[FastAPI], Checks],
    max_body_bytes: int | None = None,
    liveness: Callable[[FastAPI], Check | None] | None = None,
    unmatched_dialect: Callable[[str], Dialect] | None = None,
    verify_principals: bool = True,
) -> FastAPI:
    """The app with the shared frame. Errors are answered in each route's dialect; a path
    that matches no route in ``unmatched_dialect``'s (default: its prefix owner among this
    app's routes, see ``cmf_common.dialects``). A service verifies the principal its caller
    signed (``cmf_common.access``); the gateway, which signs it, does not
    (``verify_principals=False``)."""
    configure_tracing(f"cmf-{settings.service_name}", settings.otel_service_namespace)
    app = FastAPI(
        title=title,
        lifespan=lifespan,  # type: ignore[arg-type]
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        dependencies=[Depends(check_parameters)],  # NUL / int64 range of every parameter
    )
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_parameter_checks(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    dialect_of = unmatched_dialect or app_dialects(app)
    install_error_handlers(app, dialect_of)
    app.include_router(
        health_router(
            lambda: checks(app),
            settings.readiness_timeout_s,
            (lambda: liveness(app)) if liveness is not None else None,
        )
    )
    app.include_router(metrics_router())
    # Innermost first. The edge judges a request before any route reads it (cmf_common.edge);
    # UnexpectedErrors is outside every guard that raises to its own handler (the body limit).
    if max_body_bytes is not None:
        app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, dialect_of=dialect_of)
    app.add_middleware(
        BodyReadDeadline,
        timeout_s=settings.http_body_timeout_s,
        min_rate=settings.http_body_min_rate,
        dialect_of=dialect_of,
    )
    if verify_principals:
        app.add_middleware(
            PrincipalMiddleware,
            secret=settings.principal_secret_bytes(),
            required=settings.require_principal,
            dialect_of=dialect_of,
        )
    app.add_middleware(
        CrossOriginGuard,
        allowed_origins=settings.allowed_origins(),
        allowed_hosts=settings.allowed_host_names(),
        dialect_of=dialect_of,
    )
    app.add_middleware(UnexpectedErrors, dialect_of=dialect_of)
    app.add_middleware(ObservabilityMiddleware, service=settings.service_name)
    return app
