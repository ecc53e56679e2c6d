"""Opaque page cursors, shared by every service that pages a listing.

A cursor holds where the next page starts (a keyset: the last row's sort key and id, or an
offset) and is bound to the query it came from: the route, the filters and the sort, hashed into
it. It carries a checksum, so anything else (garbled, truncated, edited, or from another query)
is refused as :class:`~cmf_common.errors.Invalid` with code ``invalid_cursor``. Cursors are not
signed: forging one only moves the start of a page of a query the caller may run anyway, and
every value is re-validated (types, ranges) before it reaches a query as a bind parameter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from cmf_common.errors import Invalid

# The largest value of PostgreSQL's bigint (and Neo4j's integer): ids and epoch milliseconds
# beyond it are refused at the edge rather than overflowing in a query.
BIGINT_MAX = 2**63 - 1
MAX_CURSOR_CHARS = 4096

_CURSOR_VERSION = 1
_CHECKSUM_BYTES = 8


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECKSUM_BYTES, person=b"cmf-cursor").digest()


def query_scope(route: str, **query: Any) -> str:
    """A short digest of a query's route, filters and sort: what a cursor is bound to."""
    canonical = orjson.dumps([route, query], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def _spell(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload + _checksum(payload)).rstrip(b"=").decode("ascii")


def encode_cursor(scope: str, values: Sequence[int | str]) -> str:
    """An opaque token: the values, bound to ``scope``, with a checksum, in base64url."""
    return _spell(orjson.dumps([_CURSOR_VERSION, scope, *values]))


def decode_cursor(token: str, scope: str, kinds: Sequence[type[int] | type[str]]) -> list[Any]:
    """The values ``encode_cursor`` put in ``token``, checked against ``scope`` and ``kinds``.

    Raises :class:`Invalid` (code ``invalid_cursor``) for anything else.
    """
    bad = Invalid(
        "the cursor is not one this query handed out; start again without it",
        code="invalid_cursor",
    )
    if not token or len(token) > MAX_CURSOR_CHARS or not token.isascii():
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if len(raw) <= _CHECKSUM_BYTES:
        raise bad
    payload, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
    if _checksum(payload) != checksum:
        raise bad
    if _spell(payload) != token:  # one spelling per cursor: no padding, no slack
        raise bad
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise bad from None
    if not isinstance(body, list) or len(body) != 2 + len(kinds):
        raise bad
    if body[0] != _CURSOR_VERSION or body[1] != scope:
        raise bad
    values = body[2:]
    for value, kind in zip(values, kinds, strict=True):
        if kind is int:
            if type(value) is not int or not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
                raise bad
        elif type(value) is not str or "\x00" in value:
            raise bad
    return list(values)
