"""Keyset cursors of the read side: round trips, and every kind of tampering refused."""

from __future__ import annotations

import base64

import orjson
import pytest

from cmf_common.errors import Invalid
from cmf_common.paging import BIGINT_MAX, decode_cursor, encode_cursor, query_scope
from cmf_common.paging import _spell as _spell_cursor
from cmf_metadata.export import ExportPosition

SCOPE = query_scope("v1.executions", pipeline="Test-env", sort="id")


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _spell(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_cursor_round_trips_its_values() -> None:
    token = encode_cursor(SCOPE, ["artifacts/data.xml:18b9", 42])
    assert decode_cursor(token, SCOPE, (str, int)) == ["artifacts/data.xml:18b9", 42]


def test_cursor_is_url_safe_without_padding() -> None:
    token = encode_cursor(SCOPE, ["ü/?&=+", 2**40])
    assert token.isascii() and not set(token) - set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_scope_depends_on_filters_and_sort() -> None:
    assert query_scope("v1.executions", pipeline="a", sort="id") != query_scope(
        "v1.executions", pipeline="b", sort="id"
    )
    assert query_scope("v1.executions", sort="id") != query_scope("v1.executions", sort="-id")
    assert query_scope("v1.executions", sort="id") != query_scope("v1.artifacts", sort="id")


def test_scope_ignores_keyword_order() -> None:
    assert query_scope("r", a=1, b=[1, 2]) == query_scope("r", b=[1, 2], a=1)


def test_cursor_of_another_query_is_refused() -> None:
    token = encode_cursor(query_scope("v1.executions", pipeline="Other"), [1, 1])
    with pytest.raises(Invalid) as refused:
        decode_cursor(token, SCOPE, (int, int))
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    "token",
    ["", "not a cursor", "%%%%", "YQ", "é", "A" * 5000, "AAAAAAAAAAAAAAAAAAAAAA"],
    ids=["empty", "spaces", "symbols", "short", "non-ascii", "huge", "zeros"],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(Invalid):
        decode_cursor(token, SCOPE, (int, int))


def test_any_flipped_byte_is_refused() -> None:
    raw = _raw(encode_cursor(SCOPE, [7, 7]))
    for i in range(len(raw)):
        changed = bytearray(raw)
        changed[i] ^= 0x01
        with pytest.raises(Invalid):
            decode_cursor(_spell(bytes(changed)), SCOPE, (int, int))


def test_truncated_cursor_is_refused() -> None:
    token = encode_cursor(SCOPE, [7, 7])
    for end in range(len(token)):
        with pytest.raises(Invalid):
            decode_cursor(token[:end], SCOPE, (int, int))


def test_padded_spelling_is_refused() -> None:
    token = encode_cursor(SCOPE, [7, 7])
    with pytest.raises(Invalid):
        decode_cursor(token + "=", SCOPE, (int, int))


def test_edited_values_under_the_old_checksum_are_refused() -> None:
    raw = _raw(encode_cursor(SCOPE, [7, 7]))
    payload = raw[:-8].replace(b"7]", b"8]")
    with pytest.raises(Invalid):
        decode_cursor(_spell(payload + raw[-8:]), SCOPE, (int, int))


@pytest.mark.parametrize(
    ("values", "kinds"),
    [
        (["7", 7], (int, int)),
        ([7, 7], (str, int)),
        ([True, 7], (int, int)),
        ([7.5, 7], (int, int)),
        ([BIGINT_MAX + 1, 7], (int, int)),
        (["a\x00b", 7], (str, int)),
        ([7], (int, int)),
        ([7, 7, 7], (int, int)),
    ],
    ids=["str-for-int", "int-for-str", "bool", "float", "over-bigint", "nul", "short", "long"],
)
def test_values_of_the_wrong_shape_are_refused(
    values: list[object], kinds: tuple[type, ...]
) -> None:
    token = encode_cursor(SCOPE, values)  # type: ignore[arg-type]
    with pytest.raises(Invalid):
        decode_cursor(token, SCOPE, kinds)


def test_other_version_is_refused() -> None:
    token = _spell_cursor(orjson.dumps([2, SCOPE, 7, 7]))
    with pytest.raises(Invalid):
        decode_cursor(token, SCOPE, (int, int))


def test_export_position_round_trips() -> None:
    position = ExportPosition(pipeline_id=3, phase=2, after_id=1500)
    assert ExportPosition.decode(position.encode()) == position


@pytest.mark.parametrize("values", [[-1, 0, 0], [1, 4, 0], [1, -1, 0], [1, 0, -5]])
def test_export_position_out_of_range_is_refused(values: list[int]) -> None:
    token = encode_cursor(query_scope("v1.export"), values)
    with pytest.raises(Invalid):
        ExportPosition.decode(token)


def test_listing_cursor_is_not_an_export_cursor() -> None:
    with pytest.raises(Invalid):
        ExportPosition.decode(encode_cursor(SCOPE, [1, 0, 0]))
