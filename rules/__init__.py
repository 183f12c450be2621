"""Pure collection rules: plain data in, planned actions out. No I/O, no clock reads."""

from rules.calendar import OrgCalendar
from rules.policy import (
    Policy,
    PolicyError,
    ReminderStep,
    default_policy,
    policy_from_json,
    policy_to_json,
)
from rules.reminders import (
    InvoiceState,
    PastAction,
    PlannedAction,
    evaluate,
    next_action_at,
    reminder_key,
    scheduled_moment,
)

__all__ = [
    "InvoiceState",
    "OrgCalendar",
    "PastAction",
    "PlannedAction",
    "Policy",
    "PolicyError",
    "ReminderStep",
    "default_policy",
    "evaluate",
    "next_action_at",
    "policy_from_json",
    "policy_to_json",
    "reminder_key",
    "scheduled_moment",
]
