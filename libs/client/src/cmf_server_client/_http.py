"""What the synchronous and the asynchronous client share: headers, timeouts, the retry rule
and turning an answer into data or an exception. The two transports below differ only in
``await``."""

from __future__ import annotations

import email.utils
import itertools
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import httpx

from cmf_server_client import errors

__all__ = ["DEFAULT_TIMEOUT", "RetryPolicy", "default_headers", "version"]

TOKEN_ENV = "CMF_SERVER_TOKEN"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRIED_STATUSES = frozenset({429, 503})
Params = Mapping[str, Union[str, int, float, bool, Iterable[str], None]]


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("cmf-server-client")
    except PackageNotFoundError:  # run from a source tree
        return "0"


@dataclass(frozen=True)
class RetryPolicy:
    """How 429 and 503 answers are retried: up to ``retries`` more times, waiting what the
    server's ``Retry-After`` says (capped at ``max_delay``) or else ``backoff`` * 2^attempt with
    jitter. Other statuses and transport failures are not retried."""

    retries: int = 4
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        exponential: float = self.backoff * (2**attempt)
        return float(min(exponential * (0.5 + random.random() / 2), self.max_delay))


NO_RETRIES = RetryPolicy(retries=0)


def resolve_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Every request has a timeout: ``None`` means the default, not "wait forever"."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(float(timeout))


def default_headers(token: str | None) -> dict[str, str]:
    """The SDK's headers; the token (argument, else ``$CMF_SERVER_TOKEN``) as the gateway reads
    it, ``Authorization: Bearer <token>``."""
    headers = {"User-Agent": f"cmf-server-client/{version()}", "Accept": "application/json"}
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), if the server sent one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def body_of(response: httpx.Response) -> Any:
    """The answer parsed as JSON when it says so (or looks so), else its text."""
    text = response.text
    kind = response.headers.get("Content-Type", "")
    if "json" in kind or text[:1] in ("{", "["):
        try:
            return response.json()
        except ValueError:
            return text
    return text


def raise_for(response: httpx.Response) -> None:
    """Nothing for a success; the typed exception, with the server's message, for an error.
    Call after the body is read."""
    if response.status_code < 400:
        return
    raise errors.error_for(
        response.status_code,
        body_of(response),
        method=response.request.method,
        url=str(response.request.url),
        retry_after=retry_after(response),
    )


def transport_error(exc: httpx.TransportError, method: str, url: str) -> errors.TransportError:
    if isinstance(exc, httpx.TimeoutException):
        return errors.Timeout(f"{method} {url} timed out: {exc!r}")
    return errors.TransportError(f"{method} {url} failed: {exc!r}")


def clean_params(params: Params | None) -> list[tuple[str, str | int | float | bool | None]]:
    """Query parameters without the ``None`` ones; a list value repeats its key; booleans as
    ``true``/``false``."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, (str, int, float)):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, str(v)) for v in value)
    return pairs


def base_url(url: str) -> str:
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the server URL must start with http:// or https://, not {url!r}")
    return url


@dataclass(frozen=True)
class Outgoing:
    """One request as the caller asked it, which each attempt builds afresh."""

    method: str
    path: str
    params: Params | None = None
    json: Any = None
    content: Any = None
    headers: Mapping[str, str] | None = None
    stream: bool = False
    retry: RetryPolicy | None = None

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        content = self.content() if callable(self.content) else self.content
        return http.build_request(
            self.method,
            self.path,
            params=clean_params(self.params),
            json=self.json,
            content=content,
            headers=self.headers,
        )

    def retry_wait(
        self, response: httpx.Response, attempt: int, default: RetryPolicy
    ) -> float | None:
        """How long to wait before the next attempt, or ``None`` to keep this answer."""
        policy = self.retry or default
        if response.status_code in RETRIED_STATUSES and attempt < policy.retries:
            return policy.delay(attempt, retry_after(response))
        return None


class SyncTransport:
    """One ``httpx.Client`` with the retry rule around each request."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = time.sleep,
    ) -> None:
        self.base_url = base_url(url)
        self.retry = retry
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=default_headers(token),
            timeout=resolve_timeout(timeout),
            transport=transport,
        )

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The answer to one request (``options``: :class:`Outgoing`'s fields), retried on
        429/503; raises the typed error for any other error status. A streamed answer must be
        closed by the caller. ``content`` may be a callable that makes the body afresh for each
        attempt (a file read as it is sent)."""
        outgoing = Outgoing(method, path, **options)
        for attempt in itertools.count():
            request = outgoing.build(self.http)
            try:
                response = self.http.send(request, stream=outgoing.stream)
            except httpx.TransportError as exc:
                raise transport_error(exc, method, str(request.url)) from exc
            wait = outgoing.retry_wait(response, attempt, self.retry)
            if wait is None:
                break
            response.close()
            self.sleep(wait)
        if response.status_code >= 400:
            try:
                response.read()
            finally:
                response.close()
            raise_for(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        return body_of(response)

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    """One ``httpx.AsyncClient`` with the retry rule around each request."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Any = None,
    ) -> None:
        import asyncio

        self.base_url = base_url(url)
        self.retry = retry
        self.sleep = sleep or asyncio.sleep
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=default_headers(token),
            timeout=resolve_timeout(timeout),
            transport=transport,
        )

    async def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """As :meth:`SyncTransport.send`."""
        outgoing = Outgoing(method, path, **options)
        for attempt in itertools.count():
            request = outgoing.build(self.http)
            try:
                response = await self.http.send(request, stream=outgoing.stream)
            except httpx.TransportError as exc:
                raise transport_error(exc, method, str(request.url)) from exc
            wait = outgoing.retry_wait(response, attempt, self.retry)
            if wait is None:
                break
            await response.aclose()
            await self.sleep(wait)
        if response.status_code >= 400:
            try:
                await response.aread()
            finally:
                await response.aclose()
            raise_for(response)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.send(method, path, **kwargs)
        return body_of(response)

    async def close(self) -> None:
        await self.http.aclose()
