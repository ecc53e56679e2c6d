"""All SQL of a backup's table rows (``cmf-server export`` / ``import``, cmf_server.backup): a
service schema's tables read as JSON rows in one snapshot, and written back into an empty
schema of the same migrations with their own ids, then the schema's sequences moved past them.

Rows travel as ``to_jsonb(row)`` text, so every column type round-trips through the row type
itself (``jsonb_populate_recordset``): timestamps, arrays, JSON, numbers, bytes. Generated
columns are left to PostgreSQL. Writing is idempotent (``ON CONFLICT DO NOTHING`` on every
unique key), so an import that is resumed may write a batch twice. Which tables a service backs
up is the service's word (its ``store`` module lists the tables it derives or only keeps for a
while); the order is the foreign keys', parents first.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence

from cmf_common.db import Connection

# Migrations are the schema's own history: a restore runs the service's migrations instead.
NEVER_DUMPED = frozenset({"schema_migrations"})
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _name(table: str) -> str:
    if not _IDENTIFIER.match(table):
        raise ValueError(f"not a plain table name: {table!r}")
    return f'"{table}"'


async def tables_in_order(conn: Connection, *, leave_out: Iterable[str] = ()) -> list[str]:
    """The current schema's tables, each after every table it references, less ``leave_out``
    and the migrations' table."""
    skipped = NEVER_DUMPED | set(leave_out)
    names = [
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_class c"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            " ORDER BY c.relname"
        )
        if r["relname"] not in skipped
    ]
    parents: dict[str, set[str]] = {n: set() for n in names}
    for r in await conn.fetch(
        "SELECT c.relname AS child, p.relname AS parent FROM pg_constraint k"
        " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid"
        " WHERE k.contype = 'f' AND c.relnamespace = current_schema()::regnamespace"
    ):
        if r["child"] in parents and r["parent"] in parents and r["child"] != r["parent"]:
            parents[r["child"]].add(r["parent"])
    ordered: list[str] = []
    while parents:
        ready = sorted(n for n, p in parents.items() if not p - set(ordered))
        if not ready:
            raise RuntimeError(f"foreign keys in a cycle: {sorted(parents)}")
        ordered.extend(ready)
        for n in ready:
            del parents[n]
    return ordered


async def migration_versions(conn: Connection) -> dict[str, int]:
    """Each migration track's last version in the current schema."""
    rows = await conn.fetch("SELECT track, max(version) AS v FROM schema_migrations GROUP BY track")
    return {r["track"]: int(r["v"]) for r in rows}


async def row_count(conn: Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {_name(table)}"))  # noqa: S608


async def rows_of(conn: Connection, table: str, *, batch: int = 1000) -> AsyncIterator[list[str]]:
    """The rows of ``table`` as JSON texts, ``batch`` at a time, through a cursor: the caller
    holds the (repeatable read) transaction that every table of the dump is read in."""
    cursor = await conn.cursor(f"SELECT to_jsonb(t)::text FROM {_name(table)} t")  # noqa: S608
    while True:
        rows = await cursor.fetch(batch)
        if not rows:
            return
        yield [r[0] for r in rows]


async def _columns(conn: Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_attribute a"
        " WHERE a.attrelid = (current_schema() || '.' || $1)::regclass"
        "   AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
        " ORDER BY a.attnum",
        table,
    )
    return [r["attname"] for r in rows]


async def restore_rows(conn: Connection, table: str, rows: Sequence[str]) -> int:
    """Write ``rows`` (JSON texts from :func:`rows_of`) into ``table`` in one statement; rows
    already there (by any unique key) are kept. Returns how many were written."""
    if not rows:
        return 0
    columns = ", ".join(f'"{c}"' for c in await _columns(conn, table))
    done = await conn.execute(
        f"INSERT INTO {_name(table)} ({columns})"  # noqa: S608 (names from the catalog)
        f" SELECT {columns} FROM jsonb_populate_recordset(NULL::{_name(table)}, $1::text::jsonb)"
        " ON CONFLICT DO NOTHING",
        "[" + ",".join(rows) + "]",
    )
    return int(done.split()[-1])


async def move_sequences(conn: Connection, table: str) -> None:
    """Move each sequence that numbers a column of ``table`` past its highest value, so rows
    made after a restore get fresh ids."""
    for r in await conn.fetch(
        "SELECT a.attname, pg_get_serial_sequence(current_schema() || '.' || $1, a.attname) AS seq"
        " FROM pg_attribute a WHERE a.attrelid = (current_schema() || '.' || $1)::regclass"
        "   AND a.attnum > 0 AND NOT a.attisdropped",
        table,
    ):
        if r["seq"] is not None:
            await conn.execute(
                f'SELECT setval($1, coalesce(max("{r["attname"]}"), 0) + 1, false)'  # noqa: S608
                f" FROM {_name(table)}",
                r["seq"],
            )


async def holds_rows(conn: Connection, tables: Iterable[str]) -> list[str]:
    """Which of ``tables`` hold any row."""
    found = []
    for table in tables:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {_name(table)})"):  # noqa: S608
            found.append(table)
    return found
