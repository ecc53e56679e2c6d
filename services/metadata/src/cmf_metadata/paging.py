"""Paging the metadata lists, on top of the cursors of :mod:`cmf_common.paging`.

The seed's lists and ``/api/native/v1`` page by keyset: a page ends with an opaque cursor that
holds the last row's sort key and id, so a page costs the same at any depth and rows pushed
meanwhile never shift it; the cursor is bound to its query and checked (see
:mod:`cmf_common.paging`). The reference's listings page by number (``active_page`` of
``record_per_page``) and count every match.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from cmf_common.access import current_prefix
from cmf_common.db import Connection, read_snapshot
from cmf_common.errors import Invalid
from cmf_common.paging import encode_cursor
from cmf_common.tracing import span
from cmf_metadata.store.paging import KeysetPage, NumberedPage
from cmf_metadata.store.pipelines import pipeline_id

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


async def pipeline_listing(
    pool: asyncpg.Pool,
    span_name: str,
    pipeline_name: str,
    read: Callable[[Connection, int], Awaitable[NumberedPage]],
    item: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """A reference listing of one pipeline, ``{"total_items", "items"}``: ``read`` its page
    (given the pipeline's id) in one snapshot, inside a span; an unknown pipeline's page is
    empty."""
    with span(span_name, pipeline=pipeline_name):
        async with read_snapshot(pool) as conn:
            pipeline = await pipeline_id(conn, pipeline_name, current_prefix())
            page = None if pipeline is None else await read(conn, pipeline)
    if page is None:
        return {"total_items": 0, "items": []}
    return {"total_items": page.total, "items": [item(r) for r in page.rows]}
