"""Peers: their URLs, their tokens at rest, and the calls made to them.

A peer's token is an outbound secret, so it cannot be hashed: it is Fernet-encrypted with a
key derived from ``METAHUB_SECRET_KEY`` and decrypted only to send it to the peer.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from cryptography.fernet import Fernet, InvalidToken

log = structlog.get_logger(__name__)

SERVER_ID_HEADER = "X-CMF-Server-Id"
MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class PeerApi:
    """The routes Metahub calls on a peer of one API generation (docs/metahub.md): the
    reference's 0.1.0 routes, or upstream's v1 ones, which a newest upstream server serves
    alone. v1 wraps its JSON answers in upstream's envelope (the payload in ``data``); its
    pull, as the 0.1.0 one, answers the raw MLMD JSON."""

    name: str
    acknowledge: str
    pipelines: str
    pull: str
    python_env: str
    enveloped: bool

    def data(self, response: httpx.Response) -> Any:
        """A JSON answer's payload; None when it is not JSON."""
        try:
            body = response.json()
        except ValueError:
            return None
        return body.get("data") if self.enveloped and isinstance(body, dict) else body


REFERENCE_API = PeerApi(
    "0.1.0", "/api/acknowledge", "/api/pipelines", "/api/mlmd_pull", "/api/python-env", False
)
UPSTREAM_V1_API = PeerApi(
    "v1",
    "/api/v1/acknowledge",
    "/api/v1/pipelines",
    "/api/v1/mlmd/pull",
    "/api/v1/python-env",
    True,
)
# In the order a peer is asked: the 0.1.0 routes first (ours and the reference's), then v1.
PEER_APIS = (REFERENCE_API, UPSTREAM_V1_API)
# What a peer that lacks a generation's route answers it.
NOT_SERVED = (404, 405)


class MetahubError(Exception):
    """A Metahub request that cannot be done; ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPeer(MetahubError):
    status = 400


class NameTaken(MetahubError):
    status = 409


class SelfRegistration(MetahubError):
    status = 400


class PeerNotFound(MetahubError):
    status = 404


class PeerUnreachable(MetahubError):
    """The peer did not answer, or answered wrong: a gateway failure, not bad input."""

    status = 502


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def normalize_url(url: str, allowed_hosts: frozenset[str] | None = None) -> str:
    """``url`` without a trailing slash; http/https with a host only (one of ``allowed_hosts``
    when given), else :class:`InvalidPeer`."""
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise InvalidPeer("server_url is too long")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise InvalidPeer(f"server_url is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidPeer("server_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidPeer("server_url must not carry credentials, a query or a fragment")
    if allowed_hosts is not None and parts.hostname.lower() not in allowed_hosts:
        raise InvalidPeer("server_url's host is not one of this server's METAHUB_PEER_HOSTS")
    return url.rstrip("/")


class TokenCipher:
    """Encrypts peer tokens with a key derived from the configured secret."""

    def __init__(self, secret: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode())

    def decrypt(self, sealed: bytes) -> str | None:
        """The token, or None when it was sealed under another key (logged, not raised)."""
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            log.warning("metahub.token_undecryptable")
            return None


@dataclass(frozen=True)
class PeerClient:
    """Calls to one peer over the app's shared client (its timeouts)."""

    http: httpx.AsyncClient
    url: str
    token: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.http.request(
                method, self.url + path, headers=self._headers(), **kwargs
            )
        except httpx.HTTPError as exc:
            log.warning("metahub.peer_call_failed", peer=self.url, path=path, reason=repr(exc))
            raise PeerUnreachable(f"Target server is not reachable: {exc!r}") from exc
        log.info(
            "metahub.peer_call",
            peer=self.url,
            path=path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    async def acknowledge(self, name: str, own_url: str) -> str | None:
        """Ask the peer to acknowledge us (the 0.1.0 route, then the v1 one); its server id
        when it sends one. :class:`PeerUnreachable` when neither answers 200."""
        body = {"server_name": name, "server_url": own_url}
        for api in PEER_APIS:
            response = await self.request("POST", api.acknowledge, json=body)
            if response.status_code == 200:
                server_id: str | None = response.headers.get(SERVER_ID_HEADER)
                return server_id
            if response.status_code not in NOT_SERVED:
                break
        raise PeerUnreachable("Target server did not respond successfully")
