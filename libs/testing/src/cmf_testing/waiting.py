"""Waiting in tests: retry a check until it holds or a deadline passes, never a bare sleep.

``eventually`` is for sync code (tests that drive servers as processes), ``eventually_async``
for tests on the event loop. Both retry only on ``AssertionError``: any other exception means
what is waited for can no longer happen, so it propagates at once. When the deadline passes the
last ``AssertionError`` propagates, with the check's own message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 10.0


class Deadline:
    """``timeout`` seconds from now, on the monotonic clock."""

    def __init__(self, timeout: float) -> None:
        self._at = time.monotonic() + timeout

    def passed(self) -> bool:
        return time.monotonic() >= self._at


def eventually(
    check: Callable[[], T], timeout: float = DEFAULT_TIMEOUT_S, interval: float = 0.1
) -> T:
    """Call ``check`` every ``interval`` seconds until it stops raising ``AssertionError``;
    return its result."""
    deadline = Deadline(timeout)
    while True:
        try:
            return check()
        except AssertionError:
            if deadline.passed():
                raise
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[T]],
    # Not asyncio.timeout: on the deadline the check's own AssertionError is what propagates.
    timeout: float = DEFAULT_TIMEOUT_S,  # noqa: ASYNC109
    interval: float = 0.02,
) -> T:
    """Await ``check`` every ``interval`` seconds until it stops raising ``AssertionError``;
    return its result."""
    deadline = Deadline(timeout)
    while True:
        try:
            return await check()
        except AssertionError:
            if deadline.passed():
                raise
        await asyncio.sleep(interval)
