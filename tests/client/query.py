"""Summarise an MLMD file with the real ``cmflib.cmfquery.CmfQuery`` (run with the cmflib venv).

Usage: ``python query.py <mlmd file>``. Prints one JSON object:

    {"pipelines": [{"name": ..., "stages": [{"name": ..., "executions": [
        {"Execution_uuid": ..., "Context_Type": ..., "artifacts": [
            {"event": "INPUT"|"OUTPUT", "type": ..., "name": ..., "uri": ...}]}]}]}],
     "artifacts": [{"type": ..., "name": ..., "uri": ...}]}

``artifacts`` at the top is every artifact the pipelines' stages are attributed with, as
``CmfQuery.get_all_artifacts_by_context`` sees them; each execution's list comes from its events.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from cmflib.cmfquery import CmfQuery


def _text(value: Any) -> str | None:
    """A data-frame cell as a string; missing cells (NaN) become None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _artifacts(frame: Any, with_event: bool) -> list[dict[str, str | None]]:
    if frame.empty:
        return []
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {key: _text(record.get(key)) for key in ("type", "name", "uri")}
        if with_event:
            row["event"] = _text(record.get("event"))
        rows.append(row)
    return sorted(rows, key=lambda r: (r.get("event") or "", r["type"] or "", r["name"] or ""))


def summarise(mlmd_file: str) -> dict[str, Any]:
    query = CmfQuery(mlmd_file)
    pipelines = []
    attributed: dict[tuple[str | None, ...], dict[str, str | None]] = {}
    for pipeline in sorted(query.get_pipeline_names()):
        stages = []
        for stage in sorted(query.get_pipeline_stages(pipeline)):
            executions = []
            frame = query.get_all_executions_in_stage(stage)
            records = [] if frame.empty else frame.to_dict(orient="records")
            for record in records:
                events = query.get_all_artifacts_for_execution(int(record["id"]))
                executions.append(
                    {
                        "Execution_uuid": _text(record.get("Execution_uuid")),
                        "Context_Type": _text(record.get("Context_Type")),
                        "artifacts": _artifacts(events, with_event=True),
                    }
                )
            executions.sort(key=lambda e: e["Execution_uuid"] or "")
            stages.append({"name": stage, "executions": executions})
        pipelines.append({"name": pipeline, "stages": stages})
        for row in _artifacts(query.get_all_artifacts_by_context(pipeline), with_event=False):
            attributed[(row["type"], row["name"], row["uri"])] = row
    return {"pipelines": pipelines, "artifacts": sorted(attributed.values(), key=str)}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: query.py <mlmd file>")
    print(json.dumps(summarise(sys.argv[1])))


if __name__ == "__main__":
    main()
