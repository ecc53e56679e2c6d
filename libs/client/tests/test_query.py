"""ServerQuery's rows, built as CmfQuery builds them, and its name lookups, against a fake
server (the comparison with the real CmfQuery is tests/integration/test_sdk.py's)."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

from cmf_server_client import Client, ServerQuery
from cmf_server_client.query import execution_row, frame, records_frame

URL = "http://cmf.test"


def test_custom_properties_are_prefixed_and_a_taken_name_gets_a_suffix() -> None:
    item = {
        "id": 3,
        "name": "",
        "properties": {"Execution_uuid": "u", "flag": True, "shape": {"a": 1}},
        "custom_properties": {"seed": 7, "x": 1},
    }
    row = execution_row(item)
    assert row == {
        "id": 3,
        "name": "",
        "Execution_uuid": "u",
        "flag": 1.0,
        "shape": '{"a": 1}',
        "custom_properties_seed": 7,
        "custom_properties_x": 1,
    }
    taken = execution_row({**item, "properties": {"custom_properties_seed": "p"}})
    assert taken["custom_properties_seed"] == "p"
    assert taken["custom_properties_seed_1"] == 7


def test_frames_concatenate_as_cmfquery_does() -> None:
    result = frame([{"id": 1, "b": 2, "a": "x"}, {"id": 2, "a": "y"}])
    assert list(result.columns) == ["a", "b", "id"]
    assert result["b"].dtype.kind == "f" and pd.isna(result["b"][1])
    assert result["id"].dtype.kind == "i"
    assert frame([]).empty


def test_server_records_come_back_as_the_same_frame() -> None:
    rows = [{"id": 1, "b": 2, "a": "x"}, {"id": 2, "a": "y"}]
    records = [{"a": "x", "b": 2.0, "id": 1}, {"a": "y", "b": None, "id": 2}]
    pd.testing.assert_frame_equal(records_frame(records), frame(rows))
    assert records_frame(None).empty


def fake(routes: dict[str, Any]) -> ServerQuery:
    def answer(request: httpx.Request) -> httpx.Response:
        for prefix, body in routes.items():
            if request.url.path.startswith(prefix):
                return httpx.Response(200, json=body(request) if callable(body) else body)
        return httpx.Response(404, json={"detail": "nothing", "code": "http_404"})

    return ServerQuery(client=Client(URL, transport=httpx.MockTransport(answer)))


def artifacts(request: httpx.Request) -> dict[str, Any]:
    names = ["artifacts/raw/trained_model.pkl.bak:1", "artifacts/model/trained_model.pkl:7e93"]
    wanted = request.url.params.get("name")
    items = [
        {"id": i, "name": n, "type": "Model", "uri": str(i)}
        for i, n in enumerate(names, 1)
        if wanted is None or n == wanted
    ]
    return {"items": items, "total": len(items), "next_cursor": None}


def test_a_file_name_finds_the_artifact_whose_path_ends_with_it() -> None:
    query = fake({"/api/native/v1/artifacts": artifacts})
    assert (
        query.resolve_artifact_name("trained_model.pkl") == "artifacts/model/trained_model.pkl:7e93"
    )
    full = "artifacts/raw/trained_model.pkl.bak:1"
    assert query.resolve_artifact_name(full) == full
    assert query.resolve_artifact_name("other.pkl") is None
    assert query.get_upstream_artifacts_by_artifact_name("other.pkl").empty


def test_found_nothing_answers_what_cmfquery_answers() -> None:
    nothing = {"status": "error", "code": 404, "message": "Artifacts not found", "errors": []}
    query = fake({"/api/v1/": nothing, "/api/native/v1/artifacts": artifacts})
    assert query.get_all_parent_artifacts("x:1").empty
    assert query.find_producer_execution("x:1") is None
    assert query.get_all_parent_executions_by_id([1]) == [[], []]
    assert query.get_pipeline_stages("nowhere") == []
    assert query.get_artifact("nowhere:1") is None
