"""When schedules run: intervals from their start, daily and weekly at a local time in their
timezone, across a daylight-saving change."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cmf_metadata.metahub.schedules import InvalidSchedule, ScheduleSpec, next_run, row_of

NY = ZoneInfo("America/New_York")


def ms(text: str, zone: ZoneInfo = NY) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=zone).timestamp() * 1000)


def spec(**change: object) -> ScheduleSpec:
    values: dict[str, object] = {
        "server_id": 1,
        "timezone": "America/New_York",
        "start_time_local_iso": "2026-03-06T09:30",
        "one_time": False,
    }
    values.update(change)
    return ScheduleSpec(**values)  # type: ignore[arg-type]


def test_an_interval_runs_from_its_start_in_steps() -> None:
    row = row_of(spec(recurrence_mode="interval", interval_unit="hours", interval_value=6), 0)
    start = ms("2026-03-06T09:30")
    assert row["next_run_time_utc"] == start
    assert next_run(row, after=start) == start + 6 * 3_600_000
    assert next_run(row, after=start + 13 * 3_600_000) == start + 18 * 3_600_000


def test_daily_keeps_the_local_time_across_daylight_saving() -> None:
    row = row_of(spec(recurrence_mode="daily", daily_time="09:30"), 0)
    # New York moves to summer time on 2026-03-08: 09:30 local is 14:30 UTC, then 13:30 UTC.
    assert next_run(row, after=ms("2026-03-07T10:00")) == ms("2026-03-08T09:30")
    assert next_run(row, after=ms("2026-03-08T09:30")) == ms("2026-03-09T09:30")
    assert ms("2026-03-09T09:30") - ms("2026-03-08T09:30") == 24 * 3_600_000
    assert ms("2026-03-08T09:30") - ms("2026-03-07T09:30") == 23 * 3_600_000


def test_weekly_runs_on_its_day() -> None:
    row = row_of(spec(recurrence_mode="weekly", weekly_day="monday", weekly_time="08:00"), 0)
    assert row["next_run_time_utc"] == ms("2026-03-09T08:00")  # the first Monday from the start
    assert next_run(row, after=ms("2026-03-09T08:00")) == ms("2026-03-16T08:00")


def test_daily_time_defaults_to_the_start_time() -> None:
    assert row_of(spec(recurrence_mode="daily"), 0)["daily_time"] == "09:30"


def test_a_one_time_schedule_runs_once() -> None:
    row = row_of(spec(one_time=True), 0)
    assert row["next_run_time_utc"] == ms("2026-03-06T09:30")
    assert next_run(row, after=0) is None
    with pytest.raises(InvalidSchedule, match="future"):
        row_of(spec(one_time=True), ms("2026-03-06T09:30"))


def test_an_interval_whose_start_passed_runs_at_once_then_on_its_grid() -> None:
    start = ms("2026-03-06T09:30")
    now = start + 90 * 60_000
    row = row_of(spec(recurrence_mode="interval", interval_unit="hours", interval_value=1), now)
    assert row["next_run_time_utc"] == now
    assert next_run(row, after=now) == start + 2 * 3_600_000
