"""A pure ASGI guard that refuses request bodies over a size limit with 413, without buffering."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmf_common.dialects import Dialect
from cmf_common.edge import WatchedSend
from cmf_common.errors import PayloadTooLarge


class BodyTooLarge(Exception):
    pass


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
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        watched = WatchedSend(send)
        try:
            await self.app(scope, counting_receive, watched)
        except BodyTooLarge:
            if not watched.started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """413 in the path's dialect: no route is matched yet (see ``cmf_common.dialects``)."""
        detail = f"request body exceeds the limit of {self.max_bytes} bytes"
        answer = self.dialect_of(scope.get("path", "")).domain_error(PayloadTooLarge(detail))
        answer.headers["connection"] = "close"
        await answer(scope, receive, send)
