"""The event envelope (CloudEvents field names) and the transactional outbox writer."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from cmf_common.db import Connection, json_dumps
from cmf_common.tracing import current_traceparent

OUTBOX_MIGRATIONS = "cmf_common.outbox_migrations"


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


def event_type(entity: str, verb: str, version: int = 1) -> str:
    return f"cmf.metadata.{entity}.{verb}.v{version}"


@dataclass(frozen=True)
class NewEvent:
    """An event about to be written; the envelope fields are filled in by :func:`add_events`."""

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
    specversion: str = field(default="1.0")

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        body = orjson.loads(raw)
        return cls(**{k: body[k] for k in cls.__dataclass_fields__ if k in body})


async def add_events(conn: Connection, *, subject: str, source: str, events: list[NewEvent]) -> int:
    """Write ``events`` to the outbox in the caller's transaction; returns the last sequence.

    The caller must hold the subject's lock, so sequences of one subject are gap-free and in
    commit order. One statement for the whole batch.
    """
    if not events:
        last = await conn.fetchval(
            "SELECT last_seq FROM outbox_sequences WHERE subject = $1", subject
        )
        return int(last or 0)
    last_seq = int(
        await conn.fetchval(
            "INSERT INTO outbox_sequences (subject, last_seq) VALUES ($1, $2)"
            " ON CONFLICT (subject) DO UPDATE SET last_seq = outbox_sequences.last_seq + $2"
            " RETURNING last_seq",
            subject,
            len(events),
        )
    )
    first_seq = last_seq - len(events) + 1
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO outbox (id, subject, seq, type, source, time, data, traceparent)"
        " SELECT e.id, $1, e.seq, e.type, $2, $3, e.data::jsonb, $4"
        " FROM unnest($5::uuid[], $6::bigint[], $7::text[], $8::text[])"
        "   AS e(id, seq, type, data)",
        subject,
        source,
        now,
        current_traceparent(),
        [uuid7() for _ in events],
        list(range(first_seq, last_seq + 1)),
        [e.type for e in events],
        [json_dumps(e.data) for e in events],
    )
    await conn.execute("SELECT pg_notify('cmf_outbox', $1)", subject)
    return last_seq
