"""Validated input for creating and updating meetings (bounds that depend on settings are
checked by `services.meetings`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _single_line(value: str) -> str:
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class MeetingSettingsIn(BaseModel):
    """Meeting options; on update, fields left out (or null) keep their current value."""

    model_config = ConfigDict(extra="forbid")

    enable_recording: StrictBool | None = None
    enable_ai_analysis: StrictBool | None = None
    require_password: StrictBool | None = None
    password: str | None = Field(default=None, min_length=4, max_length=64)
    screen_share_requires_permission: StrictBool | None = None
    max_screen_shares: StrictInt | None = Field(default=None, ge=1, le=16)
    mute_on_join: StrictBool | None = None
    allow_self_unmute: StrictBool | None = None
    enable_chat: StrictBool | None = None
    default_role: Literal["participant", "audience"] | None = Field(
        default=None, description="Role given to people who join (audience: a webinar)"
    )

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        return _no_nul(v) if v is not None else v


class MeetingFields(BaseModel):
    """Fields shared by create and update; bounds that depend on settings live in the service."""

    description: str | None = Field(default=None, max_length=5000)
    start_time: datetime | None = Field(default=None, description="UTC if no offset is given")
    duration: StrictInt | None = Field(default=None, ge=1, le=1440, description="Minutes")
    max_participants: StrictInt | None = Field(default=None, ge=2)
    is_public: StrictBool | None = None
    settings: MeetingSettingsIn | None = None

    @field_validator("description")
    @classmethod
    def _description(cls, v: str | None) -> str | None:
        return _no_nul(v.strip()) if v is not None else v

    @field_validator("start_time", mode="before")
    @classmethod
    def _iso_only(cls, v: object) -> object:
        # Lax pydantic would read a number as a Unix time; the contract shows ISO 8601 only.
        if v is not None and not isinstance(v, str | datetime):
            raise ValueError("must be an ISO 8601 date-time such as 2025-10-01T14:00:00Z")
        return v

    @field_validator("start_time")
    @classmethod
    def _start_time(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        try:
            v = (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            raise ValueError("start_time is out of range") from None
        if v < _EARLIEST:
            raise ValueError("start_time is out of range")
        return v


class MeetingDraft(MeetingFields):
    title: str = Field(min_length=1, max_length=200, examples=["项目讨论会"])

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        return _nonblank(_single_line(v))


class MeetingPatch(MeetingFields):
    title: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        return _nonblank(_single_line(v)) if v is not None else v


def _nonblank(v: str) -> str:
    if not v:
        raise ValueError("must not be blank")
    return v
