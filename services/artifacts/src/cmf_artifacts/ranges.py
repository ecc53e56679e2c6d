"""``Range: bytes=…`` (RFC 9110 §14): one range of a blob, or the whole of it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmf_common.errors import DomainError

_ONE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(DomainError):
    status = 416
    code = "range_not_satisfiable"
    title = "Range not satisfiable"


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` asks of a blob of ``size`` bytes; ``None`` for the whole blob (no
    header, or one this server answers whole: several ranges, another unit).
    :class:`RangeNotSatisfiable` when it asks for bytes past the end."""
    if header is None:
        return None
    match = _ONE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match[1], match[2]
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(f"bytes={first}-{last} of a {size}-byte blob", size=size)
        return ByteRange(max(0, size - int(last)), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable(f"bytes={first}-{last} of a {size}-byte blob", size=size)
    return ByteRange(start, end)
