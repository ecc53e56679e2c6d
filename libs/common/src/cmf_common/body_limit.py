"""A pure ASGI guard that refuses request bodies over a size limit with 413, without buffering."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmf_common.dialects import Dialect
from cmf_common.edge import BodyTooLarge, WatchedSend, declared_over, too_large


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, dialect_of: Callable[[str], Dialect]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.dialect_of = dialect_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_over(scope, self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, counting_receive, watched)
        except BodyTooLarge as exc:
            if not watched.started:
                await self._refuse(scope, receive, send, exc)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: BodyTooLarge | None = None
    ) -> None:
        """413 in the path's dialect: no route is matched yet (see ``cmf_common.dialects``)."""
        dialect = self.dialect_of(scope.get("path", ""))
        answer = too_large(error or BodyTooLarge(self.max_bytes), dialect)
        await answer(scope, receive, send)
