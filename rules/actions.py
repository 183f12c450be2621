"""What the planner hands to the ledger: one action, with a key that makes it happen once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

ActionKind = Literal["reminder", "fee", "interest", "compensation", "discount",
                     "plan_instalment", "call_task", "stop_service", "demand_letter",
                     "agency_case", "statement", "deposit_reminder", "retainer_top_up",
                     "terms_change", "quote_deposit_reminder", "note",
                     "one_off_reminder"]
MONEY_KINDS = frozenset({"fee", "interest", "compensation", "discount"})


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """An action to write to the ledger; its key makes planning it twice a no-op.

    It is filed under an invoice (`invoice_id`: a reminder, a fee) or a customer
    (`contact_id`, and `invoice_id` None: a statement, a retainer top-up, a credit hold's
    signal), never both: a customer's action borrows none of the customer's invoices.
    `scheduled_for` is when it became (or becomes) due, aware UTC. Money actions carry the
    amount and currency; `reason` is the sentence an owner reads in the activity log.
    """

    key: str
    kind: ActionKind
    invoice_id: int | None
    org_id: int
    scheduled_for: datetime
    reason: str
    amount: Decimal | None = None
    currency: str | None = None
    step_index: int | None = None  # reminders: 0-based; the ladder first, then repeats
    step_count: int | None = None  # reminders: ladder steps (repeats count beyond it)
    template: str | None = None
    channel: str | None = None
    tone: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    contact_id: int | None = None

    def __post_init__(self) -> None:
        if (self.invoice_id is None) == (self.contact_id is None):
            raise ValueError(f"action {self.key} is filed under an invoice or a customer,"
                             " one of the two")

    @property
    def filed_under(self) -> tuple[Literal["invoice", "contact"], int]:
        if self.invoice_id is not None:
            return "invoice", self.invoice_id
        assert self.contact_id is not None  # __post_init__
        return "contact", self.contact_id


def contact_key(org_id: int, contact_id: int, *parts: object) -> str:
    """`action_key` of a customer's action: it names the customer, never one of its invoices."""
    return f"{org_id}:contact{contact_id}:" + ":".join(map(str, parts))


def action_key(org_id: int, invoice_id: int, *parts: object) -> str:
    """Stable forever: the ledger's uniqueness and the provider's idempotency key rest on it."""
    return f"{org_id}:{invoice_id}:" + ":".join(map(str, parts))


def reminder_key(org_id: int, invoice_id: int, step_index: int) -> str:
    return f"{org_id}:{invoice_id}:reminder:{step_index}"
