"""The property bags every entity carries, as the wire shows them: the client's creation time
the merge keeps among them, and the reference listings' ``[{name, value}]``.

The reference builds its listings from MLMD's property tables; here the bags are stored as jsonb
and these pure functions render them the way the reference's JSON comes out: properties, then
custom properties, every value a string as its SQL casts it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from cmf_common.db import json_dumps
from cmf_metadata.merge import ORIGINAL_CREATE_TIME


class Row(Protocol):
    """A stored row: an asyncpg record, or a dict in tests."""

    def __getitem__(self, key: str, /) -> Any: ...


def original_time(custom: dict[str, Any]) -> int | None:
    """The client's creation time, which the merge keeps as a string custom property."""
    value = custom.get(ORIGINAL_CREATE_TIME)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def pg_float_text(value: float) -> str:
    """A double as PostgreSQL prints it (``float8out``): the shortest exact digits, exponent
    form below 1e-4 and from 1e15 up, no trailing ``.0``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    exponent += len("".join(map(str, digit_tuple))) - len(digits)
    point = len(digits) + exponent  # digits before the decimal point
    lead = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 15:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        power = point - 1
        return f"{lead}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    if point <= 0:
        return f"{lead}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{lead}{digits}{'0' * (point - len(digits))}"
    return f"{lead}{digits[:point]}.{digits[point:]}"


def property_text(value: Any) -> str | None:
    """A property value as the reference's SQL renders it: ``coalesce`` of its typed columns,
    cast to text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return pg_float_text(value)
    return json_dumps(value)  # a struct


def merged_properties(
    properties: Mapping[str, Any], custom: Mapping[str, Any]
) -> list[dict[str, str | None]]:
    """Properties, then custom properties, as one ``[{name, value}]`` list of strings."""
    return [
        {"name": name, "value": property_text(value)}
        for source in (properties, custom)
        for name, value in source.items()
    ]
