"""API tokens: how one is made, recognised and kept (docs/access.md, "Tokens").

A token is ``cmf_<id>_<secret>``: ``id`` 12 hex digits, public (the CLI and the admin routes
name a token by it), ``secret`` 32 random bytes in base64url. Only the SHA-256 of the whole
token is stored, so the stored rows never give a token back; a token is found by that digest
(a secret of 256 random bits needs no slow hash: there is nothing to guess).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cmf_common.principal import ADMIN, READ, SCOPES, WRITE

PREFIX = "cmf"
TOKEN = re.compile(r"^cmf_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
ID = re.compile(r"^[0-9a-f]{12}$")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NEVER = "never"

__all__ = ["ADMIN", "READ", "SCOPES", "WRITE"]


@dataclass(frozen=True, slots=True)
class Minted:
    """A new token: what is shown once, and what is kept."""

    id: str
    token: str
    digest: bytes


def mint() -> Minted:
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    return Minted(token_id, token, digest(token))


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def well_formed(token: str) -> bool:
    return TOKEN.match(token) is not None


def parse_expiry(text: str) -> timedelta | None:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w``; ``never``: ``None``."""
    if text.strip().lower() == NEVER:
        return None
    match = _DURATION.match(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise ValueError(
            f"an expiry is a number and a unit (90d, 12h, 30m, 45s, 2w) or {NEVER!r}: {text!r}"
        )
    return timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token, as listed (never its secret)."""

    id: str
    name: str
    scope: str
    pipeline_prefix: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
