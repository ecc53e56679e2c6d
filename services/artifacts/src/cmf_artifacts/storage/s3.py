"""The S3 ``BlobStore`` (AWS S3, MinIO, SeaweedFS…), over aioboto3.

Keys are ``<prefix>files/md5/xx/yyyy…``, a DVC remote's layout. A streamed write is a
multipart upload to the blob's own key, its parts sent while the rest still arrives (two in
flight), completed only when the md5 of everything sent is the expected one and aborted
otherwise; a blob smaller than a part is one ``PutObject`` once its md5 is checked. So the key
holds a verified blob or nothing. A resumable session is a multipart upload to
``<prefix>uploads/<session>``: completing it assembles that object, reads it back to check its
md5, copies it to the blob's key (server side) and deletes it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from cmf_artifacts.digests import Hashes, Stored, content_md5, object_key
from cmf_artifacts.storage import READ_CHUNK, BlobInfo, PartInfo, mismatch, too_large
from cmf_common.errors import Invalid, NotFound

# Parts of one streamed upload sent at once: the next part arrives while one is sent.
PARTS_IN_FLIGHT = 2
# S3 copies an object of at most this size in one request; a larger one part by part.
COPY_LIMIT = 5 * 1024**3
COPY_PART = 512 * 1024**2
MAX_PARTS = 10_000
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "", part_bytes: int = 8 << 20):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_bytes = part_bytes

    def key(self, digest: str) -> str:
        return self.prefix + object_key(digest)

    def session_key(self, session: str) -> str:
        return f"{self.prefix}uploads/{session}"

    async def ensure_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING and _code(exc) != "NoSuchBucket":
                raise
            await self.client.create_bucket(Bucket=self.bucket)

    async def check(self) -> None:
        await self.client.head_bucket(Bucket=self.bucket)

    async def stat(self, digest: str) -> BlobInfo | None:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return BlobInfo(digest, int(head["ContentLength"]))

    async def write(
        self,
        digest: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int,
        size_hint: int | None = None,
    ) -> Stored:
        key = self.key(digest)
        part_bytes = self.part_bytes
        if size_hint is not None:
            part_bytes = max(part_bytes, -(-size_hint // (MAX_PARTS - 1)))
        hashes = Hashes()
        current = bytearray()
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                hashes.update(chunk)
                if hashes.size > max_bytes:
                    raise too_large(max_bytes)
                current += chunk
                if len(current) >= part_bytes:
                    if upload is None:
                        upload = await _Multipart.begin(self.client, self.bucket, key)
                    await upload.send(bytes(current))
                    current = bytearray()
            md5 = hashes.md5.hexdigest()
            if upload is None:
                if md5 != content_md5(digest):
                    raise mismatch(content_md5(digest), md5)
                await self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(current),
                    ContentMD5=base64.b64encode(hashes.md5.digest()).decode(),
                )
            else:
                if current:
                    await upload.send(bytes(current))
                await upload.finish()
                if md5 != content_md5(digest):
                    raise mismatch(content_md5(digest), md5)
                await upload.complete()
                upload = None
        finally:
            if upload is not None:
                await upload.abort()
        return Stored(digest, md5, hashes.sha256.hexdigest(), hashes.size)

    async def read(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        ranged = (
            {}
            if start == 0 and end is None
            else {"Range": f"bytes={start}-{'' if end is None else end}"}
        )
        try:
            answer = await self.client.get_object(
                Bucket=self.bucket, Key=self.key(digest), **ranged
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFound(f"blob {digest} is not stored", code="blob_not_found") from None
            raise
        body = answer["Body"]
        try:
            while chunk := await body.read(READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, digest: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

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
                raise NotFound(
                    f"upload session {session} is not open", code="session_not_found"
                ) from None
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
                    raise NotFound(
                        f"upload session {session} is not open", code="session_not_found"
                    ) from None
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
    """One multipart upload of a streamed write: parts sent as they fill, two at a time."""

    def __init__(self, client: Any, bucket: str, key: str, upload_id: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id = upload_id
        self.parts: list[dict[str, Any]] = []
        self.sending: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(PARTS_IN_FLIGHT)
        self.numbered = 0

    @classmethod
    async def begin(cls, client: Any, bucket: str, key: str) -> _Multipart:
        begun = await client.create_multipart_upload(Bucket=bucket, Key=key)
        return cls(client, bucket, key, str(begun["UploadId"]))

    async def send(self, body: bytes) -> None:
        await self.slots.acquire()
        for task in [t for t in self.sending if t.done()]:
            self.sending.discard(task)
            task.result()  # a failed part fails the write now
        self.numbered += 1
        number = self.numbered
        task = asyncio.create_task(self._send(number, body))
        self.sending.add(task)

    async def _send(self, number: int, body: bytes) -> None:
        try:
            sent = await self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
            )
            self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})
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
        for task in self.sending:
            task.cancel()
        await asyncio.gather(*self.sending, return_exceptions=True)
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise


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
    store = S3BlobStore(client, bucket, prefix, part_bytes)
    if create_bucket:
        await store.ensure_bucket()
    return store
