"""The S3 ``BlobStore`` (AWS S3, MinIO, SeaweedFS…), over aioboto3.

Keys are ``<prefix>files/md5/xx/yyyy…``, a DVC remote's layout. A streamed write is a
multipart upload to the blob's own key, its parts (``S3_PART_BYTES``) sent while the rest still
arrives (``S3_PARTS_IN_FLIGHT`` at once), completed only when the md5 of everything sent is the
expected one and aborted otherwise; a blob smaller than a part is one ``PutObject`` once its md5
is checked. So the key holds a verified blob or nothing. A resumable session is a multipart
upload to ``<prefix>uploads/<session>``: completing it assembles that object, reads it back to
check its md5, copies it to the blob's key (server side) and deletes it. Named files (the
metadata service's uploads) are streamed the same way to ``<prefix>cmf-files/<key>``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import aioboto3
import structlog
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as S3ConnectionError

from cmf_artifacts.digests import Hashes, Stored, content_md5, object_key
from cmf_artifacts.storage import (
    FILES_FOLDER,
    READ_CHUNK,
    BlobInfo,
    FileInfo,
    PartInfo,
    blob_not_stored,
    file_not_stored,
    mismatch,
    session_not_open,
    too_large,
)
from cmf_common.errors import Invalid, NotFound

log = structlog.get_logger(__name__)

# Parts of one streamed upload sent at once (``S3_PARTS_IN_FLIGHT``): the next part arrives
# while these are sent.
PARTS_IN_FLIGHT = 2
# S3 copies an object of at most this size in one request; a larger one part by part.
COPY_LIMIT = 5 * 1024**3
COPY_PART = 512 * 1024**2
MAX_PARTS = 10_000
# A single-request body at least this large is hashed beside the event loop (threads).
BESIDE_LOOP_BYTES = 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


# What S3 answers when it cannot serve for now (down behind a proxy, throttling, failing).
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
# The exceptions of the client that may say so (the app answers them; storage/__init__.py).
CLIENT_ERRORS = (ClientError, S3ConnectionError, HTTPClientError)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says S3 cannot be reached or cannot serve for now (a 503 the client
    may retry), not that the request or this service's configuration is wrong (a 500)."""
    if isinstance(exc, S3ConnectionError | HTTPClientError):
        return True  # refused, timed out, reset
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return _code(exc) in _UNAVAILABLE or int(status) >= 500
    return False


