"""Answers remembered per pipeline version: the totals of filtered listings here, a stage's
columns in ``views`` (``KeptPerVersion``).

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
from typing import Generic, TypeVar

from prometheus_client import Counter

LOOKUPS = Counter(
    "cmf_listing_count_cache_lookups_total",
    "Filtered listing totals looked up in the per-version cache, by result (hit, miss).",
    ["result"],
)

Answer = TypeVar("Answer")


class KeptPerVersion(Generic[Answer]):
    """A bounded least-recently-used map from a key that carries a pipeline version (see the
    module's docstring: such an entry is never stale, only left behind) to an answer;
    ``lookups``, when given, counts hits and misses."""

    def __init__(self, max_entries: int, lookups: Counter | None = None) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[Hashable, Answer] = OrderedDict()
        self._lookups = lookups

    def get(self, key: Hashable) -> Answer | None:
        answer = self.entries.get(key)
        if self._lookups is not None:
            self._lookups.labels("miss" if answer is None else "hit").inc()
        if answer is not None:
            self.entries.move_to_end(key)
        return answer

    def put(self, key: Hashable, answer: Answer) -> None:
        self.entries[key] = answer
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


class MatchCounts(KeptPerVersion[int]):
    """(listing, pipeline version, filter) to a total."""

    def __init__(self, max_entries: int = 4096) -> None:
        super().__init__(max_entries, LOOKUPS)
