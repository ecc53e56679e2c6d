"""Content addresses: the md5 a blob is known by, and where a DVC remote keeps it.

DVC 3 keeps a file at ``files/md5/<first 2 hex>/<other 30>`` and a directory as its JSON
manifest (``[{"md5", "relpath"}, ...]``) at the same place with ``.dir`` appended to the md5;
the CMF client's remotes (``cmf artifact push``) write that layout, and so does this service.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field

from cmf_common.errors import Invalid

_DIGEST = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
# What check_digest takes (it lowercases first), as a JSON Schema pattern for /openapi.json.
DIGEST_PATTERN = r"^[0-9a-fA-F]{32}(\.[dD][iI][rR])?$"
DIR_SUFFIX = ".dir"


def check_digest(value: str) -> str:
    """``value`` as a content address (32 lowercase hex digits, ``.dir`` for a manifest)."""
    digest = value.lower()
    if not _DIGEST.match(digest):
        raise Invalid(
            "a digest is an md5: 32 hex digits, with .dir for a directory manifest",
            code="invalid_digest",
        )
    return digest


def is_manifest(digest: str) -> bool:
    return digest.endswith(DIR_SUFFIX)


def object_key(digest: str) -> str:
    """Where a DVC 3 remote keeps ``digest``, relative to the remote's root."""
    return f"files/md5/{digest[:2]}/{digest[2:]}"


def content_md5(digest: str) -> str:
    """The md5 of the bytes stored under ``digest`` (a manifest's address names its own md5)."""
    return digest.removesuffix(DIR_SUFFIX)


@dataclass
class Hashes:
    """The md5 and sha256 of a stream, computed while it passes, and its length."""

    md5: hashlib._Hash = field(default_factory=hashlib.md5)
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.size += len(chunk)

    async def update_beside(self, data: bytes) -> None:
        """:meth:`update` with a large piece, its two digests each in a thread of its own:
        hashlib lets go of the GIL while it hashes, so the event loop goes on receiving and
        sending meanwhile (md5 alone is a few hundred MiB/s)."""
        await asyncio.gather(
            asyncio.to_thread(self.md5.update, data), asyncio.to_thread(self.sha256.update, data)
        )
        self.size += len(data)


@dataclass(frozen=True)
class Stored:
    """A blob as stored: its address, digests and size."""

    digest: str
    md5: str
    sha256: str
    size: int
