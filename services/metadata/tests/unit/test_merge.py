"""The push merge rules (docs/wire-contract.md §2.6) on the captured payload, without a database."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cmf_metadata.merge import (
    ORIGINAL_CREATE_TIME,
    PayloadRejected,
    PushStatus,
    join_comma_lists,
    payload_uuids,
    plan_merge,
    read_payload,
    split_uuids,
)

PIPELINE = "Test-env"


def _executions(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [ex for stage in payload["Pipeline"][0]["stages"] for ex in stage["executions"]]


def _uuids(payload: dict[str, Any]) -> list[str]:
    return [ex["properties"]["Execution_uuid"] for ex in _executions(payload)]


def test_named_pipeline_is_picked_from_the_payload(payload: dict[str, Any]) -> None:
    pipeline = read_payload(json.dumps(payload), PIPELINE)
    assert pipeline is not None and pipeline.name == PIPELINE


def test_pipeline_absent_from_payload_reads_as_none(payload: dict[str, Any]) -> None:
    assert read_payload(json.dumps(payload), "Other") is None


@pytest.mark.parametrize("body", ['{"Pipeline": []}', "{}", '{"Pipeline": null}'])
def test_payload_without_pipelines_is_rejected_as_reference_400(body: str) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        read_payload(body, PIPELINE)
    assert rejected.value.kind == "no_pipeline"


def test_invalid_json_is_rejected() -> None:
    with pytest.raises(PayloadRejected) as rejected:
        read_payload('{"Pipeline": [', PIPELINE)
    assert rejected.value.kind == "invalid_json"


def test_wrong_value_types_are_rejected_with_their_location(payload: dict[str, Any]) -> None:
    broken = copy.deepcopy(payload)
    broken["Pipeline"][0]["stages"][0]["executions"][0]["events"][0]["type"] = "input"
    with pytest.raises(PayloadRejected) as rejected:
        read_payload(json.dumps(broken), PIPELINE)
    assert rejected.value.kind == "invalid_request"
    assert rejected.value.detail[0]["loc"][:2] == ["Pipeline", 0]


def test_nul_characters_are_rejected(payload: dict[str, Any]) -> None:
    broken = copy.deepcopy(payload)
    broken["Pipeline"][0]["stages"][0]["name"] = "Test-env/Pre\u0000pare"
    with pytest.raises(PayloadRejected) as rejected:
        read_payload(json.dumps(broken), PIPELINE)
    assert rejected.value.kind == "invalid_request"


def test_new_execution_without_uuid_asks_for_a_client_update(payload: dict[str, Any]) -> None:
    old_client = copy.deepcopy(payload)
    del _executions(old_client)[0]["properties"]["Execution_uuid"]
    with pytest.raises(PayloadRejected) as rejected:
        read_payload(json.dumps(old_client), PIPELINE)
    assert rejected.value.kind == "version_update"


def test_everything_new_is_planned_with_artifacts_once_per_uri(payload: dict[str, Any]) -> None:
    pipeline = read_payload(json.dumps(payload), PIPELINE)
    assert pipeline is not None
    plan = plan_merge(pipeline, set(), None)
    assert plan.status is PushStatus.SUCCESS
    assert len(plan.executions) == len(_executions(payload))
    uris = [a.uri for a in plan.artifacts]
    assert uris == sorted(set(uris))  # once each, in lock order
    environment = [a for a in plan.artifacts if a.type == "Environment"]
    assert len(environment) == 1


def test_stored_uuids_make_the_push_exist(payload: dict[str, Any]) -> None:
    pipeline = read_payload(json.dumps(payload), PIPELINE)
    assert pipeline is not None
    plan = plan_merge(pipeline, set(payload_uuids(pipeline)), None)
    assert plan.status is PushStatus.EXISTS
    assert plan.executions == [] and plan.artifacts == []


def test_one_shared_member_of_a_uuid_list_is_enough_to_skip(payload: dict[str, Any]) -> None:
    listed = copy.deepcopy(payload)
    first = _executions(listed)[0]
    stored = first["properties"]["Execution_uuid"]
    first["properties"]["Execution_uuid"] = f"aaaaaaaa-0000-0000-0000-000000000000,{stored}"
    pipeline = read_payload(json.dumps(listed), PIPELINE)
    assert pipeline is not None
    plan = plan_merge(pipeline, {stored}, None)
    assert [e.uuid for e in plan.executions] == _uuids(payload)[1:]


def test_exec_uuid_narrows_the_merge_to_that_execution(payload: dict[str, Any]) -> None:
    wanted = _uuids(payload)[1]
    pipeline = read_payload(json.dumps(payload), PIPELINE)
    assert pipeline is not None
    plan = plan_merge(pipeline, set(), wanted)
    assert [e.uuid for e in plan.executions] == [wanted]
    assert [s.name for s in plan.stages] == [plan.executions[0].stage]


def test_reused_executions_are_merged_again(payload: dict[str, Any]) -> None:
    reused = copy.deepcopy(payload)
    _executions(reused)[0]["name"] = "shared-step"
    pipeline = read_payload(json.dumps(reused), PIPELINE)
    assert pipeline is not None
    plan = plan_merge(pipeline, set(payload_uuids(pipeline)), None)
    assert [e.name for e in plan.executions] == ["shared-step"]


def test_client_creation_time_is_kept_as_a_string_custom_property(
    payload: dict[str, Any],
) -> None:
    pipeline = read_payload(json.dumps(payload), PIPELINE)
    assert pipeline is not None
    plan = plan_merge(pipeline, set(), None)
    source = _executions(payload)[0]
    assert plan.executions[0].custom_properties[ORIGINAL_CREATE_TIME] == str(
        source["create_time_since_epoch"]
    )
    assert all(
        isinstance(a.custom_properties[ORIGINAL_CREATE_TIME], str)
        for a in plan.artifacts
        if a.type != "Environment"
    )


def test_environment_artifacts_get_no_client_creation_time(payload: dict[str, Any]) -> None:
    """The reference's Environment handler stores no custom properties (its pull shows {})."""
    pipeline = read_payload(json.dumps(payload), PIPELINE)
    assert pipeline is not None
    environments = [
        a for a in plan_merge(pipeline, set(), None).artifacts if a.type == "Environment"
    ]
    assert environments
    assert all(ORIGINAL_CREATE_TIME not in a.custom_properties for a in environments)


