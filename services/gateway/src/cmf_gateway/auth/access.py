"""The gateway's access control as one piece: made from its settings, started by its
lifespan, wrapped around its routing (``layer``), with the token routes (``router``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress

import structlog
from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from cmf_common.db import service_pool
from cmf_common.dialects import RouteTable, served_routes
from cmf_common.errors import NotFound
from cmf_common.prefixes import NATIVE_V1
from cmf_gateway.auth.layer import AccessLayer, Limits, PrincipalSigner
from cmf_gateway.auth.limits import Limit, Limiter, LocalLimiter, RedisLimiter
from cmf_gateway.auth.openapi import document_access
from cmf_gateway.auth.routes import tokens_router
from cmf_gateway.auth.scopes import AccessTable
from cmf_gateway.auth.settings import AccessSettings, AuthRequired
from cmf_gateway.auth.store import MIGRATIONS, TokenStore
from cmf_gateway.auth.verifier import TokenVerifier

log = structlog.get_logger(__name__)
STOP_S = 5.0


class Access:
    """``distributed``: the gateway of distributed mode, where auth is on unless told
    otherwise (``AccessSettings.auth_enabled``). With auth on the gateway needs a database
    for its tokens and a principal secret to sign with; it refuses to start without them."""

    def __init__(self, settings: AccessSettings, *, distributed: bool = False) -> None:
        self.settings = settings
        self.enabled = settings.auth_enabled(distributed=distributed)
        secret = settings.principal_secret_bytes()
        if self.enabled and secret is None:
            raise AuthRequired(
                "auth is on but no PRINCIPAL_SECRET (or PRINCIPAL_SECRET_FILE) is set: the "
                "services could not trust what the gateway tells them"
            )
        if self.enabled and settings.database_url is None:
            raise AuthRequired(
                "auth is on but the gateway has no database for its tokens: set "
                "GATEWAY_DATABASE_URL or DATABASE_URL"
            )
        self.signer = (
            PrincipalSigner(secret, settings.principal_ttl_s) if secret is not None else None
        )
        self.store: TokenStore | None = None
        self.verifier: TokenVerifier | None = None
        self.limiter: Limiter | None = None
        self.rules: AccessTable | None = None

    @asynccontextmanager
    async def started(self) -> AsyncIterator[None]:
        """Open the token store (when there is a database) and, with auth on, the verifier's
        loop and the rate limiter; close them on exit."""
        settings = self.settings
        async with AsyncExitStack() as stack:
            if settings.database_url is not None:
                pool = await stack.enter_async_context(
                    service_pool(settings, MIGRATIONS, application_name="cmf-gateway")
                )
                self.store = TokenStore(pool)
                stack.callback(setattr, self, "store", None)
            if self.enabled:
                assert self.store is not None
                verifier = TokenVerifier(
                    self.store,
                    cache_ttl_s=settings.token_cache_ttl_s,
                    poll_s=settings.token_revocation_poll_s,
                    stale_after_s=settings.token_revocation_stale_s,
                    flush_s=settings.token_last_use_flush_s,
                )
                await verifier.poll_once()
                stop = asyncio.Event()
                task = asyncio.create_task(verifier.run(stop), name="gateway-tokens")

                async def stopped() -> None:
                    stop.set()
                    with suppress(asyncio.CancelledError, TimeoutError):
                        await asyncio.wait_for(task, STOP_S)

                stack.push_async_callback(stopped)
                limiter: Limiter = (
                    RedisLimiter(settings.redis_url) if settings.redis_url else LocalLimiter()
                )
                stack.push_async_callback(limiter.close)
                self.verifier, self.limiter = verifier, limiter
                stack.callback(setattr, self, "verifier", None)
                stack.callback(setattr, self, "limiter", None)
                log.info("gateway.auth_on", rate_limits="redis" if settings.redis_url else "local")
            else:
                log.warning("gateway.auth_off")
            yield

    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            token=Limit(s.rate_limit_token_rps, s.rate_limit_token_burst)
            if s.rate_limit_token_rps > 0
            else None,
            address=Limit(s.rate_limit_address_rps, s.rate_limit_address_burst)
            if s.rate_limit_address_rps > 0
            else None,
        )

    def install(self, own: FastAPI, table: RouteTable) -> None:
        """Put the token routes on the gateway's own app ``own`` (under ``/api/native/v1``),
        make the rules of every route (``table``'s, the services', and ``own``'s), and, with
        auth on, say in ``own``'s OpenAPI what each operation needs."""
        own.include_router(self.router(), prefix=NATIVE_V1)
        owned = (e for e in served_routes("gateway", own.routes) if e.dialect is not None)
        self.rules = AccessTable([*table.entries, *owned], self.settings, table)
        if self.enabled:
            document_access(own, self.rules)

    def layer(self, app: ASGIApp) -> ASGIApp:
        """``app`` (the gateway's routing) behind the access layer, by the rules
        :meth:`install` made."""
        if self.rules is None:
            raise RuntimeError("Access.install() makes the rules the layer needs")
        return AccessLayer(
            app,
            service=self.settings.service_name,
            table=self.rules,
            verifier=(lambda: self.verifier) if self.enabled else None,
            limiter=lambda: self.limiter,
            limits=self.limits(),
            signer=self.signer,
        )

    def router(self) -> APIRouter:
        def store() -> TokenStore:
            if self.store is None:
                raise NotFound(
                    "this server keeps no tokens: it has no database of its own "
                    "(GATEWAY_DATABASE_URL or DATABASE_URL)"
                )
            return self.store

        def revoked() -> None:
            if self.verifier is not None:
                self.verifier.forget_all()

        return tokens_router(store, revoked)
