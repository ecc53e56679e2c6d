"""Where a Neo4j projection transaction spends its time, statement by statement.

    python -m bench.projection_phases [--pipelines 10] [--pushes 6] [--executions 100]
                                      [--group 1]

The real push (in this process) merges ``--pipelines`` x ``--pushes`` generator pushes (4
stages) into a fresh metadata database; their outbox rows, as envelopes, are applied to a clean
Neo4j with ``Neo4jGraphStore.apply`` in this process, ``--group`` events per call (1: what the
worker does, since the dispatcher hands it one run of same-type events at a time and a push's
events alternate in type). Each Cypher statement is timed from ``tx.run`` to its result being
consumed (``neo4j.AsyncManagedTransaction.run`` wrapped here, for this process only); what is
left of each ``apply`` is the session, BEGIN, the progress statement (not consumed by the
store, so it runs at commit) and COMMIT. Nothing is written to RESULTS.md: the figures are for
reading beside ``bench.projection``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from typing import Any

import neo4j
from neo4j import AsyncGraphDatabase

from bench.projection import clean_neo4j
from bench.stack import (
    ADMIN_URL,
    NEO4J_PASSWORD,
    NEO4J_URI,
    NEO4J_USER,
    fresh_database,
)
from cmf_common.db import create_pool
from cmf_common.events import Envelope
from cmf_common.migrations import migrate
from cmf_common.outbox import envelope_of
from cmf_lineage.store.neo4j import Neo4jGraphStore
from cmf_metadata.app import MIGRATIONS
from cmf_metadata.push import push
from cmf_testing.databases import with_database
from cmf_testing.generator import push_body

STATEMENT_SECONDS: dict[str, float] = collections.defaultdict(float)
STATEMENT_COUNT: collections.Counter[str] = collections.Counter()


def _label(query: str) -> str:
    """The statement's patterns, e.g. ``(a:Artifact (x:Execution (a)-[:INPUT``."""
    words = [w for w in query.split() if w.startswith(("(", "-["))]
    label = " ".join(words)[:80] or query[:60]
    if "n.pipelines" in query:
        label += " (with memberships)" if "n.type" in query else " (memberships only)"
    return label


def _time_statements() -> None:
    original = neo4j.AsyncManagedTransaction.run

    async def run(self: Any, query: Any, parameters: Any = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = await original(self, query, parameters, **kwargs)
        label = _label(str(query))

        def timed(method: Any) -> Any:
            async def wrapper(*args: Any, **kw: Any) -> Any:
                value = await method(*args, **kw)
                STATEMENT_SECONDS[label] += time.perf_counter() - started
                STATEMENT_COUNT[label] += 1
                return value

            return wrapper

        result.consume = timed(result.consume)  # type: ignore[method-assign]
        result.single = timed(result.single)  # type: ignore[method-assign]
        return result

    neo4j.AsyncManagedTransaction.run = run  # type: ignore[method-assign]


async def events_of_pushes(pipelines: int, pushes: int, executions: int) -> list[Envelope]:
    async with fresh_database("phases_meta") as db:
        pool = await create_pool(with_database(ADMIN_URL, db), "metadata", max_size=2)
        try:
            await migrate(pool, "metadata", MIGRATIONS)
            for k in range(pushes):
                for p in range(pipelines):
                    body = push_body(f"bench-proj-{p:03d}", executions, stages=4, seed=k)
                    await push(
                        pool,
                        pipeline_name=body["pipeline_name"],
                        json_payload=body["json_payload"],
                        exec_uuid=None,
                    )
            async with pool.acquire() as conn:
                rows = await conn.fetch("SELECT * FROM outbox ORDER BY position")
        finally:
            await pool.close()
    return [envelope_of(r) for r in rows]


async def main_async(args: argparse.Namespace) -> int:
    envelopes = await events_of_pushes(args.pipelines, args.pushes, args.executions)
    await clean_neo4j()
    _time_statements()
    driver = AsyncGraphDatabase.driver(NEO4J_URI, auth=(NEO4J_USER, NEO4J_PASSWORD))
    try:
        store = Neo4jGraphStore(driver)
        await store.setup()
        seconds_of: dict[str, float] = collections.defaultdict(float)
        count_of: collections.Counter[str] = collections.Counter()
        writes_of: collections.Counter[str] = collections.Counter()
        total, writes = 0.0, 0
        for i in range(0, len(envelopes), args.group):
            chunk = envelopes[i : i + args.group]
            started = time.perf_counter()
            batch = await store.apply("bench-phases", chunk)
            seconds = time.perf_counter() - started
            done = batch.writes() if batch is not None else 0
            total += seconds
            writes += done
            kind = chunk[0].type if args.group == 1 else f"{args.group} events"
            seconds_of[kind] += seconds
            count_of[kind] += 1
            writes_of[kind] += done
        statements = sum(STATEMENT_SECONDS.values())
        print(
            f"{len(envelopes)} events, {args.group} per transaction: {writes:,} writes in "
            f"{total:.2f} s = {writes / total:,.0f}/s"
        )
        for kind, seconds in seconds_of.items():
            print(
                f"  {kind}: {count_of[kind]} transactions, {seconds:.2f} s "
                f"({seconds / count_of[kind] * 1000:.1f} ms each), {writes_of[kind]:,} writes"
            )
        print(f"statements {statements:.2f} s; the rest of each apply {total - statements:.2f} s")
        for label, seconds in sorted(STATEMENT_SECONDS.items(), key=lambda kv: -kv[1]):
            count = STATEMENT_COUNT[label]
            print(f"  {seconds:6.2f} s  {count:5d} x {seconds / count * 1000:6.1f} ms  {label}")
    finally:
        await driver.close()
        await clean_neo4j()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.projection_phases", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--pushes", type=int, default=6)
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--group", type=int, default=1, help="events per apply")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
