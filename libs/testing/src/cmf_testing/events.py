"""Envelopes for the tests of the event plumbing (dispatch, inbox, consumers, projector)."""

from __future__ import annotations

from typing import Any

from cmf_common.events import Envelope


def envelope(
    seq: int,
    type_: str = "t.v1",
    subject: str = "p",
    *,
    data: dict[str, Any] | None = None,
    id: str | None = None,
) -> Envelope:
    """Event ``seq`` of ``subject`` from source ``test``; its id is made of ``seq`` unless given."""
    return Envelope(
        id=id if id is not None else f"00000000-0000-7000-8000-{seq:012d}",
        type=type_,
        source="test",
        subject=subject,
        time="2026-11-26T00:00:00+00:00",
        seq=seq,
        data={} if data is None else data,
    )
