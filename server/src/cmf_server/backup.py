"""``cmf-server export`` and ``cmf-server import``: a whole server as one NDJSON file, and back
into an empty server (docs/operations.md, "Backup and restore").

The file, one JSON document a line:

- ``{"kind": "cmf-server-backup", "version": 1, "created", "migrations", "tables", "totals"}``
  first: what wrote it (each schema's migration versions, which the importing server must have
  too) and how much follows (rows, blobs, files and their bytes).
- ``{"kind": "rows", "schema": "metadata", "table", "rows": [...]}``: the metadata schema's
  tables (Metahub's registrations, schedules and logs included), at most 1,000 rows a line,
  parents before children, every row the JSON text PostgreSQL's ``to_jsonb`` writes (kept as
  a string, so no number is ever re-read by another parser), ids and times included: a
  restored server answers pulls byte for byte as the old one did. All of them are read in one
  repeatable-read snapshot (:mod:`cmf_common.dump`; which tables, from
  :mod:`cmf_metadata.store.backup`).
- ``{"kind": "blob", "digest", "size", "sha256"}`` per artifact blob of the catalogue, then its
  bytes as ``{"kind": "chunk", "data": <base64>}`` lines (1 MiB each) until ``size`` is reached;
  imported through the artifact service's own ``Blobs.put``, so the md5 is checked again and the
  blob's event is written as an upload's would be.
- ``{"kind": "file", "key", "size"}`` per uploaded file (python envs, label CSVs, TensorBoard
  logs), then its chunks, saved through the metadata service's ``FileStore``.
- ``{"kind": "end", "lines": N}`` last: a file without it was cut short.

The lineage graph is not in the file: it is derived from the metadata tables, and ``cmf-server
lineage rebuild`` makes it again after an import.

An import records how far it got in ``<file>.import-progress`` after each line it applied (a
batch of rows, a whole blob, a whole file): run again on the same file, it skips what is in
already and goes on. Writes are idempotent, so the one unit in flight when it stopped is simply
written again.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import asyncpg
import orjson
from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

from cmf_artifacts.app import MIGRATIONS as ARTIFACT_MIGRATIONS
from cmf_artifacts.app import open_blob_store
from cmf_artifacts.blobs import Blobs
from cmf_artifacts.settings import ArtifactSettings
from cmf_artifacts.store import blobs as blob_store
from cmf_common import dump
from cmf_common.db import read_snapshot, service_pool
from cmf_metadata.app import MIGRATIONS as METADATA_MIGRATIONS
from cmf_metadata.files import ENV, LABELS, TENSORBOARD, FileStore, LocalFileStore
from cmf_metadata.settings import MetadataSettings
from cmf_metadata.store import backup as metadata_backup

FORMAT, VERSION = "cmf-server-backup", 1
ROWS_PER_LINE = 1000
CHUNK_BYTES = 1024 * 1024
BLOBS_PER_PAGE = 500
FILE_FOLDERS = (ENV, LABELS, TENSORBOARD)
NO_LIMIT = 1 << 62


class BackupError(Exception):
    """The backup file or the target server is not what an import needs; said in words."""


@dataclass(frozen=True)
class Target:
    """The server's databases and folders, found as ``cmf-server up`` finds them."""

    metadata: MetadataSettings
    artifacts: ArtifactSettings


@dataclass
class Opened:
    metadata: asyncpg.Pool
    artifacts: asyncpg.Pool
    blobs: Blobs
    files: FileStore


@asynccontextmanager
async def opened(target: Target) -> AsyncIterator[Opened]:
    """The services' pools (their migrations applied), the blob store and the file store."""
    small = {"database_pool_min": 1, "database_pool_max": 2}
    metadata = target.metadata.model_copy(update=small)
    artifacts = target.artifacts.model_copy(update=small)
    async with AsyncExitStack() as stack:
        metadata_pool = await stack.enter_async_context(
            service_pool(metadata, METADATA_MIGRATIONS, application_name="cmf-backup")
        )
        artifact_pool = await stack.enter_async_context(
            service_pool(artifacts, ARTIFACT_MIGRATIONS, application_name="cmf-backup")
        )
        store = await open_blob_store(artifacts, stack)
        yield Opened(
            metadata_pool,
            artifact_pool,
            Blobs(artifact_pool, store, artifacts),
            LocalFileStore(metadata.files_dir),
        )


