"""The collection policy: a versioned schema, validated at the edge (pydantic)."""

from __future__ import annotations

import itertools
import json
import re
from datetime import time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TEMPLATE_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


class PolicyError(ValueError):
    """A policy that cannot be used, with a message naming the field."""


class ReminderStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    offset_days: int = Field(ge=-365, le=365)
    template: str = "reminder"
    channel: Literal["provider_email"] = "provider_email"

    @field_validator("template")
    @classmethod
    def _template_name(cls, value: str) -> str:
        if not TEMPLATE_NAME.match(value):
            raise ValueError("template names use a-z, 0-9, '_' and '-' (1 to 64 characters)")
        return value


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    reminder_steps: tuple[ReminderStep, ...] = Field(min_length=1, max_length=20)
    send_time: time = time(9, 0)
    send_window_hours: int = Field(default=8, ge=1, le=24)
    business_days_only: bool = True
    min_amount_due: Decimal = Field(default=Decimal("0.01"), ge=0)

    @field_validator("reminder_steps")
    @classmethod
    def _increasing(cls, steps: tuple[ReminderStep, ...]) -> tuple[ReminderStep, ...]:
        offsets = [s.offset_days for s in steps]
        if any(b <= a for a, b in itertools.pairwise(offsets)):
            raise ValueError("reminder steps must have strictly increasing offset_days")
        return steps


    @model_validator(mode="after")
    def _window_within_the_day(self) -> Policy:
        minutes = self.send_time.hour * 60 + self.send_time.minute + self.send_window_hours * 60
        if minutes > 24 * 60:
            raise ValueError("send_time plus send_window_hours must end by midnight")
        return self


def default_policy() -> Policy:
    return Policy(reminder_steps=(
        ReminderStep(offset_days=-3, template="friendly_before"),
        ReminderStep(offset_days=0, template="due_today"),
        ReminderStep(offset_days=7, template="overdue_1"),
        ReminderStep(offset_days=21, template="overdue_2"),
    ))


def policy_from_json(data: dict[str, Any] | str) -> Policy:
    try:
        raw = json.loads(data) if isinstance(data, str) else data
        return Policy.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy is not valid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'policy'}: {err['msg']}"
            for err in exc.errors())
        raise PolicyError(problems) from exc


def policy_to_json(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(mode="json")
