"""Totals of filtered listings, remembered per pipeline version.

A filter that matches most of a big stage is cheap to page (the sort index is walked until the
page is full) but dear to count: every execution of the stage is tested. The UI asks for the
same count again with every page it turns, so the total is kept under a key that carries the
pipeline's version: its last outbox sequence, read in the same snapshot as the page. Every
change to a pipeline's executions is a push of that pipeline, and every push that changes
anything writes its events, and so a new sequence, in the same transaction. A kept total is
therefore exactly the count at the version in its key, and it is never served for another
version: entries are not invalidated, only left behind. Each process keeps its own (no shared
state is needed for correctness, and a miss only costs the count).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from prometheus_client import Counter

LOOKUPS = Counter(
    "cmf_listing_count_cache_lookups_total",
    "Filtered listing totals looked up in the per-version cache, by result (hit, miss).",
    ["result"],
)


class MatchCounts:
    """A bounded least-recently-used map from (listing, pipeline version, filter) to a total."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[Hashable, int] = OrderedDict()

    def get(self, key: Hashable) -> int | None:
        total = self.entries.get(key)
        if total is None:
            LOOKUPS.labels("miss").inc()
            return None
        LOOKUPS.labels("hit").inc()
        self.entries.move_to_end(key)
        return total

    def put(self, key: Hashable, total: int) -> None:
        self.entries[key] = total
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
