"""``/livez`` and ``/readyz``: liveness never touches a dependency, readiness checks each one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    status: str
    latency_ms: float | None
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "latency_ms": self.latency_ms, "detail": self.detail}


async def run_check(check: Check | None, timeout_s: float) -> CheckResult:
    """Run one dependency check with a deadline; ``None`` means the part is not configured."""
    if check is None:
        return CheckResult("disabled", None, "not configured in this mode")
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=timeout_s)
    except TimeoutError:
        return CheckResult("down", None, f"no answer within {timeout_s:g} s")
    except Exception as exc:  # a failed check is an answer, not an error
        # The answer says what failed in words; the exception's class goes to the log only.
        log.warning("health.check_failed", error=f"{type(exc).__name__}: {exc}")
        return CheckResult("down", None, (str(exc).strip() or "the check failed")[:300])
    return CheckResult("ok", round((time.perf_counter() - started) * 1000, 2), None)


def health_router(
    checks: Callable[[], dict[str, Check | None]],
    timeout_s: float,
    liveness: Callable[[], Check | None] | None = None,
) -> APIRouter:
    """``checks`` is called per request so the lifespan can fill in clients after start-up.

    Liveness touches no dependency: a worker's only liveness check is its own loop's heartbeat.
    """
    router = APIRouter()

    @router.get("/livez", include_in_schema=False)
    async def livez() -> JSONResponse:
        check = liveness() if liveness is not None else None
        if check is not None:
            result = await run_check(check, timeout_s)
            if result.status == "down":
                return JSONResponse({"status": "down", "detail": result.detail}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        named = checks()
        results = await asyncio.gather(*(run_check(c, timeout_s) for c in named.values()))
        body = {name: r.as_dict() for name, r in zip(named, results, strict=True)}
        ready = all(r.status != "down" for r in results)
        return JSONResponse(
            {"status": "ok" if ready else "down", "checks": body}, status_code=200 if ready else 503
        )

    return router
