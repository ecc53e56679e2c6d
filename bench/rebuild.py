"""Rebuild of the lineage graph from the metadata export, on PostgreSQL and on Neo4j.

    python -m bench.rebuild [--pipelines 20] [--executions 10000]

Seeds a fresh metadata database on the test PostgreSQL (``make services-up``) through
``cmf-server up`` with generator pipelines (each execution: the shared Environment and two
Datasets in, two Datasets out, so five edges), then runs what ``cmf-server lineage rebuild``
runs: the PostgreSQL rebuild into a fresh database (build a staging schema, switch it in, then
the catch-up pass) and the Neo4j rebuild in place (empty the graph, re-project). The graph's
size is counted in the rebuilt PostgreSQL graph. Figures go to ``bench/RESULTS.md`` between the
``rebuild`` markers. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import asyncpg

from bench.listings import server_on
from bench.results import update_results
from bench.run import machine
from bench.seed import seed
from cmf_testing.databases import ADMIN_URL, create_database, drop_database, with_database

START, END = "<!-- rebuild:start -->", "<!-- rebuild:end -->"
KAFKA = os.environ.get("CMF_TEST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
NEO4J = {
    "neo4j_uri": os.environ.get("CMF_TEST_NEO4J_URI", "bolt://127.0.0.1:7687"),
    "neo4j_user": os.environ.get("CMF_TEST_NEO4J_USER", "neo4j"),
    "neo4j_password": os.environ.get("CMF_TEST_NEO4J_PASSWORD", "cmf"),
}
TARGET_S = 300.0


def _progress(message: str) -> None:
    print(f"[rebuild] {message}", file=sys.stderr, flush=True)


def new_database() -> tuple[str, str]:
    name = asyncio.run(create_database("cmf_bench"))
    return name, with_database(ADMIN_URL, name)


async def _count(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            t: int(await conn.fetchval(f"SELECT count(*) FROM lineage.{t}"))  # noqa: S608
            for t in ("edges", "executions", "artifacts")
        }
    finally:
        await conn.close()


async def rebuild_both(metadata_url: str, lineage_url: str) -> dict[str, Any]:
    from pydantic import SecretStr

    from cmf_lineage.rebuild import rebuild_neo4j, rebuild_postgres
    from cmf_lineage.settings import LineageSettings
    from cmf_lineage.store import open_graph_store
    from cmf_metadata.settings import MetadataSettings
    from cmf_server.lineage_admin import in_process_export

    source = in_process_export(MetadataSettings(database_url=SecretStr(metadata_url)))
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    figures["postgres_writes"] = await rebuild_postgres(lineage_url, source, "cmf-lineage")
    figures["postgres_s"] = time.perf_counter() - started
    figures["graph"] = await _count(lineage_url)
    _progress(f"PostgreSQL rebuild: {figures['postgres_s']:.1f} s, {figures['graph']}")
    settings = LineageSettings(**NEO4J)  # type: ignore[arg-type]
    async with open_graph_store(settings) as opened:
        started = time.perf_counter()
        figures["neo4j_writes"] = await rebuild_neo4j(opened.store, source, "cmf-lineage")
        figures["neo4j_s"] = time.perf_counter() - started
    _progress(f"Neo4j rebuild: {figures['neo4j_s']:.1f} s")
    return figures


def render(info: dict[str, Any], pipelines: int, executions: int, f: dict[str, Any]) -> str:
    graph = f["graph"]
    ram = info["ram_bytes"] / 1024**3

    def verdict(seconds: float) -> str:
        return "yes" if seconds <= TARGET_S else "**no**"

    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {info['cpu']},"
            f" {info['nproc']} CPUs, {ram:.1f} GiB RAM; commit {info['commit']}. PostgreSQL 15"
            " (Debian) and Neo4j 5.26 Community on the same machine, sharing its 2 cores with the"
            " rebuilding process.",
            "",
            f"Graph: {pipelines} generator pipelines of {executions:,} executions: "
            f"{graph['edges']:,} edges, {graph['executions']:,} executions,"
            f" {graph['artifacts']:,} artifacts. One run each (a rebuild is not repeated).",
            "",
            "| store | rebuild | graph writes | target | within target |",
            "|---|---:|---:|---:|---|",
            f"| PostgreSQL (staging schema, switch, catch-up pass) | {f['postgres_s']:.0f} s |"
            f" {f['postgres_writes']:,} | ≤ 300 s | {verdict(f['postgres_s'])} |",
            f"| Neo4j (emptied, re-projected in place) | {f['neo4j_s']:.0f} s |"
            f" {f['neo4j_writes']:,} | ≤ 300 s | {verdict(f['neo4j_s'])} |",
            "",
            "The PostgreSQL figure includes both passes over the export (the second carries over"
            " what a live projector wrote into the old schema during the first).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument("--pipelines", type=int, default=20)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    metadata_name, metadata_url = new_database()
    lineage_name, lineage_url = new_database()
    try:
        # With a Kafka configured and no relay running, events stay in the outbox: the seeding
        # is not slowed by an in-process projection.
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = KAFKA
        with server_on(metadata_url, "/var/tmp") as server:
            seed(
                server.url,
                pushes=args.pipelines,
                executions=args.executions,
                pipeline="bench-rebuild",
                distinct=True,
            )
        figures = asyncio.run(rebuild_both(metadata_url, lineage_url))
    finally:
        for name in (metadata_name, lineage_name):
            asyncio.run(drop_database(name))
    section = render(machine(), args.pipelines, args.executions, figures)
    print(section)
    if not args.no_write:
        update_results(START, END, "Lineage rebuild", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
