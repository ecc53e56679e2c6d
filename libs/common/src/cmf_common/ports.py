"""The small ports the services talk to infrastructure through; adapters live beside them
(Kafka in ``cmf_common.kafka``), fakes in the unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One record for the event bus: key and value are bytes, headers carry metadata."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Publisher(Protocol):
    """Sends messages and returns only when the bus acknowledged every one of them, in order
    per key; raises if any was not acknowledged."""

    async def publish(self, messages: list[Message]) -> None: ...