class S3BlobStore:
    kind = "s3"

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        part_bytes: int = 8 << 20,
        parts_in_flight: int = PARTS_IN_FLIGHT,
    ):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_bytes = part_bytes
        self.parts_in_flight = parts_in_flight

    def key(self, digest: str) -> str:
        return self.prefix + object_key(digest)

    def session_key(self, session: str) -> str:
        return f"{self.prefix}uploads/{session}"

    def file_key(self, key: str) -> str:
        return f"{self.prefix}{FILES_FOLDER}{key}"

    async def ensure_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING and _code(exc) != "NoSuchBucket":
                raise
            await self.client.create_bucket(Bucket=self.bucket)

    async def check(self) -> None:
        await self.client.head_bucket(Bucket=self.bucket)

    async def _size(self, key: str) -> int | None:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return int(head["ContentLength"])

    async def stat(self, digest: str) -> BlobInfo | None:
        size = await self._size(self.key(digest))
        return None if size is None else BlobInfo(digest, size)

    async def write(
        self,
        digest: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        size_hint: int | None = None,
    ) -> Stored:
        expected = content_md5(digest)

        def verify(md5: str) -> None:
            if md5 != expected:
                raise mismatch(expected, md5)

        hashes = await self._upload(self.key(digest), chunks, max_bytes, size_hint, verify)
        return Stored(digest, hashes.md5.hexdigest(), hashes.sha256.hexdigest(), hashes.size)

    async def _upload(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        max_bytes: int,
        size_hint: int | None,
        verify: Callable[[str], None],
    ) -> Hashes:
        """Stream ``chunks`` to ``key``: one ``PutObject`` when they fit in a part, else a
        multipart upload; ``verify`` (given the md5) runs before the object becomes visible,
        and an exception from it (or from the stream) leaves nothing there."""
        part_bytes = self.part_bytes
        if size_hint is not None:
            part_bytes = max(part_bytes, -(-size_hint // (MAX_PARTS - 1)))
        hashes = Hashes()
        received = 0
        pending: list[bytes] = []  # the part being filled, joined once when full
        filled = 0
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                received += len(chunk)
                if received > max_bytes:
                    raise too_large(max_bytes)
                pending.append(chunk)
                filled += len(chunk)
                if filled >= part_bytes:
                    if upload is None:
                        upload = await _Multipart.begin(
                            self.client, self.bucket, key, self.parts_in_flight, hashes
                        )
                    body = b"".join(pending)
                    pending, filled = [], 0
                    await upload.send(body)
            body = b"".join(pending)
            pending = []
            if upload is None:
                if len(body) > BESIDE_LOOP_BYTES:
                    await hashes.update_beside(body)
                else:
                    hashes.update(body)
                verify(hashes.md5.hexdigest())
                await self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentMD5=base64.b64encode(hashes.md5.digest()).decode(),
                )
            else:
                if body:
                    await upload.send(body)
                await upload.finish()
                verify(hashes.md5.hexdigest())
                await upload.complete()
                upload = None
        finally:
            if upload is not None:
                await _abort_quietly(upload)
        return hashes

    def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        missing = blob_not_stored(digest)
        return self._read(self.key(digest), missing, start, end)

    async def _read(
        self, key: str, missing: NotFound, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        ranged = (
            {}
            if start == 0 and end is None
            else {"Range": f"bytes={start}-{'' if end is None else end}"}
        )
        try:
            answer = await self.client.get_object(Bucket=self.bucket, Key=key, **ranged)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise missing from None
            raise
        body = answer["Body"]
        try:
            while chunk := await body.read(READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, digest: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

    # --- named files (the metadata service's uploads, by key) -------------------------------

    async def put_file(
        self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int, replace: bool = True
    ) -> FileInfo | None:
        target = self.file_key(key)
        if not replace and await self._size(target) is not None:
            return None
        hashes = await self._upload(target, chunks, max_bytes, None, lambda md5: None)
        return FileInfo(key, hashes.size)

    async def stat_file(self, key: str) -> FileInfo | None:
        size = await self._size(self.file_key(key))
        return None if size is None else FileInfo(key, size)

    def read_file(self, key: str) -> AsyncIterator[bytes]:
        return self._read(self.file_key(key), file_not_stored(key))

    async def list_files(self, prefix: str) -> list[FileInfo]:
        root = self.file_key("")
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.file_key(prefix)):
            for item in page.get("Contents", []):
                found.append(FileInfo(item["Key"][len(root) :], int(item["Size"])))
        return sorted(found, key=lambda f: f.key)

    async def create_session(self, session: str) -> str:
        begun = await self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.session_key(session)
        )
        return str(begun["UploadId"])

    async def write_part(
        self,
        session: str,
        handle: str,
        number: int,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
    ) -> PartInfo:
        # S3 needs a part's length before its bytes: the part is gathered (at most max_bytes;
        # larger parts go straight to S3 through a presigned part URL).
        body = bytearray()
        async for chunk in chunks:
            body += chunk
            if len(body) > max_bytes:
                raise too_large(max_bytes)
        try:
            sent = await self.client.upload_part(
                Bucket=self.bucket,
                Key=self.session_key(session),
                UploadId=handle,
                PartNumber=number,
                Body=bytes(body),
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise session_not_open(session) from None
            raise
        return PartInfo(number, len(body), str(sent["ETag"]).strip('"'))

    async def list_parts(self, session: str, handle: str) -> list[PartInfo]:
        # SeaweedFS keeps a part sent twice twice, in no set order, with times to the second:
        # every entry is listed (newest first within a number); the caller picks by etag.
        found: list[tuple[int, float, PartInfo]] = []
        marker = 0
        while True:
            try:
                page = await self.client.list_parts(
                    Bucket=self.bucket,
                    Key=self.session_key(session),
                    UploadId=handle,
                    PartNumberMarker=marker,
                )
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise session_not_open(session) from None
                raise
            for part in page.get("Parts", []):
                number = int(part["PartNumber"])
                info = PartInfo(number, int(part["Size"]), part["ETag"].strip('"'))
                found.append((number, -part["LastModified"].timestamp(), info))
            if not page.get("IsTruncated"):
                found.sort(key=lambda entry: (entry[0], entry[1]))
                return [info for _, _, info in found]
            marker = int(page["NextPartNumberMarker"])

    async def complete_session(
        self, session: str, handle: str, digest: str, parts: list[PartInfo], *, max_bytes: int
    ) -> Stored:
        staging = self.session_key(session)
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=staging,
                UploadId=handle,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]
                },
            )
        except ClientError as exc:
            if _code(exc) in ("EntityTooSmall", "InvalidPart", "InvalidPartOrder"):
                raise Invalid(f"S3 refused the parts: {exc}", code="invalid_parts") from None
            raise
        try:
            hashes = Hashes()
            answer = await self.client.get_object(Bucket=self.bucket, Key=staging)
            body = answer["Body"]
            try:
                while chunk := await body.read(READ_CHUNK):
                    hashes.update(chunk)
                    if hashes.size > max_bytes:
                        raise too_large(max_bytes)
            finally:
                body.close()
            md5 = hashes.md5.hexdigest()
            if md5 != content_md5(digest):
                raise mismatch(content_md5(digest), md5)
            await self._copy(staging, self.key(digest), hashes.size)
        finally:
            await self.client.delete_object(Bucket=self.bucket, Key=staging)
        return Stored(digest, md5, hashes.sha256.hexdigest(), hashes.size)

    async def _copy(self, source: str, target: str, size: int) -> None:
        origin = {"Bucket": self.bucket, "Key": source}
        if size <= COPY_LIMIT:
            await self.client.copy_object(Bucket=self.bucket, Key=target, CopySource=origin)
            return
        begun = await self.client.create_multipart_upload(Bucket=self.bucket, Key=target)
        upload_id = begun["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, COPY_PART), start=1):
                end = min(size, start + COPY_PART) - 1
                copied = await self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=origin,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=upload_id
            )
            raise

    async def abort_session(self, session: str, handle: str) -> None:
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.session_key(session), UploadId=handle
            )
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise

    async def sweep(self, older_than: datetime, keep: set[str]) -> int:
        swept = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                if upload["UploadId"] in keep or upload["Initiated"] >= older_than:
                    continue
                try:
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if _code(exc) not in _MISSING:
                        raise
                swept += 1
        return swept

    async def presign_read(self, digest: str, expires_s: int) -> str | None:
        url = await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(digest)},
            ExpiresIn=expires_s,
        )
        return str(url)

    async def presign_part(
        self, session: str, handle: str, number: int, expires_s: int
    ) -> str | None:
        url = await self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self.session_key(session),
                "UploadId": handle,
                "PartNumber": number,
            },
            ExpiresIn=expires_s,
        )
        return str(url)


