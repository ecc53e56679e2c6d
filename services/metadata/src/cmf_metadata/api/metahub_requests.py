"""The request bodies of Metahub's routes, both generations (docs/metahub.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from cmf_metadata.metahub.schedules import ScheduleSpec

Text = Annotated[str, Field(max_length=2048)]
HHMM = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ServerBody(BaseModel):
    """``{"server_name", "server_url"}``; ``token`` (ours, optional): sent to the peer as a
    bearer token, kept encrypted, never returned."""

    server_name: Annotated[str, Field(min_length=1, max_length=256)]
    server_url: Text
    token: Annotated[str | None, Field(max_length=4096)] = None


class RegisterBody(ServerBody):
    last_sync_time: int | None = None  # upstream's field; ignored (a new peer never synced)


class AcknowledgeBody(BaseModel):
    server_name: Text
    server_url: Text


class ScheduleBody(BaseModel):
    """``ScheduleCreateRequest``: a one-time schedule drops the recurrence fields; a periodic
    one defaults to every 6 hours; a weekly one needs ``weekly_day``."""

    server_id: Id
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    start_time_local_iso: Annotated[str, Field(max_length=32)]
    one_time: bool = False
    recurrence_mode: Literal["interval", "daily", "weekly"] | None = None
    interval_unit: Literal["minutes", "hours"] | None = None
    interval_value: Annotated[int, Field(gt=0, le=100_000)] | None = None
    daily_time: HHMM | None = None
    weekly_day: (
        Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] | None
    ) = None
    weekly_time: HHMM | None = None

    @model_validator(mode="after")
    def _recurrence(self) -> ScheduleBody:
        if self.one_time:
            self.recurrence_mode = self.interval_unit = self.interval_value = None
            self.daily_time = self.weekly_day = self.weekly_time = None
            return self
        self.recurrence_mode = self.recurrence_mode or "interval"
        if self.recurrence_mode == "interval":
            self.interval_unit = self.interval_unit or "hours"
            self.interval_value = self.interval_value or 6
        if self.recurrence_mode == "weekly" and self.weekly_day is None:
            raise ValueError("weekly_day is required for a weekly schedule")
        return self

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(
            server_id=self.server_id,
            timezone=self.timezone,
            start_time_local_iso=self.start_time_local_iso,
            one_time=self.one_time,
            recurrence_mode=self.recurrence_mode,
            interval_unit=self.interval_unit,
            interval_value=self.interval_value,
            daily_time=self.daily_time,
            weekly_day=self.weekly_day,
            weekly_time=self.weekly_time,
        )
