"""The artifact service's domain: blobs by digest, streamed in and out of the ``BlobStore``,
catalogued (with their event) once stored, and resumable uploads.

No FastAPI here: failures are ``cmf_common.errors`` (and this service's own), which the HTTP
boundary words in each route's dialect.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

import asyncpg
import structlog
from prometheus_client import Counter

from cmf_artifacts.digests import Stored, check_digest
from cmf_artifacts.ranges import ByteRange, parse_range
from cmf_artifacts.settings import ArtifactSettings
from cmf_artifacts.storage import (
    BlobStore,
    PartInfo,
    blob_not_stored,
    current_parts,
    session_not_open,
    too_large,
)
from cmf_artifacts.store import blobs as store
from cmf_common import outbox
from cmf_common.artifact_events import SOURCE, BlobStored, new_event
from cmf_common.errors import Invalid

log = structlog.get_logger(__name__)

STORED = Counter("cmf_artifacts_blobs_stored_total", "Blobs stored, by how.", ["how"])
BYTES_IN = Counter("cmf_artifacts_bytes_received_total", "Blob bytes received and stored.")
BYTES_OUT = Counter("cmf_artifacts_bytes_sent_total", "Blob bytes read out to clients.")
MAX_PART_NUMBER = 10_000


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class Put:
    """What an upload did: ``deduplicated`` when the blob was stored already (nothing read)."""

    blob: Blob
    deduplicated: bool


@dataclass(frozen=True)
class Download:
    blob: Blob
    range: ByteRange | None
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class Session:
    id: uuid.UUID
    digest: str
    handle: str
    created_at: datetime
    touched_at: datetime


def check_part_number(number: int) -> int:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise Invalid(f"part numbers are 1 to {MAX_PART_NUMBER}", code="invalid_part_number")
    return number


class Blobs:
    def __init__(self, pool: asyncpg.Pool, blob_store: BlobStore, settings: ArtifactSettings):
        self.pool = pool
        self.store = blob_store
        self.settings = settings

    # --- blobs ------------------------------------------------------------------------------

    async def find(self, digest: str) -> Blob | None:
        """The blob stored under ``digest``: from the catalogue, else from the store (a blob
        that ``cmf artifact push`` wrote to the bucket is catalogued when first seen)."""
        digest = check_digest(digest)
        return await self._catalogued(digest) or await self._found(digest)

    async def _catalogued(self, digest: str) -> Blob | None:
        async with self.pool.acquire() as conn:
            row = await store.blob(conn, digest)
        return None if row is None else Blob(row["digest"], row["size"], row["sha256"])

    async def _found(self, digest: str) -> Blob | None:
        info = await self.store.stat(digest)
        if info is None:
            return None
        await self._record(digest, info.size, None, how="found")
        return Blob(digest, info.size, None)

    async def stored_among(self, digests: Sequence[str]) -> list[str]:
        """Which of ``digests`` are catalogued as stored (no store round trip)."""
        async with self.pool.acquire() as conn:
            return await store.stored_among(conn, [d.lower() for d in digests])

    async def put(
        self,
        digest: str,
        chunks: AsyncIterable[bytes],
        *,
        size_hint: int | None = None,
        expect_continue: bool = False,
    ) -> Put:
        """Store the stream under ``digest`` unless it is there already; then nothing of the
        stream is read.

        A digest the catalogue does not know is looked for in the store (one written there by
        ``cmf artifact push``) only when that can spare sending the body: the client waits for
        ``100 Continue``, or the body is larger than ``STORE_LOOKUP_BYTES`` (or of unknown
        length). A small body that is there already is written again, the same bytes under
        the same address: one request to the store instead of two."""
        digest = check_digest(digest)
        if size_hint is not None and size_hint > self.settings.max_blob_bytes:
            raise too_large(self.settings.max_blob_bytes)
        known = await self._catalogued(digest)
        if known is None and (
            expect_continue or size_hint is None or size_hint > self.settings.store_lookup_bytes
        ):
            known = await self._found(digest)
        if known is not None:
            STORED.labels("deduplicated").inc()
            return Put(known, True)
        stored = await self.store.write(
            digest, chunks, max_bytes=self.settings.max_blob_bytes, size_hint=size_hint
        )
        BYTES_IN.inc(stored.size)
        await self._record(digest, stored.size, stored.sha256, how="uploaded")
        return Put(Blob(digest, stored.size, stored.sha256), False)

    async def _record(self, digest: str, size: int, sha256: str | None, *, how: str) -> None:
        """Catalogue the blob and, the first time, write its event to the outbox, in one
        transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The blob's row is the digest's lock: a concurrent first record of it waits for
            # this one's commit and then finds it, so one event is written, and only one.
            if await store.add_blob(conn, digest, size, sha256):
                await outbox.add_events(
                    conn,
                    subject=digest,
                    source=SOURCE,
                    events=[new_event(BlobStored(digest, size, sha256))],
                )
                STORED.labels(how).inc()
                log.info("blob.stored", digest=digest, size=size, how=how)

    async def download(self, digest: str, range_header: str | None = None) -> Download:
        blob = await self.find(digest)
        if blob is None:
            raise blob_not_stored(digest)
        wanted = parse_range(range_header, blob.size)
        if wanted is None:
            chunks = self.store.read(blob.digest) if blob.size else no_bytes()
        else:
            chunks = self.store.read(blob.digest, wanted.start, wanted.end)
        return Download(blob, wanted, _counted(chunks))

    async def download_url(self, digest: str) -> str:
        blob = await self.find(digest)
        if blob is None:
            raise blob_not_stored(digest)
        url = await self.store.presign_read(blob.digest, self.settings.presign_expiry_s)
        if url is None:
            raise Invalid(
                f"the {self.store.kind} store has no presigned URLs: read the blob from this"
                " service",
                code="presign_unsupported",
            )
        return url

    # --- resumable uploads ------------------------------------------------------------------

    async def begin(self, digest: str) -> Session | Blob:
        """A new upload session for ``digest``; the blob when it is stored already."""
        digest = check_digest(digest)
        known = await self.find(digest)
        if known is not None:
            return known
        session = uuid.uuid4()
        handle = await self.store.create_session(str(session))
        async with self.pool.acquire() as conn:
            row = await store.add_session(conn, session, digest, handle)
        return Session(**dict(row))

    async def session(self, session: uuid.UUID) -> Session:
        async with self.pool.acquire() as conn:
            row = await store.session(conn, session)
        if row is None:
            raise session_not_open(session)
        return Session(**dict(row))

    async def put_part(
        self, session: uuid.UUID, number: int, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        check_part_number(number)
        open_session = await self.session(session)
        part = await self.store.write_part(
            str(session),
            open_session.handle,
            number,
            chunks,
            max_bytes=self.settings.max_part_bytes,
        )
        async with self.pool.acquire() as conn:
            await store.record_part(conn, session, number, part.etag)
        return part

    async def parts(self, session: uuid.UUID) -> tuple[Session, list[PartInfo]]:
        open_session = await self.session(session)
        listed = await self.store.list_parts(str(session), open_session.handle)
        async with self.pool.acquire() as conn:
            sent = await store.sent_parts(conn, session)
        return open_session, current_parts(listed, sent)

    async def part_url(self, session: uuid.UUID, number: int) -> str:
        check_part_number(number)
        open_session = await self.session(session)
        url = await self.store.presign_part(
            str(session), open_session.handle, number, self.settings.presign_expiry_s
        )
        if url is None:
            raise Invalid(
                f"the {self.store.kind} store has no presigned URLs: send the part to this service",
                code="presign_unsupported",
            )
        return url

    async def complete(
        self, session: uuid.UUID, numbers: Sequence[int], etags: Sequence[str | None]
    ) -> Put:
        """Assemble the parts ``numbers`` (strictly ascending, each one sent, with the etag
        given where one is) and store them under the session's digest if their md5 is it."""
        if not numbers:
            raise Invalid("a completion names at least one part", code="invalid_parts")
        if any(b <= a for a, b in pairwise(numbers)):
            raise Invalid("the parts must be listed in ascending order", code="invalid_parts")
        open_session, sent = await self.parts(session)
        by_number = {p.number: p for p in sent}
        chosen = []
        for number, etag in zip(numbers, etags, strict=True):
            part = by_number.get(number)
            if part is None:
                raise Invalid(f"part {number} was never sent", code="invalid_parts", part=number)
            if etag is not None and etag.strip('"').lower() != part.etag.lower():
                raise Invalid(
                    f"part {number}'s etag is {part.etag}, not {etag}",
                    code="invalid_parts",
                    part=number,
                )
            chosen.append(part)
        known = await self.find(open_session.digest)
        if known is not None:
            await self.abort(session)
            return Put(known, True)
        try:
            stored: Stored = await self.store.complete_session(
                str(session),
                open_session.handle,
                open_session.digest,
                chosen,
                max_bytes=self.settings.max_blob_bytes,
            )
        except Exception:
            # A mismatch (or a refusal) ends the session: its parts are gone.
            await self._forget(session, open_session.handle)
            raise
        async with self.pool.acquire() as conn:
            await store.drop_session(conn, session)
        BYTES_IN.inc(stored.size)
        await self._record(stored.digest, stored.size, stored.sha256, how="session")
        return Put(Blob(stored.digest, stored.size, stored.sha256), False)

    async def abort(self, session: uuid.UUID) -> None:
        open_session = await self.session(session)
        await self._forget(session, open_session.handle)

    async def _forget(self, session: uuid.UUID, handle: str) -> None:
        await self.store.abort_session(str(session), handle)
        async with self.pool.acquire() as conn:
            await store.drop_session(conn, session)

    # --- housekeeping -----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Abort sessions idle past their TTL, and uploads nobody finished (a crash, a client
        gone) older than ``STALE_UPLOAD_AGE``; returns how many."""
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            expired = await store.expired_sessions(conn, now - self.settings.upload_session_ttl)
            keep = await store.live_handles(conn)
        for row in expired:
            await self.store.abort_session(str(row["id"]), row["handle"])
        swept = await self.store.sweep(now - self.settings.stale_upload_age, keep)
        if expired or swept:
            log.info("uploads.swept", sessions=len(expired), uploads=swept)
        return len(expired) + swept

    async def keep_swept(self, stop: asyncio.Event) -> None:
        """Sweep now and every ``STALE_SWEEP_EVERY_S`` until ``stop``; a failed sweep is logged
        and tried again next time."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("uploads.sweep_failed")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.stale_sweep_every_s)
            except TimeoutError:
                continue


async def _counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks``, counted into ``cmf_artifacts_bytes_sent_total`` as they go out."""
    async for chunk in chunks:
        BYTES_OUT.inc(len(chunk))
        yield chunk


async def no_bytes() -> AsyncIterator[bytes]:
    """An empty stream."""
    return
    yield b""
