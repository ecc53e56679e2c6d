"""The artifact service's events: the contract between it (which writes them to its outbox)
and their consumers (the lineage projector marks an artifact ``stored``).

Typed as :mod:`cmf_common.metadata_events` are: a frozen dataclass with its versioned ``TYPE``,
``to_data`` and ``from_data``; malformed data raises
:class:`~cmf_common.metadata_events.MalformedEvent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cmf_common.events import Envelope, NewEvent
from cmf_common.metadata_events import MalformedEvent

SOURCE = "cmf-server/artifacts"
BLOB_STORED = "cmf.artifacts.blob.stored.v1"


@dataclass(frozen=True, slots=True)
class BlobStored:
    """A blob is stored under ``digest`` (an artifact's ``uri``: its md5, ``.dir`` for a
    directory's manifest). ``sha256`` is ``None`` for a blob found in the store, written there
    by someone else (``cmf artifact push``)."""

    TYPE: ClassVar[str] = BLOB_STORED

    digest: str
    size: int
    sha256: str | None

    def to_data(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BlobStored:
        sha256 = data.get("sha256")
        return cls(str(data["digest"]), int(data["size"]), None if sha256 is None else str(sha256))


EVENT_TYPES: tuple[str, ...] = (BLOB_STORED,)


def new_event(event: BlobStored) -> NewEvent:
    return NewEvent(event.TYPE, event.to_data())


def parse_envelope(envelope: Envelope) -> BlobStored:
    if envelope.type != BLOB_STORED:
        raise MalformedEvent(f"{envelope.type} is not an artifact event type")
    if not isinstance(envelope.data, Mapping):
        raise MalformedEvent(f"malformed {envelope.type} event: its data is not an object")
    try:
        return BlobStored.from_data(envelope.data)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"malformed {envelope.type} event: {exc!r}") from exc
