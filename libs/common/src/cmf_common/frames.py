"""Rows shaped as the reference's pandas DataFrames come out, for the model card and upstream's
record listings (metadata) and CMFQuery's graph questions (lineage), one shape for both.

cmflib's CmfQuery flattens each MLMD node into a one-row DataFrame (properties as they are,
custom properties prefixed), pandas concatenates them (columns sorted, missing cells NaN, integer
columns with a gap turned to floats) and ``to_json(orient="records")`` writes the records; the
functions here do the same to stored rows, without pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from cmf_common.access import url_inside
from cmf_common.db import json_dumps


class Row(Protocol):
    """A stored row: an asyncpg record, or a dict."""

    def __getitem__(self, key: str, /) -> Any: ...


CUSTOM_PREFIX = "custom_properties_"
FLOAT_DECIMALS = 10  # pandas to_json's double_precision


def _mlmd_value(value: Any) -> Any:
    """What CmfQuery reads back from an MLMD value: a string, an int, else a double."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return value
    return json_dumps(value)  # a struct, kept readable


def copy_properties(
    target: dict[str, Any], source: Mapping[str, Any], prefix: str = "", resolve: bool = False
) -> None:
    """Add ``source``'s values to ``target`` as columns, each name after ``prefix``; with
    ``resolve`` a name already taken gets ``_1``, ``_2``... as cmflib renames it."""
    for name, value in source.items():
        key = prefix + name
        if resolve and key in target:
            base, index = key, 0
            while key in target:
                index += 1
                key = f"{base}_{index}"
        target[key] = _mlmd_value(value)


def properties_row(row: Row, **columns: Any) -> dict[str, Any]:
    """cmflib's ``_transform_to_dataframe(node, columns)``: ``columns``, then the node's
    properties as they are, then its custom properties prefixed."""
    flat: dict[str, Any] = dict(columns)
    copy_properties(flat, row["properties"])
    copy_properties(flat, row["custom_properties"], CUSTOM_PREFIX, resolve=True)
    return flat


def artifact_row(row: Row) -> dict[str, Any]:
    """An artifact as cmflib's one-row frame of it (``get_artifact_df``); its ``url`` as the
    request's pipeline prefix lets it see it (``cmf_common.access.url_inside``)."""
    return properties_row(
        {
            "properties": url_inside(row["properties"]),
            "custom_properties": row["custom_properties"],
        },
        id=row["id"],
        type=row["type"],
        uri=row["uri"],
        name=row["name"],
        create_time_since_epoch=row["create_time_since_epoch"],
        last_update_time_since_epoch=row["last_update_time_since_epoch"],
    )


def execution_row(row: Row) -> dict[str, Any]:
    """An execution as cmflib frames it with its id and name."""
    return properties_row(row, id=row["id"], name=row["name"])


_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _round(value: float) -> float | None:
    return round(value, FLOAT_DECIMALS) if math.isfinite(value) else None


def frame_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]] | str:
    """``pd.concat`` of one-row frames, then ``to_json(orient="records")``; ``""`` when empty."""
    rows = list(rows)
    if not rows:
        return ""
    columns = sorted({name for row in rows for name in row})
    records: list[dict[str, Any]] = [{} for _ in rows]
    for column in columns:
        cells = [row.get(column, _MISSING) for row in rows]
        present = [c for c in cells if c is not _MISSING and c is not None]
        numeric = bool(present) and all(_is_number(c) for c in present)
        whole = numeric and len(present) == len(cells) and all(isinstance(c, int) for c in present)
        for record, cell in zip(records, cells, strict=True):
            if cell is _MISSING or cell is None:
                record[column] = None
            elif numeric and not whole:
                record[column] = _round(float(cell))
            elif isinstance(cell, float):
                record[column] = _round(cell)
            else:
                record[column] = cell
    return records