def _bar(total: int, desc: str, unit: str, quiet: bool) -> tqdm[Any]:
    scale = unit == "B"
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=scale,
        unit_divisor=1024 if scale else 1000,
        file=sys.stderr,
        disable=quiet,
        mininterval=0.5,
    )


def _line(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document) + b"\n"


async def _chunks_of(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``source`` re-cut into lines of at most ``CHUNK_BYTES`` bytes."""
    pending = b""
    async for chunk in source:
        pending += chunk
        while len(pending) >= CHUNK_BYTES:
            yield pending[:CHUNK_BYTES]
            pending = pending[CHUNK_BYTES:]
    if pending:
        yield pending


def _chunk_line(data: bytes) -> bytes:
    return b'{"kind":"chunk","data":"' + base64.b64encode(data) + b'"}\n'


# --- export ----------------------------------------------------------------------------------


@dataclass
class Summary:
    lines: int = 0
    rows: int = 0
    blobs: int = 0
    files: int = 0
    bytes: int = 0
    resumed_after: int = 0
    tables: dict[str, int] = field(default_factory=dict)


async def export(target: Target, out: IO[bytes], *, quiet: bool = False) -> Summary:
    """Write the whole server to ``out`` (see the module's docstring)."""
    summary = Summary()

    def emit(data: bytes) -> None:
        out.write(data)
        summary.lines += 1

    async with opened(target) as server:
        async with server.artifacts.acquire() as artifacts_conn:
            artifact_versions = await dump.migration_versions(artifacts_conn)
            blob_count, blob_bytes = await blob_store.blob_totals(artifacts_conn)
        files = [f for folder in FILE_FOLDERS for f in await server.files.list(f"{folder}/")]
        async with read_snapshot(server.metadata) as conn:
            tables = await dump.tables_in_order(conn, leave_out=metadata_backup.LEFT_OUT)
            counts = {t: await dump.row_count(conn, t) for t in tables}
            emit(
                _line(
                    {
                        "kind": FORMAT,
                        "version": VERSION,
                        "created": datetime.now(UTC).isoformat(),
                        "migrations": {
                            "metadata": await dump.migration_versions(conn),
                            "artifacts": artifact_versions,
                        },
                        "tables": {"metadata": tables},
                        "totals": {
                            "rows": sum(counts.values()),
                            "rows_by_table": counts,
                            "blobs": blob_count,
                            "blob_bytes": blob_bytes,
                            "files": len(files),
                            "file_bytes": sum(f.size for f in files),
                        },
                    }
                )
            )
            with _bar(sum(counts.values()), "metadata", "row", quiet) as bar:
                for table in tables:
                    async for rows in dump.rows_of(conn, table, batch=ROWS_PER_LINE):
                        emit(
                            _line(
                                {"kind": "rows", "schema": "metadata", "table": table, "rows": rows}
                            )
                        )
                        summary.rows += len(rows)
                        summary.tables[table] = summary.tables.get(table, 0) + len(rows)
                        bar.update(len(rows))
        with _bar(blob_bytes + sum(f.size for f in files), "bytes", "B", quiet) as bar:
            after = ""
            while True:
                async with server.artifacts.acquire() as conn:
                    page = await blob_store.blobs_after(conn, after, BLOBS_PER_PAGE)
                if not page:
                    break
                for blob in page:
                    emit(
                        _line(
                            {
                                "kind": "blob",
                                "digest": blob["digest"],
                                "size": blob["size"],
                                "sha256": blob["sha256"],
                            }
                        )
                    )
                    download = await server.blobs.download(blob["digest"])
                    async for data in _chunks_of(download.chunks):
                        emit(_chunk_line(data))
                        bar.update(len(data))
                        summary.bytes += len(data)
                    summary.blobs += 1
                after = page[-1]["digest"]
            for stored in files:
                emit(_line({"kind": "file", "key": stored.key, "size": stored.size}))
                async for data in _chunks_of(await server.files.open(stored.key)):
                    emit(_chunk_line(data))
                    bar.update(len(data))
                    summary.bytes += len(data)
                summary.files += 1
    summary.lines += 1
    out.write(_line({"kind": "end", "lines": summary.lines}))
    out.flush()
    return summary


# --- import ----------------------------------------------------------------------------------


class _Lines:
    """The backup file's lines, numbered from 1, each parsed; counts the bytes read."""

    def __init__(self, file: IO[bytes], bar: tqdm[Any]) -> None:
        self.file = file
        self.bar = bar
        self.number = 0

    def next(self) -> dict[str, Any] | None:
        raw = self.file.readline()
        if not raw:
            return None
        self.number += 1
        self.bar.update(len(raw))
        try:
            document: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BackupError(f"line {self.number} is not JSON ({exc})") from exc
        return document

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The ``chunk`` lines that carry ``size`` bytes, decoded."""
        left = size
        while left > 0:
            line = self.next()
            if line is None or line.get("kind") != "chunk":
                raise BackupError(
                    f"line {self.number}: the file was cut short ({left} bytes of an item missing)"
                )
            data = base64.b64decode(line["data"])
            left -= len(data)
            if left < 0:
                raise BackupError(f"line {self.number}: more bytes than the item's size")
            yield data

    async def drain(self, chunks: AsyncIterator[bytes]) -> None:
        """Read what an item's consumer left unread (a blob stored already)."""
        async for _ in chunks:
            pass


def _opened_file(path: Path) -> tuple[IO[bytes], int]:
    file = path.open("rb")
    return file, path.stat().st_size


def progress_path(path: Path) -> Path:
    return path.with_name(path.name + ".import-progress")


def _read_progress(path: Path, created: str) -> int:
    state = progress_path(path)
    if not state.exists():
        return 0
    recorded = orjson.loads(state.read_bytes())
    if recorded.get("created") != created:
        raise BackupError(
            f"{state} records an import of another backup; remove it to import this one"
        )
    return int(recorded["done"])


def _record_progress(path: Path, created: str, done: int) -> None:
    state = progress_path(path)
    partial = state.with_name(state.name + ".tmp")
    partial.write_bytes(orjson.dumps({"created": created, "done": done}))
    partial.replace(state)


async def _check_empty(server: Opened) -> None:
    async with server.metadata.acquire() as conn:
        full = await dump.holds_rows(conn, metadata_backup.CONTENT)
    async with server.artifacts.acquire() as conn:
        blob_count, _ = await blob_store.blob_totals(conn)
    files = [f for folder in FILE_FOLDERS for f in await server.files.list(f"{folder}/")]
    if full or blob_count or files:
        held = [*full, *(["blobs"] if blob_count else []), *(["files"] if files else [])]
        raise BackupError(
            f"the server is not empty (it holds {', '.join(held)}): import into a new data dir"
            " or empty databases"
        )


def _check_migrations(header: dict[str, Any], here: dict[str, dict[str, int]]) -> None:
    for schema, versions in header["migrations"].items():
        if versions != here.get(schema):
            raise BackupError(
                f"the backup's {schema} schema is at migrations {versions}, this server's at"
                f" {here.get(schema)}: import with the cmf-server version that exported it"
            )


async def import_(target: Target, path: Path, *, quiet: bool = False) -> Summary:
    """Restore the backup at ``path`` into the (empty) server ``target``; resumes an import of
    the same file that stopped (see the module's docstring)."""
    summary = Summary()
    file, size = _opened_file(path)
    with file, _bar(size, "import", "B", quiet) as bar:
        lines = _Lines(file, bar)
        header = lines.next()
        if header is None or header.get("kind") != FORMAT:
            raise BackupError(f"{path} is not a cmf-server backup")
        if header.get("version") != VERSION:
            raise BackupError(f"backup format version {header.get('version')} is not {VERSION}")
        created = str(header["created"])
        async with opened(target) as server:
            async with server.metadata.acquire() as conn:
                metadata_versions = await dump.migration_versions(conn)
            async with server.artifacts.acquire() as conn:
                artifact_versions = await dump.migration_versions(conn)
            _check_migrations(
                header, {"metadata": metadata_versions, "artifacts": artifact_versions}
            )
            done = _read_progress(path, created)
            if done == 0:
                await _check_empty(server)
            summary.resumed_after = done
            while True:
                start = lines.number + 1
                line = lines.next()
                if line is None:
                    raise BackupError(f"{path} ends before its end line: it was cut short")
                kind = line.get("kind")
                if kind == "end":
                    if line.get("lines") != lines.number:
                        raise BackupError(
                            f"{path} has {lines.number} lines, its end says {line.get('lines')}"
                        )
                    break
                skip = start <= done
                if kind == "rows":
                    if not skip:
                        await _restore_rows(server, line, summary)
                elif kind == "blob":
                    chunks = lines.chunks(int(line["size"]))
                    if not skip:
                        await server.blobs.put(line["digest"], chunks, size_hint=line["size"])
                        summary.blobs += 1
                        summary.bytes += int(line["size"])
                    await lines.drain(chunks)
                elif kind == "file":
                    chunks = lines.chunks(int(line["size"]))
                    if not skip:
                        await server.files.save(line["key"], chunks, max_bytes=NO_LIMIT)
                        summary.files += 1
                        summary.bytes += int(line["size"])
                    await lines.drain(chunks)
                else:
                    raise BackupError(f"line {start}: unknown kind {kind!r}")
                if not skip:
                    _record_progress(path, created, lines.number)
            async with server.metadata.acquire() as conn:
                for table in header["tables"]["metadata"]:
                    await dump.move_sequences(conn, table)
    summary.lines = lines.number
    progress_path(path).unlink(missing_ok=True)
    return summary


async def _restore_rows(server: Opened, line: dict[str, Any], summary: Summary) -> None:
    if line.get("schema") != "metadata":
        raise BackupError(f"rows of an unknown schema {line.get('schema')!r}")
    table = str(line["table"])
    rows = [str(r) for r in line["rows"]]
    async with server.metadata.acquire() as conn, conn.transaction():
        await dump.restore_rows(conn, table, rows)
    summary.rows += len(rows)
    summary.tables[table] = summary.tables.get(table, 0) + len(rows)


def describe(summary: Summary) -> Iterator[str]:
    yield (
        f"{summary.rows:,} rows, {summary.blobs:,} blobs, {summary.files:,} files,"
        f" {summary.bytes:,} bytes in {summary.lines:,} lines"
    )
    if summary.resumed_after:
        yield f"resumed after line {summary.resumed_after:,}"


# --- the command -----------------------------------------------------------------------------


def _target(data_dir: Path | None) -> tuple[Target, Any]:
    """The server's databases and folders as ``cmf-server up`` finds them: ``DATABASE_URL``
    (or a service's own URL) when set, else the data dir's embedded PostgreSQL, started or
    reused (returned, to stop after); the data dir's ``files`` and ``artifacts`` when a data
    dir is named or the server is embedded, else ``FILES_DIR`` and ``ARTIFACTS_DIR``."""
    from pydantic import SecretStr

    from cmf_server.settings import ServerSettings

    settings = ServerSettings(data_dir=data_dir) if data_dir else ServerSettings()
    root = settings.data_dir.resolve()
    metadata, artifacts = MetadataSettings(), ArtifactSettings()
    embedded = None
    if metadata.database_url is None:
        from cmf_server import embedded_postgres

        uri, embedded = embedded_postgres.start(root)
        url = SecretStr(uri)
        metadata = metadata.model_copy(update={"database_url": url})
        if artifacts.database_url is None:
            artifacts = artifacts.model_copy(update={"database_url": url})
    if data_dir is not None or embedded is not None:
        metadata = metadata.model_copy(update={"files_dir": root / "files"})
        artifacts = artifacts.model_copy(update={"artifacts_dir": root / "artifacts"})
    return Target(metadata, artifacts), embedded


def run(action: str, data_dir: Path | None, path: str, *, quiet: bool) -> int:
    """``cmf-server export`` (``path``: a file, ``-`` for stdout) or ``import`` (``path``: the
    backup file). Exits 1 with the reason when an import cannot be made."""
    import asyncio

    target, embedded = _target(data_dir)
    try:
        if action == "export":
            if path == "-":
                summary = asyncio.run(export(target, sys.stdout.buffer, quiet=quiet))
            else:
                with Path(path).open("wb") as out:
                    summary = asyncio.run(export(target, out, quiet=quiet))
        else:
            try:
                summary = asyncio.run(import_(target, Path(path), quiet=quiet))
            except BackupError as exc:
                print(f"cmf-server import: {exc}", file=sys.stderr)
                return 1
    finally:
        if embedded is not None:
            from cmf_server import embedded_postgres

            embedded_postgres.stop(embedded)
    for line in describe(summary):
        print(f"cmf-server {action}: {line}", file=sys.stderr)
    if action == "import":
        print(
            "cmf-server import: done; now rebuild the lineage graph: cmf-server lineage rebuild",
            file=sys.stderr,
        )
    return 0
