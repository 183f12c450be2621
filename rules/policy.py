"""The collection policy: a versioned schema, validated at the edge so planning can trust it.

Version 1 holds the reminder ladder and when sending is allowed. Later concerns (late fees,
interest, discounts, payment plans, escalation) arrive as new sections of a new version, and
`policy_from_json` is the one place that reads stored bodies of any version.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

TEMPLATE_NAME = re.compile(r"[a-z0-9_-]{1,64}")
MAX_OFFSET_DAYS = 365

# Strict: a JSON `true` is not the number 1, and a settings typo should not become a policy.
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the field, so the owner can fix it."""


class ReminderStep(BaseModel):
    """One rung of the ladder, placed relative to the due date so it survives due-date edits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    offset_days: StrictInt = Field(ge=-MAX_OFFSET_DAYS, le=MAX_OFFSET_DAYS)
    template: str = "reminder"
    channel: Literal["provider_email"] = "provider_email"

    @field_validator("template")
    @classmethod
    def _template_name(cls, value: str) -> str:
        # fullmatch: `$` would let a trailing newline through into a template lookup.
        if not TEMPLATE_NAME.fullmatch(value):
            raise ValueError(
                f"template name {value!r} must be 1 to 64 characters of a-z, 0-9, '_' or '-'")
        return value


class Policy(BaseModel):
    """Version 1: the reminder ladder and the daily sending window, in the org's local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    reminder_steps: tuple[ReminderStep, ...] = Field(min_length=1, max_length=20)
    send_time: time = time(9, 0)
    # 24 is allowed (with send_time 00:00) for "any hour", which the demo uses.
    send_window_hours: StrictInt = Field(default=8, ge=1, le=24)
    business_days_only: StrictBool = True
    min_amount_due: Decimal = Field(default=Decimal("0.01"), ge=0)

    @field_validator("reminder_steps")
    @classmethod
    def _strictly_increasing(cls, steps: tuple[ReminderStep, ...]) -> tuple[ReminderStep, ...]:
        for n, (a, b) in enumerate(itertools.pairwise(steps), start=1):
            if b.offset_days <= a.offset_days:
                raise ValueError(
                    f"offset_days must be strictly increasing: step {n} has {b.offset_days}"
                    f" after {a.offset_days} in step {n - 1}")
        return steps

    @field_validator("send_time")
    @classmethod
    def _wall_time(cls, value: time) -> time:
        # The zone is the organisation's; an offset here would silently disagree with it.
        if value.tzinfo is not None:
            raise ValueError("send_time is a local wall time: give it without a UTC offset")
        return value

    @model_validator(mode="after")
    def _window_within_the_day(self) -> Policy:
        # A window running past midnight would send at night on the next day.
        start = self.send_time.hour * 3600 + self.send_time.minute * 60 + self.send_time.second
        if start + self.send_window_hours * 3600 > 24 * 3600:
            raise ValueError(
                f"send_time {self.send_time.isoformat()} plus send_window_hours"
                f" {self.send_window_hours} must end by midnight")
        return self


def default_policy() -> Policy:
    """A gentle ladder most owners accept unchanged: a nudge before, on, and twice after."""
    return Policy(reminder_steps=(
        ReminderStep(offset_days=-3, template="friendly_before"),
        ReminderStep(offset_days=0, template="due_today"),
        ReminderStep(offset_days=7, template="overdue_1"),
        ReminderStep(offset_days=21, template="overdue_2"),
    ))


def _describe(error: ValidationError) -> str:
    items = error.errors()
    problems = []
    for item in items:
        loc = item["loc"]
        # pydantic also calls a list "too short" when one of its items failed: noise, drop it.
        if item["type"] == "too_short" and any(
                other["loc"][:len(loc)] == loc and len(other["loc"]) > len(loc)
                for other in items):
            continue
        where = ".".join(str(part) for part in loc) or "policy"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def policy_from_json(data: dict[str, Any] | str) -> Policy:
    """Read a stored or submitted policy; every problem becomes one PolicyError naming fields."""
    if isinstance(data, str):
        try:
            # parse_float=Decimal: an amount such as 0.10 never passes through a float.
            data = json.loads(data, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy is not valid JSON: {exc.msg} at line {exc.lineno}"
                              f" column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy must be a JSON object, not {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_describe(exc)) from exc


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """JSON-ready dict (Decimal as a string, time as HH:MM:SS) that policy_from_json reads back."""
    return policy.model_dump(mode="json")
