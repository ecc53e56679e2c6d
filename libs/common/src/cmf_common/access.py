"""The principal a request is for, as a service sees it: verified, then at hand.

Every service app verifies the :data:`~cmf_common.principal.PRINCIPAL_HEADER` its caller (the
gateway, or another service) sent (:class:`PrincipalMiddleware`, installed by
``cmf_common.service``) and keeps the principal for the request: routes take it as
:data:`CurrentPrincipal`, domain code reads :func:`current_principal` / :func:`current_prefix`
and applies the prefix in its queries. Without a principal secret (the embedded server without
auth) an absent or unverifiable header means :data:`~cmf_common.principal.FULL_ACCESS`; with
``REQUIRE_PRINCIPAL`` a call without a valid one is refused with 401 in its route's dialect.

A service that calls another (artifact resolution, lineage's consistency lookups, the
rebuild's export) signs its own principal, or forwards its caller's, with
:class:`SignedPrincipal` (an ``httpx.Auth``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from contextvars import ContextVar
from typing import Annotated, Any

import httpx
from fastapi import Depends
from starlette.types import ASGIApp, Receive, Scope, Send

from cmf_common.dialects import Dialect
from cmf_common.errors import Forbidden, Unauthorized
from cmf_common.principal import (
    FULL_ACCESS,
    PRINCIPAL_HEADER,
    InvalidPrincipal,
    Principal,
    service_principal,
    sign_principal,
    verify_principal,
)
from cmf_common.settings import ServiceSettings

_HEADER = PRINCIPAL_HEADER.lower().encode("latin-1")
# What probes and the gateway's aggregation read of each service: no principal needed.
OPEN_PATHS = frozenset({"/livez", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})

_current: ContextVar[Principal | None] = ContextVar("cmf_principal", default=None)


def current_principal() -> Principal:
    """The principal of the request being answered (full access when none came)."""
    return _current.get() or FULL_ACCESS


def current_prefix() -> str | None:
    """The pipeline prefix the request's answers are restricted to; ``None``: none."""
    principal = _current.get()
    return principal.prefix if principal is not None else None


def url_inside(properties: Any) -> Any:
    """An artifact's ``properties`` as the request may see them: CMF's ``url`` property lists
    ``<pipeline>:<path>`` for every pipeline that pushed the artifact, so under a pipeline
    prefix only the entries of pipelines inside it are kept (unchanged without one)."""
    prefix = current_prefix()
    if prefix is None or not isinstance(properties, Mapping):
        return properties
    url = properties.get("url")
    if not isinstance(url, str):
        return properties
    inside = ",".join(u for u in url.split(",") if u.strip().startswith(prefix))
    return {**properties, "url": inside}


def get_principal() -> Principal:
    return current_principal()


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def check_write() -> None:
    """403 (in the route's dialect) unless the request's principal has the ``write`` scope
    (the gateway checks scopes per route; a service refuses a write all the same)."""
    if not current_principal().has_scope("write"):
        raise Forbidden("this token may not write", code="scope_missing")


def check_push(pipeline: str) -> None:
    """403 (in the route's dialect) unless the request's principal may push ``pipeline``:
    ``write`` scope, and the pipeline inside its prefix."""
    check_write()
    principal = current_principal()
    if not principal.allows_pipeline(pipeline):
        raise Forbidden(
            f"pipeline {pipeline!r} is outside this token's pipeline prefix",
            code="pipeline_outside_prefix",
        )


class PrincipalMiddleware:
    """Verifies the principal header and keeps the principal for the request (pure ASGI).

    A request without the header is for :data:`~cmf_common.principal.FULL_ACCESS`, unless
    ``required``: then it is answered 401 (but on :data:`OPEN_PATHS`). A header that does not
    verify with ``secret`` (or that comes while there is no secret) is answered 401.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: bytes | None,
        required: bool,
        dialect_of: Callable[[str], Dialect],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if required and secret is None:
            raise RuntimeError(
                "REQUIRE_PRINCIPAL is set but no PRINCIPAL_SECRET or PRINCIPAL_SECRET_FILE is"
            )
        self.app = app
        self.secret = secret
        self.required = required
        self.dialect_of = dialect_of
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = None
        for name, raw in scope.get("headers") or ():
            if name == _HEADER:
                value = raw
                break
        principal: Principal | None = None
        refusal: str | None = None
        if value is not None:
            if self.secret is None:
                # Whoever signed it expects it applied; this service cannot: refuse rather
                # than answer a restricted principal with everything.
                refusal = "a principal was sent but this service has no PRINCIPAL_SECRET"
            else:
                try:
                    principal = verify_principal(
                        value.decode("latin-1"), self.secret, now=self.clock()
                    )
                except InvalidPrincipal as exc:
                    refusal = str(exc)
        elif self.required and scope.get("path", "") not in OPEN_PATHS:
            refusal = "no principal: call this service through the gateway"
        if refusal is not None:
            answer = self.dialect_of(scope.get("path", "")).domain_error(
                Unauthorized(refusal, code="principal_invalid")
            )
            await answer(scope, receive, send)
            return
        # Always set (``None``: full access), so the principal of a caller in this process
        # never leaks into an in-process callee, and reset after.
        token = _current.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


class SignedPrincipal(httpx.Auth):
    """Signs each call to another service: the principal of the request being answered when
    ``forward`` (so the callee filters by its prefix too), else the service's own
    (``service:<name>``, every pipeline). Without a secret nothing is sent (the embedded
    server without auth, whose services need none)."""

    def __init__(
        self,
        secret: bytes | None,
        service: str,
        *,
        forward: bool = False,
        ttl_s: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.own = service_principal(service)
        self.forward = forward
        self.ttl_s = ttl_s
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.secret is not None:
            caller = _current.get() if self.forward else None
            request.headers[PRINCIPAL_HEADER] = sign_principal(
                caller or self.own, self.secret, now=self.clock(), ttl_s=self.ttl_s
            )
        yield request

    @classmethod
    def of(cls, settings: ServiceSettings, *, forward: bool = False) -> SignedPrincipal:
        """For the calls of the service ``settings`` configure."""
        return cls(settings.principal_secret_bytes(), settings.service_name, forward=forward)
