"""What a list request asks, checked: the ``/api/native/v1`` lists' :class:`ListQuery` (filters,
sort, keyset page), the reference listings' :class:`PageQuery` (numbered page, free text), and the
parsing of their filters (property ``key:value``, free text as a LIKE pattern, sort, times).

No FastAPI here: a bad parameter is :class:`~cmf_common.errors.Invalid`, which the HTTP boundary
renders as problem+json.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import orjson

from cmf_common.errors import Invalid
from cmf_common.paging import decode_cursor, query_scope
from cmf_metadata.paging import DEFAULT_LIMIT, check_limit, keyset_page, split_page
from cmf_metadata.store.paging import KeysetPage, SortColumn

MAX_PROPERTY_FILTERS = 20


def check_text(name: str, value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database."""
    if value is not None and "\x00" in value:
        raise Invalid(f"{name} must not contain NUL characters", code="invalid_parameter")
    return value


_INTEGER = re.compile(r"[-+]?[0-9]+")
_DECIMAL = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def property_candidates(raw: str) -> list[dict[str, Any]]:
    """``key:value`` → the objects one of which either property bag must contain.

    The key ends at the first colon; the value is the rest, matched as given and, when it reads
    as a number, as that number too (CMF stores ``seed: 42`` but ``split: "0.2"``).
    """
    check_text("property", raw)
    key, colon, value = raw.partition(":")
    if not colon or not key:
        raise Invalid(
            f"property filter {raw!r} must be key:value (the key ends at the first colon)",
            code="invalid_property",
        )
    candidates: list[dict[str, Any]] = [{key: value}]
    if _INTEGER.fullmatch(value) and len(value) <= 40:
        candidates.append({key: int(value)})
    elif _DECIMAL.fullmatch(value) and len(value) <= 40:
        number = float(value)
        if math.isfinite(number):
            candidates.append({key: number})
    return candidates


def like_pattern(text: str) -> str | None:
    """``%text%``: a substring pattern for LIKE and ILIKE (their escape is the backslash), its
    ``%``, ``_`` and ``\\`` matched literally; ``None`` for an empty text, which filters nothing.

    NUL is the caller's to refuse (:func:`check_text`) where it is an error; the reference
    listings pass it on as it is.
    """
    if text == "":
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def json_like_pattern(text: str) -> str | None:
    """``like_pattern`` of ``text`` as it appears inside a JSON string (``\\`` and ``"``
    escaped), to find it in properties rendered as JSON text."""
    return like_pattern(orjson.dumps(text).decode()[1:-1])


def parse_sort(sort: str, allowed: Sequence[str]) -> tuple[str, bool]:
    """``field`` or ``-field`` (descending), the field one of ``allowed``."""
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    if name not in allowed:
        raise Invalid(
            f"cannot sort by {sort!r}; sort by one of {', '.join(allowed)}"
            " (a leading '-' sorts descending)",
            code="invalid_sort",
        )
    return name, descending


def check_range(after: int | None, before: int | None) -> None:
    if after is not None and before is not None and after >= before:
        raise Invalid("created_after must be less than created_before", code="invalid_parameter")


def property_filters(raw: Sequence[str]) -> list[list[dict[str, Any]]]:
    if len(raw) > MAX_PROPERTY_FILTERS:
        raise Invalid(f"at most {MAX_PROPERTY_FILTERS} property filters", code="invalid_parameter")
    return [property_candidates(p) for p in raw]


@dataclass(frozen=True)
class ListQuery:
    """The filters, sort and page of an ``/api/native/v1`` list; executions take exactly these."""

    pipeline: str | None = None
    stage: str | None = None
    type: str | None = None
    properties: tuple[str, ...] = ()
    created_after: int | None = None
    created_before: int | None = None
    q: str | None = None
    sort: str = "id"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True)
class ArtifactQuery(ListQuery):
    """Artifacts take the same, and the artifact service's exact lookups."""

    uri: str | None = None
    name: str | None = None


def scope_of(route: str, query: ListQuery) -> str:
    """What a cursor of this list is bound to: the route, the filters and the sort."""
    fields = asdict(query)
    del fields["limit"], fields["cursor"]  # a page size may change between pages
    return query_scope(route, **fields)


@dataclass(frozen=True)
class ListRequest:
    """A validated ``/api/native/v1`` list request: what both entity listings share."""

    page: KeysetPage
    properties: list[list[dict[str, Any]]]
    text: str | None
    scope: str

    def answer(
        self,
        total: int,
        rows: list[asyncpg.Record],
        item: Callable[[asyncpg.Record], dict[str, Any]],
    ) -> dict[str, Any]:
        """``{"items", "total", "next_cursor"}`` of the page the store read for this request."""
        rows, next_cursor = split_page(rows, self.page.limit, self.scope)
        return {"items": [item(r) for r in rows], "total": total, "next_cursor": next_cursor}


def list_request(
    route: str,
    query: ListQuery,
    sorts: Mapping[str, SortColumn],
    text_fields: tuple[str, ...],
) -> ListRequest:
    """Check every parameter of ``query`` (the ``text_fields`` for NUL) and decode its cursor;
    :class:`~cmf_common.errors.Invalid` for the first that is wrong."""
    for name in text_fields:
        check_text(name, getattr(query, name))
    check_limit(query.limit)
    check_range(query.created_after, query.created_before)
    sort, descending = parse_sort(query.sort, list(sorts))
    scope = scope_of(route, query)
    after = (
        None
        if query.cursor is None
        else decode_cursor(query.cursor, scope, (sorts[sort].kind, int))
    )
    properties = property_filters(query.properties)
    text = None
    if query.q:
        check_text("q", query.q)
        text = like_pattern(query.q)
    return ListRequest(
        page=keyset_page(sort, descending, query.limit, after),
        properties=properties,
        text=text,
        scope=scope,
    )


@dataclass(frozen=True)
class PageQuery:
    """The reference's paging, sorting and free-text filter (docs/wire-contract.md §1.7),
    already validated."""

    active_page: int = 1
    record_per_page: int = 5
    sort_order: str = "asc"
    filter_value: str = ""

    @property
    def limit(self) -> int:
        return self.record_per_page

    @property
    def offset(self) -> int:
        return (self.active_page - 1) * self.record_per_page

    @property
    def descending(self) -> bool:
        return self.sort_order.lower() == "desc"

    @property
    def pattern(self) -> str | None:
        """``%filter_value%`` for ILIKE, as the reference builds it
        (server/app/db/dbqueries.py: ``.ilike(f"%{filter_value}%")``, unescaped): its ``%`` and
        ``_`` are wildcards, ``\\`` escapes the next character, case is ignored. Unlike our own
        API's ``q`` (:func:`like_pattern`), which takes them as text."""
        return f"%{self.filter_value}%" if self.filter_value else None
