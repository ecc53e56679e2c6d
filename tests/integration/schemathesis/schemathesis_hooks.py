"""schemathesis hooks for the embedded server's run (schemathesis.toml). Each makes a
schema-valid request one the server can take, where what makes it so is a value JSON Schema
cannot state; none touches a case whose part it changes was made to be invalid."""

from __future__ import annotations

import re
from typing import Any

import orjson
import schemathesis
from schemathesis import GenerationMode

# The server hands these out; a string of their schema that it did not is refused by contract.
OPAQUE = ("cursor",)
# A push of one execution, for the push routes' json_payload (a JSON document in a string).
PUSH_ROUTES = re.compile(r"(/mlmd_push|/mlmd/push)$")
STAGE_BODIES = re.compile(r"/stages/\{stage\}/(artifacts|executions)$")


def _payload(pipeline: str) -> str:
    artifact = {"type": "Dataset", "uri": "schemathesis-0", "name": "data.csv:schemathesis-0"}
    execution = {
        "type": "st-stage",
        "name": "st",
        "properties": {"Execution_uuid": "00000000-0000-4000-8000-000000000000"},
        "events": [{"type": 3, "artifact": artifact}],
    }
    stage = {"name": f"{pipeline}/st-stage", "executions": [execution]}
    return orjson.dumps({"Pipeline": [{"name": pipeline, "stages": [stage]}]}).decode()


def _int(value: Any) -> int | None:
    try:
        return int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _positive(case: Any, location: str) -> bool:
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(location)
    mode = component.mode if component is not None else meta.generation.mode
    return bool(mode == GenerationMode.POSITIVE)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    query = case.query if isinstance(case.query, dict) else None
    if query is not None and _positive(case, "query"):
        for name in OPAQUE:
            query.pop(name, None)
        after, before = _int(query.get("created_after")), _int(query.get("created_before"))
        if after is not None and before is not None and after >= before:
            # created_after must be less than created_before: drop the later bound
            del query["created_before"]
    body = case.body
    if isinstance(body, dict) and _positive(case, "body"):
        if PUSH_ROUTES.search(case.operation.path) and isinstance(body.get("json_payload"), str):
            # The push's rules beyond its schema: a pipeline name that is not blank (or a
            # legacy client's id), and a json_payload that is an MLMD document naming it.
            pipeline = body.get("pipeline_name")
            if not isinstance(pipeline, str) or not pipeline.strip():
                body["pipeline_name"] = "schemathesis"
            body["json_payload"] = _payload(body["pipeline_name"])
        if STAGE_BODIES.search(case.operation.path):
            body.pop("stage_name", None)  # when sent, it must name the path's stage
        if case.operation.path.endswith("/complete") and isinstance(body.get("parts"), list):
            # An upload's parts are listed once each, in ascending order.
            parts = {p["number"]: p for p in body["parts"] if isinstance(p, dict) and "number" in p}
            body["parts"] = [parts[n] for n in sorted(parts)]
    return case
