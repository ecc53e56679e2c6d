"""Rate limits per token and per client address (docs/access.md, "Rate limits").

Each limit is a GCRA (the generic cell rate algorithm, a token bucket kept as one number per
key: the theoretical arrival time of the next request): ``rate`` requests a second on
average, ``burst`` at once. A request over it is refused with the seconds until one more would
pass (``Retry-After``).

With Redis (``REDIS_URL``) the numbers live there, so every replica counts against the same
limit: both keys of a request are checked and moved in one script, on Redis's clock. Without
Redis, or while Redis fails, they live in the process (a limiter that fails does not refuse).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

KEYS_KEPT = 100_000  # in the process: the least recently seen keys beyond this are dropped
REDIS_PREFIX = "cmf:gateway:rate:"
FAILURE_LOG_EVERY_S = 30.0
EPSILON_S = 1e-9


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # requests per second
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        """How far ahead of now the next arrival time may run."""
        return self.interval * (self.burst - 1)


class Limiter(Protocol):
    async def check(self, keys: Sequence[tuple[str, Limit]]) -> float | None:
        """Count one request against each key's limit; the seconds to wait when any refuses
        (then none is counted), else ``None``."""
        ...

    async def close(self) -> None: ...


def _admit(tat: float, now: float, limit: Limit) -> float | None:
    """The key's next arrival time after one request at ``now``; ``None``: refused."""
    start = max(tat, now)
    if start - now > limit.tolerance + EPSILON_S:  # sums of intervals drift by ulps
        return None
    return start + limit.interval


def _wait(tat: float, now: float, limit: Limit) -> float:
    return max(0.0, max(tat, now) - now - limit.tolerance - EPSILON_S)


class LocalLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tat: OrderedDict[str, float] = OrderedDict()

    async def check(self, keys: Sequence[tuple[str, Limit]]) -> float | None:
        return self.check_now(keys)

    def check_now(self, keys: Sequence[tuple[str, Limit]]) -> float | None:
        now = self.clock()
        admitted: list[tuple[str, float]] = []
        wait = 0.0
        for key, limit in keys:
            tat = self._tat.get(key, now)
            after = _admit(tat, now, limit)
            if after is None:
                wait = max(wait, _wait(tat, now, limit))
            else:
                admitted.append((key, after))
        if len(admitted) < len(keys):
            return max(wait, 1e-3)
        for key, after in admitted:
            self._tat[key] = after
            self._tat.move_to_end(key)
        while len(self._tat) > KEYS_KEPT:
            self._tat.popitem(last=False)
        return None

    async def close(self) -> None:
        return None


# KEYS: the limits' keys; ARGV: (interval, tolerance) per key, in microseconds. Returns 0 when
# every key admits the request (and moves them all), else the microseconds to wait.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local after = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  local start = math.max(tat, now)
  if start - now > tolerance then
    wait = math.max(wait, start - now - tolerance)
  else
    after[i] = start + interval
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((after[i] - now) / 1000) + 1000
  redis.call('SET', key, after[i], 'PX', ttl)
end
return 0
"""


class RedisLimiter:
    """The limits in Redis; the process's own while Redis fails."""

    def __init__(self, url: str, timeout_s: float = 0.25) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script: Any = self.client.register_script(GCRA_SCRIPT)
        self.local = LocalLimiter()
        self._logged_at = -math.inf

    async def check(self, keys: Sequence[tuple[str, Limit]]) -> float | None:
        from redis.exceptions import RedisError

        args: list[int] = []
        for _, limit in keys:
            args += [round(limit.interval * 1e6), round(limit.tolerance * 1e6)]
        try:
            wait = await self._script(keys=[REDIS_PREFIX + key for key, _ in keys], args=args)
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._logged_at > FAILURE_LOG_EVERY_S:
                self._logged_at = time.monotonic()
                log.warning("rate_limit.redis_unavailable", error=type(exc).__name__)
            return self.local.check_now(keys)
        return int(wait) / 1e6 if int(wait) > 0 else None

    async def close(self) -> None:
        await self.client.aclose()


def retry_after(wait_s: float) -> str:
    """``Retry-After``: whole seconds, at least one."""
    return str(max(1, math.ceil(wait_s)))
