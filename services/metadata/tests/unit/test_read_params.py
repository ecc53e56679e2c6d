"""Parsing the read side's query parameters: property filters, free text, sort, times."""

from __future__ import annotations

import pytest

from cmf_common.errors import Invalid
from cmf_metadata.filters import (
    check_text,
    json_like_pattern,
    like_pattern,
    parse_sort,
    property_candidates,
)
from cmf_metadata.properties import original_time


def test_property_value_is_matched_as_the_string_given() -> None:
    assert property_candidates("Context_Type:Test-env/Train") == [
        {"Context_Type": "Test-env/Train"}
    ]


def test_property_value_that_reads_as_an_integer_is_matched_as_one_too() -> None:
    assert property_candidates("seed:42") == [{"seed": "42"}, {"seed": 42}]


def test_property_value_that_reads_as_a_decimal_is_matched_as_one_too() -> None:
    assert property_candidates("auc:0.91") == [{"auc": "0.91"}, {"auc": 0.91}]


def test_property_key_ends_at_the_first_colon() -> None:
    assert property_candidates("url:Test-env:/srv/x") == [{"url": "Test-env:/srv/x"}]


def test_property_value_may_be_empty() -> None:
    assert property_candidates("Git_End_Commit:") == [{"Git_End_Commit": ""}]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "0x10", "1_000"])
def test_non_finite_or_odd_numbers_stay_strings(value: str) -> None:
    assert property_candidates(f"k:{value}") == [{"k": value}]


@pytest.mark.parametrize("raw", ["no-colon", ":value", ""])
def test_property_without_a_key_is_refused(raw: str) -> None:
    with pytest.raises(Invalid) as refused:
        property_candidates(raw)
    assert refused.value.code == "invalid_property"


def test_property_with_nul_is_refused() -> None:
    with pytest.raises(Invalid):
        property_candidates("k:a\x00b")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("50%", "%50\\%%"),
        ("a_b", "%a\\_b%"),
        ("it's", "%it's%"),
        ("C:\\data", "%C:\\\\data%"),
        ("\\%_", "%\\\\\\%\\_%"),
    ],
)
def test_like_pattern_escapes_every_metacharacter(text: str, pattern: str) -> None:
    assert like_pattern(text) == pattern


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('say "hi"', '%say \\\\"hi\\\\"%'),
        ("C:\\data", "%C:\\\\\\\\data%"),
        ("tab\there", "%tab\\\\there%"),
        ("naïve", "%naïve%"),
    ],
)
def test_json_like_pattern_finds_text_as_json_renders_it(text: str, pattern: str) -> None:
    assert json_like_pattern(text) == pattern


def test_sort_ascending_and_descending() -> None:
    assert parse_sort("name", ["id", "name"]) == ("name", False)
    assert parse_sort("-name", ["id", "name"]) == ("name", True)


@pytest.mark.parametrize("sort", ["uri", "--name", "name desc", "", "-"])
def test_unknown_sort_is_refused_with_the_allowed_fields(sort: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_sort(sort, ["id", "name"])
    assert refused.value.code == "invalid_sort" and "id, name" in refused.value.detail


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ({"original_create_time_since_epoch": "1795723838870"}, 1795723838870),
        ({"original_create_time_since_epoch": 1795723838870}, 1795723838870),
        ({"original_create_time_since_epoch": "soon"}, None),
        ({"original_create_time_since_epoch": "-5"}, None),
        ({"original_create_time_since_epoch": True}, None),
        ({}, None),
    ],
)
def test_original_time_reads_only_plain_integers(
    custom: dict[str, object], expected: int | None
) -> None:
    assert original_time(custom) == expected


def test_text_with_nul_is_refused_and_none_passes() -> None:
    assert check_text("pipeline", None) is None
    with pytest.raises(Invalid) as refused:
        check_text("pipeline", "a\x00")
    assert refused.value.code == "invalid_parameter"
