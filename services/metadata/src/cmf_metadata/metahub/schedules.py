"""Schedules: when each runs, in its own timezone (one time, every N minutes or hours, daily
at HH:MM, weekly on a day at HH:MM), validated as the reference validates them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cmf_metadata.metahub.peers import MetahubError, now_ms

Mode = Literal["interval", "daily", "weekly"]
Unit = Literal["minutes", "hours"]
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class InvalidSchedule(MetahubError):
    status = 400


class Clock(Protocol):
    """The scheduling port's clock (a fake one in tests)."""

    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return now_ms()


@dataclass(frozen=True)
class ScheduleSpec:
    server_id: int
    timezone: str
    start_time_local_iso: str
    one_time: bool
    recurrence_mode: Mode | None = None
    interval_unit: Unit | None = None
    interval_value: int | None = None
    daily_time: str | None = None
    weekly_day: str | None = None
    weekly_time: str | None = None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule("Invalid timezone") from None


def _hhmm(value: str | None, fallback: time) -> time:
    if not value:
        return fallback
    try:
        parsed = datetime.strptime(value, "%H:%M")
    except ValueError:
        raise InvalidSchedule("Invalid time format. Use HH:MM") from None
    return parsed.time()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def row_of(spec: ScheduleSpec, now: int) -> dict[str, Any]:
    """The schedule's row (columns of ``metahub_schedules``), its first run computed;
    :class:`InvalidSchedule` for a bad timezone, format, or a one-time start in the past."""
    zone = _zone(spec.timezone)
    try:
        local = datetime.strptime(spec.start_time_local_iso, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidSchedule("Invalid datetime format. Use YYYY-MM-DDTHH:MM") from None
    start = local.replace(tzinfo=zone)
    start_ms = _ms(start)
    row: dict[str, Any] = {
        "server_id": spec.server_id,
        "timezone": spec.timezone,
        "start_time_utc": start_ms,
        "one_time": spec.one_time,
        "created_at": now,
    }
    if spec.one_time:
        if start_ms <= now:
            raise InvalidSchedule("Start time must be in the future for one-time schedules")
        row["next_run_time_utc"] = start_ms
        return row
    mode = spec.recurrence_mode or "interval"
    row["recurrence_mode"] = mode
    if mode == "interval":
        row["interval_unit"] = spec.interval_unit or "hours"
        row["interval_value"] = spec.interval_value or 6
    elif mode == "daily":
        row["daily_time"] = _hhmm(spec.daily_time, start.time()).strftime("%H:%M")
    else:
        if spec.weekly_day not in DAYS:
            raise InvalidSchedule("weekly_day must be a day of the week, e.g. monday")
        row["weekly_day"] = spec.weekly_day
        row["weekly_time"] = _hhmm(spec.weekly_time, start.time()).strftime("%H:%M")
    # An interval whose start has passed runs at once, then on its grid from the start.
    first = next_run(row, after=now - 1)
    row["next_run_time_utc"] = now if mode == "interval" and start_ms < now else first
    return row


def next_run(row: dict[str, Any], after: int) -> int | None:
    """The schedule's first run strictly after ``after`` (epoch ms), not before its start;
    None for a one-time schedule (it runs once)."""
    if row["one_time"]:
        return None
    zone = _zone(row["timezone"])
    start_ms = int(row["start_time_utc"])
    after_ms = start_ms - 1 if after < start_ms else after
    mode = row["recurrence_mode"]
    if mode == "interval":
        step = int(row["interval_value"]) * (
            60_000 if row["interval_unit"] == "minutes" else 3_600_000
        )
        if after_ms < start_ms:
            return start_ms
        return start_ms + ((after_ms - start_ms) // step + 1) * step
    at = _hhmm(row["daily_time"] if mode == "daily" else row["weekly_time"], time(0, 0))
    local_after = datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(zone)
    day = local_after.date()
    for offset in range(0, 9):
        candidate_day = day + timedelta(days=offset)
        if mode == "weekly" and DAYS[candidate_day.weekday()] != row["weekly_day"]:
            continue
        candidate = datetime.combine(candidate_day, at, tzinfo=zone)
        if _ms(candidate) > after_ms:
            return _ms(candidate)
    raise AssertionError("a daily or weekly schedule always runs within 8 days")