def test_a_pulled_original_creation_time_is_not_overwritten(payload: dict[str, Any]) -> None:
    pulled = copy.deepcopy(payload)
    _executions(pulled)[0]["custom_properties"][ORIGINAL_CREATE_TIME] = "123"
    pipeline = read_payload(json.dumps(pulled), PIPELINE)
    assert pipeline is not None
    assert (
        plan_merge(pipeline, set(), None).executions[0].custom_properties[ORIGINAL_CREATE_TIME]
        == "123"
    )


def test_unknown_artifact_types_are_kept(payload: dict[str, Any]) -> None:
    extended = copy.deepcopy(payload)
    _executions(extended)[0]["events"].append(
        {"type": 4, "artifact": {"type": "Hologram", "uri": "feedface", "name": "h:feedface"}}
    )
    pipeline = read_payload(json.dumps(extended), PIPELINE)
    assert pipeline is not None
    assert "Hologram" in {a.type for a in plan_merge(pipeline, set(), None).artifacts}


def test_same_uri_seen_twice_in_a_push_joins_its_url_lists(payload: dict[str, Any]) -> None:
    twice = copy.deepcopy(payload)
    events = _executions(twice)[0]["events"]
    again = copy.deepcopy(events[1])
    again["artifact"]["properties"]["url"] = "Other:/elsewhere"
    _executions(twice)[1]["events"].append(again)
    pipeline = read_payload(json.dumps(twice), PIPELINE)
    assert pipeline is not None
    planned = {a.uri: a for a in plan_merge(pipeline, set(), None).artifacts}
    url = planned[again["artifact"]["uri"]].properties["url"]
    assert url.split(",") == [events[1]["artifact"]["properties"]["url"], "Other:/elsewhere"]


def test_comma_lists_join_without_repeats_first_sighting_first() -> None:
    assert join_comma_lists("a,b", "b,c") == "a,b,c"
    assert join_comma_lists(None, "") is None
    assert split_uuids(" u1, u2 ,,") == ["u1", "u2"]
