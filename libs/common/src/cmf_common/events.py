"""The event envelope (CloudEvents field names) and event ids."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


SPECVERSION = "1.0"


def event_type(entity: str, verb: str, version: int = 1) -> str:
    return f"cmf.metadata.{entity}.{verb}.v{version}"


@dataclass(frozen=True)
class NewEvent:
    """An event about to be written; :func:`cmf_common.outbox.add_events` fills in the rest."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    subject: str
    time: str
    seq: int
    data: dict[str, Any]
    traceparent: str | None = None
    specversion: str = field(default=SPECVERSION)

    def to_json(self, **extra: Any) -> bytes:
        """The envelope as JSON, its fields in this order, then ``extra`` (the export adds its
        ``export_cursor``). What orjson refuses (an integer beyond 64 bits in a property) the
        standard library writes."""
        body = {**self.__dict__, **extra} if extra else self.__dict__
        try:
            return orjson.dumps(body)
        except TypeError:
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        body = orjson.loads(raw)
        return cls(**{k: body[k] for k in cls.__dataclass_fields__ if k in body})
