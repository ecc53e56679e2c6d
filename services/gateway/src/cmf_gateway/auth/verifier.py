"""Which token a request carries, answered from a cache in the process (docs/access.md,
"Revocation").

A token presented is looked up by its digest once, then served from the cache for up to
``cache_ttl_s``. What keeps the cache honest is the revocation version (``store.py``): every
revocation moves it, in its transaction, and each replica reads it every ``poll_s``; when it
has moved, the replica drops every cached token, so the next request of a revoked token finds
the row revoked. A replica whose last successful read is older than ``stale_after_s`` (the
database is away) trusts its cache no more and looks every token up, which then fails as the
database does (503): a revoked token is never accepted more than ``stale_after_s`` after its
revocation committed, on any replica.

A digest found in no row is cached too (a miss, as long as a hit): a token nobody has been
given cannot be guessed, and a token created later has a digest no one presented before.

Races: a lookup that read a row before a revocation committed may finish after the replica
dropped its cache; it must not put the old row back. Each lookup notes the cache's generation
(moved on every drop) when it starts and stores its answer only if it is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from cmf_common.db import is_outage
from cmf_gateway.auth.store import TokenStore
from cmf_gateway.auth.tokens import TokenRecord, digest

log = structlog.get_logger(__name__)

CACHE_SIZE = 10_000


class TokenRefused(Exception):
    """The token is unknown, expired or revoked (``kind`` says which; ``reason``, for the
    401's detail, in words)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.reason = "unknown token" if kind == "unknown" else f"token {kind}"
        super().__init__(self.reason)


class TokensUnavailable(Exception):
    """The tokens cannot be checked now (the database is away): 503."""


@dataclass(frozen=True, slots=True)
class _Cached:
    record: TokenRecord | None  # None: no such token
    at: float


class TokenVerifier:
    def __init__(
        self,
        store: TokenStore,
        *,
        cache_ttl_s: float = 60.0,
        poll_s: float = 0.2,
        stale_after_s: float = 1.0,
        flush_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self.flush_s = flush_s
        self.clock = clock
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._generation = 0
        self._version: int | None = None
        self._polled_at = -float("inf")
        self._inflight: dict[bytes, asyncio.Future[TokenRecord | None]] = {}
        self._last_used: dict[str, datetime] = {}

    # Checking a token

    async def verify(self, token: str) -> TokenRecord:
        """The active token ``token`` is; else :class:`TokenRefused` (or
        :class:`TokensUnavailable`)."""
        key = digest(token)
        cached = self._cached(key)
        record = cached.record if cached is not None else await self._lookup(key)
        if record is None:
            raise TokenRefused("unknown")
        if record.revoked_at is not None:
            raise TokenRefused("revoked")
        now = datetime.now(UTC)
        if record.expires_at is not None and record.expires_at <= now:
            raise TokenRefused("expired")
        self._last_used[record.id] = now
        return record

    def _cached(self, key: bytes) -> _Cached | None:
        """The cached answer for ``key``, if it may still be trusted."""
        cached = self._cache.get(key)
        if cached is None:
            return None
        now = self.clock()
        if now - cached.at > self.cache_ttl_s or now - self._polled_at > self.stale_after_s:
            return None
        return cached

    async def _lookup(self, key: bytes) -> TokenRecord | None:
        """One query per digest at a time: requests of one token arriving together share it."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TokenRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        generation, started = self._generation, self.clock()
        try:
            record = await self.store.find(key)
        except Exception as exc:
            error = _unavailable(exc)
            future.set_exception(error)
            future.exception()  # retrieved, whether anyone else waits or not
            if error is exc:
                raise
            raise error from exc
        finally:
            del self._inflight[key]
        future.set_result(record)
        if generation == self._generation:
            self._cache[key] = _Cached(record, started)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return record

    def forget_all(self) -> None:
        """Drop every cached token (a revocation was seen)."""
        self._cache.clear()
        self._generation += 1

    # The loops

    async def poll_once(self) -> None:
        version = await self.store.revocation_version()
        if version != self._version:
            if self._version is not None:
                log.info("tokens.revocation_seen", version=version)
            self.forget_all()
            self._version = version
        self._polled_at = self.clock()

    async def flush_once(self) -> None:
        used, self._last_used = self._last_used, {}
        try:
            await self.store.record_use(used)
        except Exception:
            for token_id, at in used.items():  # kept for the next round
                self._last_used[token_id] = max(at, self._last_used.get(token_id, at))
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Read the revocation version every ``poll_s`` and write last uses every
        ``flush_s`` until ``stop``; then write the last uses once more."""
        flushed = self.clock()
        failing = False
        while not stop.is_set():
            try:
                await self.poll_once()
                if self.clock() - flushed >= self.flush_s:
                    flushed = self.clock()
                    await self.flush_once()
                if failing:
                    log.info("tokens.database_available")
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("tokens.database_unavailable", error=type(exc).__name__)
                failing = True
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        with suppress(Exception):
            await self.flush_once()


def _unavailable(exc: Exception) -> Exception:
    if is_outage(exc) or isinstance(exc, TimeoutError):
        return TokensUnavailable(f"the tokens cannot be checked now: {type(exc).__name__}")
    return exc
