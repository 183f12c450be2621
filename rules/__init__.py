"""Pure collection rules: plain data in, planned actions out. No I/O, no clock reads.

Start at rules/engine.py: `evaluate` (what is due now) and `next_action_at` (when next).
"""

from rules.actions import ActionKind, PlannedAction, action_key, reminder_key
from rules.calendar import OrgCalendar
from rules.engine import NextActionPlanner, evaluate, next_action_at, sendable
from rules.invoice import Instalment, InvoiceState, PastAction, PaymentPlan
from rules.policy import (
    ContactOverrides,
    Policy,
    PolicyError,
    ReminderStep,
    contact_overrides_from_json,
    default_policy,
    new_customer_variant,
    policy_from_json,
    policy_to_json,
    with_contact_overrides,
)
from rules.reminders import scheduled_moment

__all__ = [
    "ActionKind",
    "ContactOverrides",
    "Instalment",
    "InvoiceState",
    "NextActionPlanner",
    "OrgCalendar",
    "PastAction",
    "PaymentPlan",
    "PlannedAction",
    "Policy",
    "PolicyError",
    "ReminderStep",
    "action_key",
    "contact_overrides_from_json",
    "default_policy",
    "evaluate",
    "new_customer_variant",
    "next_action_at",
    "policy_from_json",
    "policy_to_json",
    "reminder_key",
    "scheduled_moment",
    "sendable",
    "with_contact_overrides",
]
