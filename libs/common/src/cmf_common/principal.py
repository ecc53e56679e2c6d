"""The signed principal: who a request is for, what it may do, which pipelines it may see.

The gateway authenticates a request (its token: ``cmf_gateway.auth``) and forwards what it
learnt to the service as one header, :data:`PRINCIPAL_HEADER`, signed with a secret the
gateway and the services share (``PRINCIPAL_SECRET`` / ``PRINCIPAL_SECRET_FILE``). A service
verifies it (``cmf_common.access``) and applies the principal's pipeline prefix in its queries,
so a token restricted to ``team-a/`` lists, pulls and walks only pipelines whose names start
with it (docs/prefixes.md).

The header's value is ``v1.<payload>.<signature>``: the payload a compact JSON object
(``sub``, ``scp``, ``pfx``, ``tid``, ``exp``) in unpadded base64url, the signature the
HMAC-SHA256 of ``v1.<payload>`` with the secret, also unpadded base64url. It expires ``ttl_s``
after signing (the gateway signs each request, so a replayed header is short-lived); the
services compare signatures in constant time and refuse an expired one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

PRINCIPAL_HEADER = "X-CMF-Principal"

# The scopes, each of which implies the ones after it.
ADMIN, WRITE, READ = "admin", "write", "read"
SCOPES: tuple[str, ...] = (ADMIN, WRITE, READ)
_IMPLIED: dict[str, frozenset[str]] = {s: frozenset(SCOPES[i:]) for i, s in enumerate(SCOPES)}

_VERSION = "v1"
# A secret shorter than this is refused (settings): HMAC-SHA256 wants 32 bytes of key.
MIN_SECRET_BYTES = 16


class InvalidPrincipal(Exception):
    """A principal header that is malformed, badly signed or expired (its ``str`` says which,
    without echoing the header)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is for (``subject``: a token's name, a service's), its scopes, and the
    pipeline-name prefix it is restricted to (``None``: every pipeline)."""

    subject: str
    scopes: frozenset[str]
    pipeline_prefix: str | None = None
    token_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        """Whether the principal may act with ``scope``: ``admin`` implies ``write``, which
        implies ``read``."""
        return any(scope in _IMPLIED.get(s, ()) for s in self.scopes)

    def allows_pipeline(self, name: str) -> bool:
        """Whether the pipeline ``name`` is inside the principal's prefix."""
        return self.pipeline_prefix is None or name.startswith(self.pipeline_prefix)

    @property
    def prefix(self) -> str | None:
        """The pipeline prefix, ``None`` when it restricts nothing (an empty prefix neither)."""
        return self.pipeline_prefix or None


# What a request is for when no principal came with it and none is required (the embedded
# server without auth): everything.
FULL_ACCESS = Principal(subject="anonymous", scopes=frozenset({ADMIN}))


def service_principal(service: str) -> Principal:
    """The principal a service signs its calls to another service with (artifact resolution,
    lineage's consistency lookups, the rebuild's export): every pipeline, admin."""
    return Principal(subject=f"service:{service}", scopes=frozenset({ADMIN}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: str) -> bytes:
    return hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()


def sign_principal(p: Principal, secret: bytes, *, now: float, ttl_s: float = 60) -> str:
    """The header value carrying ``p``, valid until ``now + ttl_s`` (Unix seconds)."""
    if not secret:
        raise ValueError("an empty principal secret")
    payload: dict[str, Any] = {"sub": p.subject, "scp": sorted(p.scopes), "exp": now + ttl_s}
    if p.pipeline_prefix is not None:
        payload["pfx"] = p.pipeline_prefix
    if p.token_id is not None:
        payload["tid"] = p.token_id
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    signed = f"{_VERSION}.{body}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_principal(value: str, secret: bytes, *, now: float) -> Principal:
    """The principal ``value`` carries, if it is signed with ``secret`` and has not expired at
    ``now``; else :class:`InvalidPrincipal`."""
    if not secret:
        raise InvalidPrincipal("no principal secret is configured")
    version, _, rest = value.partition(".")
    body, _, signature = rest.partition(".")
    if version != _VERSION or not body or not signature or "." in signature:
        raise InvalidPrincipal("malformed principal")
    # Compared as text, so no other spelling of the same bytes passes (base64's spare bits).
    expected = _b64(_mac(secret, f"{version}.{body}"))
    if not hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode("ascii")):
        raise InvalidPrincipal("bad principal signature")
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError) as exc:
        raise InvalidPrincipal("malformed principal") from exc
    return _from_payload(payload, now)


def _from_payload(payload: Any, now: float) -> Principal:
    if not isinstance(payload, dict):
        raise InvalidPrincipal("malformed principal")
    subject, scopes, expires = payload.get("sub"), payload.get("scp"), payload.get("exp")
    prefix, token_id = payload.get("pfx"), payload.get("tid")
    if (
        not isinstance(subject, str)
        or not isinstance(scopes, list)
        or not all(isinstance(s, str) for s in scopes)
        or isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not math.isfinite(expires)
        or not isinstance(prefix, str | None)
        or not isinstance(token_id, str | None)
    ):
        raise InvalidPrincipal("malformed principal")
    if expires <= now:
        raise InvalidPrincipal("expired principal")
    return Principal(subject, frozenset(scopes), prefix, token_id)
