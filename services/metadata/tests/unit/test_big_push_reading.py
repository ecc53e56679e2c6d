"""The big push's lean reading (cmf_metadata.big_push) plans what the pydantic models plan."""

from __future__ import annotations

import json

from cmf_metadata.big_push import LeanSource, read_big_payload, read_big_request
from cmf_metadata.merge import payload_uuids, plan_merge, read_payload
from cmf_testing.generator import payload_text, push_body_bytes


def test_lean_plan_equals_the_models_plan() -> None:
    text = payload_text("lean", 40, stages=3)
    models = read_payload(text, "lean")
    lean = read_big_payload(text, "lean")
    assert models is not None
    assert isinstance(lean, LeanSource)
    assert lean.uuids == payload_uuids(models)
    some = set(lean.uuids[:10])
    assert lean.plan(some, None) == plan_merge(models, some, None)
    assert lean.plan(set(), lean.uuids[3]) == plan_merge(models, set(), lean.uuids[3])


def test_lean_request_reads_the_client_body() -> None:
    body = push_body_bytes("lean", 3)
    read = read_big_request(body)
    assert read.pipeline_name == "lean"
    assert read.exec_uuid is None
    assert read.json_payload == json.loads(body)["json_payload"]


def test_a_payload_the_lean_reading_refuses_is_decided_by_the_models() -> None:
    """An int the models accept as a numeric string is refused by msgspec: the models read it."""
    payload = json.loads(payload_text("lean", 2))
    payload["Pipeline"][0]["stages"][0]["executions"][0]["events"][0]["type"] = "3"
    text = json.dumps(payload)
    decided = read_big_payload(text, "lean")
    models = read_payload(text, "lean")
    assert models is not None and decided is not None
    assert decided.plan(set(), None) == plan_merge(models, set(), None)
