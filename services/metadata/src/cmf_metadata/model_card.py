"""The model card (docs/wire-contract.md §1.9): a Model, the executions that used or produced
it, and what they read and wrote, each as the reference's pandas records.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from cmf_common.access import current_prefix
from cmf_common.db import read_snapshot
from cmf_common.frames import artifact_row, frame_records, properties_row
from cmf_common.metadata_events import INPUT, OUTPUT
from cmf_common.tracing import span
from cmf_metadata.properties import Row
from cmf_metadata.store import artifacts as artifact_store
from cmf_metadata.store import executions as execution_store

MODEL = "Model"
DROPPED_EXECUTION_COLUMNS = ("Git_Start_Commit", "Git_End_Commit")


def execution_row(row: Row) -> dict[str, Any]:
    """An execution as the model card's one-row frame of it: its Git commits left out."""
    flat = properties_row(row)
    for column in DROPPED_EXECUTION_COLUMNS:
        flat.pop(column, None)
    return flat


async def model_card(pool: asyncpg.Pool, model_id: int) -> list[Any]:
    """``[model rows, execution rows, input artifact rows, output artifact rows]``, each ``""``
    when empty; all four empty for an id that is not a Model, as the reference answers."""
    with span("metadata.model_card", model_id=model_id):
        prefix = current_prefix()
        async with read_snapshot(pool) as conn:
            model = await artifact_store.artifact(conn, model_id, prefix)
            if model is None or model["type"] != MODEL:
                return ["", "", "", ""]
            executions = await execution_store.executions_of_artifact(conn, model_id, prefix)
            ids = [e["id"] for e in executions]
            inputs = await artifact_store.artifacts_of_executions(conn, ids, INPUT, model_id)
            outputs = await artifact_store.artifacts_of_executions(conn, ids, OUTPUT, model_id)
    return [
        frame_records([artifact_row(model)]),
        frame_records(execution_row(e) for e in executions),
        frame_records(artifact_row(a) for a in inputs) if executions else "",
        frame_records(artifact_row(a) for a in outputs) if executions else "",
    ]
