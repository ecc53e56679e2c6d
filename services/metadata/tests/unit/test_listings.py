"""The pure shaping of the reference listings and the model card."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cmf_common import frames
from cmf_metadata import executions, filters, model_card, properties

# Three one-row frames as cmflib builds them, and what pandas 3.1 answered for
# pd.concat(..., sort=True).to_json(orient="records") of them (recorded with the cmflib venv).
FRAME_ROWS: list[dict[str, Any]] = [
    {"id": 7, "type": "Metrics", "uri": "u1", "name": "m", "create_time_since_epoch": 10,
     "last_update_time_since_epoch": 11, "metrics_name": "m", "custom_properties_auc": 0.91,
     "custom_properties_n": 3, "custom_properties_orig": "17"},
    {"id": 8, "type": "Step_Metrics", "uri": "u2", "name": "s", "create_time_since_epoch": 12,
     "last_update_time_since_epoch": 13, "Commit": "c", "custom_properties_n": 4.5,
     "custom_properties_orig": "18", "custom_properties_mixed": "x"},
    {"id": 9, "type": "Dataset", "uri": "u3", "name": "d", "create_time_since_epoch": 14,
     "last_update_time_since_epoch": 15, "Commit": "d", "custom_properties_orig": "19",
     "custom_properties_mixed": 2, "custom_properties_big": 0.12345678901234},
]  # fmt: skip
PANDAS_RECORDS = json.loads(
    '[{"Commit": null, "create_time_since_epoch": 10, "custom_properties_auc": 0.91,'
    ' "custom_properties_big": null, "custom_properties_mixed": null, "custom_properties_n": 3.0,'
    ' "custom_properties_orig": "17", "id": 7, "last_update_time_since_epoch": 11,'
    ' "metrics_name": "m", "name": "m", "type": "Metrics", "uri": "u1"},'
    ' {"Commit": "c", "create_time_since_epoch": 12, "custom_properties_auc": null,'
    ' "custom_properties_big": null, "custom_properties_mixed": "x", "custom_properties_n": 4.5,'
    ' "custom_properties_orig": "18", "id": 8, "last_update_time_since_epoch": 13,'
    ' "metrics_name": null, "name": "s", "type": "Step_Metrics", "uri": "u2"},'
    ' {"Commit": "d", "create_time_since_epoch": 14, "custom_properties_auc": null,'
    ' "custom_properties_big": 0.123456789, "custom_properties_mixed": 2,'
    ' "custom_properties_n": null, "custom_properties_orig": "19", "id": 9,'
    ' "last_update_time_since_epoch": 15, "metrics_name": null, "name": "d", "type": "Dataset",'
    ' "uri": "u3"}]'
)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("abc", "%abc%"),
        ("50%", "%50\\%%"),
        ("a_b", "%a\\_b%"),
        ("back\\slash", "%back\\\\slash%"),
        ("it's", "%it's%"),
    ],
)
def test_like_pattern_escapes_metacharacters(value: str, pattern: str) -> None:
    assert filters.like_pattern(value) == pattern


def test_like_pattern_of_an_empty_filter_is_none() -> None:
    assert filters.like_pattern("") is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.91, "0.91"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456789012345.0, "123456789012345"),
        (1e15, "1e+15"),
        (1.5e300, "1.5e+300"),
        (0.1 + 0.2, "0.30000000000000004"),
        (float("inf"), "Infinity"),
        (-0.0, "-0"),
    ],
)
def test_pg_float_text_prints_as_postgresql_does(value: float, text: str) -> None:
    assert properties.pg_float_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [("s", "s"), (5, "5"), (True, "true"), (0.5, "0.5"), (None, None), ({"a": 1}, '{"a":1}')],
)
def test_property_text_renders_each_type_as_a_string(value: Any, text: str | None) -> None:
    assert properties.property_text(value) == text


def test_merged_properties_lists_properties_then_custom_properties() -> None:
    merged = properties.merged_properties({"Context_ID": 3}, {"seed": 42, "split": "0.2"})
    assert merged == [
        {"name": "Context_ID", "value": "3"},
        {"name": "seed", "value": "42"},
        {"name": "split", "value": "0.2"},
    ]


@pytest.mark.parametrize(
    ("stage", "uuid", "name"),
    [
        ("Test-env/Train", "72d025da-e9d5-11f1-a002-02fc00000001", "Train_72d0"),
        ("P/a/b", "abcdef-1", "a/b_abcd"),
        ("NoSlash", "1234-5,6789-0", "NoSlash_1234"),
    ],
)
def test_execution_list_name_is_short_stage_and_uuid_prefix(
    stage: str, uuid: str, name: str
) -> None:
    assert executions.execution_list_name(stage, uuid) == name


def test_frame_records_match_pandas_concat_to_json() -> None:
    assert frames.frame_records(FRAME_ROWS) == PANDAS_RECORDS


def test_frame_records_of_no_rows_is_an_empty_string() -> None:
    assert frames.frame_records([]) == ""


def test_frame_records_keep_a_whole_int_column_as_ints() -> None:
    assert frames.frame_records([{"n": 1}, {"n": 2}]) == [{"n": 1}, {"n": 2}]


def test_model_artifact_row_prefixes_custom_properties_and_resolves_clashes() -> None:
    row = {
        "id": 1, "type": "Model", "uri": "u", "name": "m:1", "create_time_since_epoch": 2,
        "last_update_time_since_epoch": 3, "properties": {"custom_properties_a": "p"},
        "custom_properties": {"a": "c", "flag": True},
    }  # fmt: skip
    flat = frames.artifact_row(row)
    assert flat["custom_properties_a"] == "p"
    assert flat["custom_properties_a_1"] == "c"
    assert flat["custom_properties_flag"] == 1.0  # MLMD keeps no bools: read back as a double


def test_model_execution_row_drops_git_commits_and_has_no_id() -> None:
    row = {
        "id": 4,
        "properties": {"Git_Start_Commit": "a", "Git_End_Commit": "", "Context_Type": "P/T"},
        "custom_properties": {"seed": 1},
    }
    assert model_card.execution_row(row) == {"Context_Type": "P/T", "custom_properties_seed": 1}


def test_page_query_offsets_pages_from_one() -> None:
    query = filters.PageQuery(active_page=3, record_per_page=6, sort_order="DESC")
    assert (query.offset, query.limit, query.descending) == (12, 6, True)
