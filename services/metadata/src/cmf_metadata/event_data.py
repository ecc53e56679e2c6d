"""The shapes inside the metadata events, where the push (writing them to the outbox) and the
export (replaying the tables as the same events) must agree field for field."""

from __future__ import annotations

from typing import Any


def artifact_data(row: Any) -> dict[str, Any]:
    """An artifact as ``artifact.upserted`` carries it, from a row of the ``artifacts`` table."""
    return {
        "id": row["id"],
        "uri": row["uri"],
        "type": row["type"],
        "name": row["name"],
        "properties": row["properties"],
        "custom_properties": row["custom_properties"],
        "create_time_since_epoch": row["create_time_since_epoch"],
        "last_update_time_since_epoch": row["last_update_time_since_epoch"],
    }
