"""Paging the metadata lists, on top of the cursors of :mod:`cmf_common.paging`.

The seed's lists and ``/api/v1`` page by keyset: a page ends with an opaque cursor that holds the
last row's sort key and id, so a page costs the same at any depth and rows pushed meanwhile never
shift it; the cursor is bound to its query and checked (see :mod:`cmf_common.paging`). The
reference's listings page by number (``active_page`` of ``record_per_page``) and count every
match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from cmf_common.errors import Invalid
from cmf_common.paging import encode_cursor
from cmf_metadata.store.paging import KeysetPage, NumberedPage

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_parameter")


def keyset_page(sort: str, descending: bool, limit: int, after: list[Any] | None) -> KeysetPage:
    """The page after ``after`` (a decoded cursor: the last row's sort key and id)."""
    return KeysetPage(
        sort=sort,
        descending=descending,
        after=(after[0], after[1]) if after is not None else None,
        limit=limit,
    )


def split_page(
    rows: list[asyncpg.Record], limit: int, scope: str, key: tuple[str, str] = ("sort_key", "id")
) -> tuple[list[asyncpg.Record], str | None]:
    """The page's rows, and the cursor of the next page (from the last row's ``key`` columns)
    or ``None`` when no page follows: the store reads one row more than the page."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(scope, [last[key[0]], last[key[1]]])


def numbered_listing(
    page: NumberedPage | None, item: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """``{"total_items", "items"}``; no page (an unknown pipeline) is an empty one."""
    if page is None:
        return {"total_items": 0, "items": []}
    return {"total_items": page.total, "items": [item(r) for r in page.rows]}