class _Multipart:
    """One multipart upload of a streamed write: parts sent as they fill, ``in_flight`` at a
    time, each hashed into ``hashes`` (in order, beside the event loop) while it is sent. A
    part's slot is free once it is both sent and hashed, so at most ``in_flight`` parts are
    held."""

    def __init__(
        self, client: Any, bucket: str, key: str, upload_id: str, in_flight: int, hashes: Hashes
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self.hashes = hashes
        self.parts: list[dict[str, Any]] = []
        self.sending: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(in_flight)
        self.numbered = 0
        self.hashed: asyncio.Task[None] | None = None  # the last part's hashing

    @classmethod
    async def begin(
        cls, client: Any, bucket: str, key: str, in_flight: int, hashes: Hashes
    ) -> _Multipart:
        begun = await client.create_multipart_upload(Bucket=bucket, Key=key)
        return cls(client, bucket, key, str(begun["UploadId"]), in_flight, hashes)

    async def send(self, body: bytes) -> None:
        await self.slots.acquire()
        for task in [t for t in self.sending if t.done()]:
            self.sending.discard(task)
            task.result()  # a failed part fails the write now
        self.numbered += 1
        self.hashed = asyncio.create_task(self._hash_after(self.hashed, body))
        task = asyncio.create_task(self._send(self.numbered, body, self.hashed))
        self.sending.add(task)

    async def _hash_after(self, previous: asyncio.Task[None] | None, body: bytes) -> None:
        if previous is not None:
            await previous
        await self.hashes.update_beside(body)

    async def _send(self, number: int, body: bytes, hashed: asyncio.Task[None]) -> None:
        try:
            sent = await self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
            )
            self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})
            await hashed
        finally:
            self.slots.release()

    async def finish(self) -> None:
        """Wait for every part in flight (raising the first failure)."""
        sending, self.sending = self.sending, set()
        for task in sending:
            await task

    async def complete(self) -> None:
        await self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": sorted(self.parts, key=lambda p: p["PartNumber"])},
        )

    async def abort(self) -> None:
        running = [*self.sending, *([self.hashed] if self.hashed is not None else [])]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise


async def _abort_quietly(upload: _Multipart) -> None:
    """Abort an upload that failed; if S3 refuses that too (it went away), the failure that
    ended the upload is still the one answered, and the stale sweep aborts it later."""
    try:
        await upload.abort()
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("upload.abort_deferred", key=upload.key, error=type(exc).__name__)


async def open_s3(
    stack: AsyncExitStack,
    *,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str,
    bucket: str,
    prefix: str,
    part_bytes: int,
    parts_in_flight: int = PARTS_IN_FLIGHT,
    create_bucket: bool = True,
) -> S3BlobStore:
    """An S3 store whose client ``stack`` closes."""
    config = AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint_url else {},
        max_pool_connections=64,
        connect_timeout=10,
        read_timeout=120,
        retries={"max_attempts": 3, "mode": "standard"},
        # Checksums only when an operation requires them: SeaweedFS and MinIO check the
        # md5s this service sends, and the bytes are hashed here anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = await stack.enter_async_context(
        aioboto3.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=config,
        )
    )
    store = S3BlobStore(client, bucket, prefix, part_bytes, parts_in_flight)
    if create_bucket:
        await store.ensure_bucket()
    return store
