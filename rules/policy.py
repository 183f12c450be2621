"""The collection policy: a versioned schema, validated at the edge so planning can trust it.

Version 2 (current) holds the reminder ladder and its repeat, when sending is allowed, late fees
and interest (rules/fees.py), an early-payment discount, how payment-plan instalments are
chased, and escalation. Version 1 bodies (ladder and window only) are read as version 2 with
every later section empty. `policy_from_json` is the one place that reads stored bodies of any
version; `with_contact_overrides` applies what an owner set for one contact.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from rules.fees import RULE_ID, ExactDecimal, LateFeeRule
from rules.statutory import default_tables
from rules.validation import PolicyError, StrictBool, StrictInt, describe, no_rate_table

__all__ = [
    "AgencyCase",
    "CallTask",
    "Channel",
    "ContactOverrides",
    "DemandLetter",
    "DepositRule",
    "EarlyPaymentDiscount",
    "Escalation",
    "FirstContact",
    "LateFee",
    "Milestone",
    "NewCustomerPolicy",
    "PlanReminders",
    "Policy",
    "PolicyError",
    "ReminderStep",
    "Repeat",
    "StopService",
    "StrictBool",
    "StrictInt",
    "TermsOnHold",
    "Tone",
    "contact_overrides_from_json",
    "dated_new_rules",
    "default_policy",
    "first_contact_index",
    "is_new_customer",
    "looking_forward",
    "new_customer_variant",
    "policy_from_json",
    "policy_to_json",
    "with_contact_overrides",
]

TEMPLATE_NAME = re.compile(r"[a-z0-9_-]{1,64}")
MAX_OFFSET_DAYS = 365
CURRENT_VERSION = 2
LANGUAGES = ("en", "de", "nb", "pl", "he")

# provider_email: the provider sends its own invoice email; dunwell_email: our text over SMTP;
# note: only a note on the invoice; call_task: a phone-call task for a person; sms: a text
# through Twilio (collect/sms.py), by email instead where no text can go.
Channel = Literal["provider_email", "dunwell_email", "note", "call_task", "sms"]
Tone = Literal["friendly", "firm", "final"]
Days = Annotated[StrictInt, Field(ge=0, le=MAX_OFFSET_DAYS)]
PersonName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _template_name(value: str) -> str:
    # fullmatch: `$` would let a trailing newline through into a template lookup.
    if not TEMPLATE_NAME.fullmatch(value):
        raise ValueError(
            f"template name {value!r} must be 1 to 64 characters of a-z, 0-9, '_' or '-'")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReminderStep(_Section):
    """One rung of the ladder, placed relative to the due date so it survives due-date edits."""

    offset_days: StrictInt = Field(ge=-MAX_OFFSET_DAYS, le=MAX_OFFSET_DAYS)
    template: str = "reminder"
    channel: Channel = "provider_email"
    tone: Tone = "friendly"

    _name = field_validator("template")(classmethod(lambda cls, v: _template_name(v)))


class Repeat(_Section):
    """After the last step: again every `every_days`, or on a fixed day of each month (a
    statement day), until paid; at most `max_times` (None: until paid)."""

    every_days: StrictInt | None = Field(default=None, ge=1, le=MAX_OFFSET_DAYS)
    day_of_month: StrictInt | None = Field(default=None, ge=1, le=28)
    max_times: StrictInt | None = Field(default=None, ge=1, le=1000)
    template: str = "reminder"
    channel: Channel = "provider_email"
    tone: Tone = "firm"

    _name = field_validator("template")(classmethod(lambda cls, v: _template_name(v)))

    @model_validator(mode="after")
    def _one_rhythm(self) -> Repeat:
        if (self.every_days is None) == (self.day_of_month is None):
            raise ValueError("give either every_days or day_of_month")
        return self


class FirstContact(_Section):
    """What an invoice already late when Dunwell first chases it (at go-live, or first seen late
    in a sync) gets as its first message: one ladder step (1-based; None: the first step after
    the due date) in its own tone, never the step its lateness would reach. The ladder then
    continues from that contact at its own spacing."""

    step: StrictInt | None = Field(default=None, ge=1, le=20)
    tone: Tone = "friendly"


class LateFee(_Section):
    """A fee rule under a stable id: the id is part of every charge's key, so never reuse one.

    `effective_from` is the day the rule starts to count: lateness before it is not charged (a
    one-off fee of an invoice already late that day never is). It is stamped at go-live or on
    the day the rule is added; None (the owner chose to charge lateness from the due date, or a
    rule saved before the field existed) counts from the due date."""

    id: str
    rule: LateFeeRule
    effective_from: date | None = None

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Left out while None, so rules stored before the field read and write alike."""
        body: dict[str, Any] = handler(self)
        if body.get("effective_from") is None:
            body.pop("effective_from", None)
        return body

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not RULE_ID.fullmatch(value):
            raise ValueError(f"id {value!r} must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'")
        return value

    @model_validator(mode="after")
    def _known_law(self) -> LateFee:
        # A statutory rule for a country without a rate table would fail every day at run
        # time; refuse it when the owner saves it instead.
        jurisdiction = getattr(self.rule, "jurisdiction", None) or getattr(
            self.rule, "legal_cap", None)
        known = default_tables()
        if jurisdiction is not None and jurisdiction not in known:
            raise no_rate_table(jurisdiction, sorted(known))
        return self


class EarlyPaymentDiscount(_Section):
    """X % off if paid within N days of issue (2/10 net 30), strict to the day."""

    percent: Annotated[ExactDecimal, Field(gt=0, le=50, decimal_places=4)]
    within_days: Days
    realise_as: Literal["credit_note", "discount_line"] = "credit_note"
    account_code: str | None = Field(default=None, max_length=100)
    item: str | None = Field(default=None, max_length=100)
    tax_rate: str | None = Field(default=None, max_length=100)


class PlanReminders(_Section):
    """How instalments of a payment plan are chased, and when a plan counts as broken."""

    offsets: tuple[StrictInt, ...] = Field(default=(-3, 0, 3), max_length=10)
    grace_days: Days = 3
    channel: Channel = "provider_email"
    template: str = "instalment"
    tone: Tone = "friendly"

    _name = field_validator("template")(classmethod(lambda cls, v: _template_name(v)))

    @field_validator("offsets")
    @classmethod
    def _increasing(cls, offsets: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= a for a, b in itertools.pairwise(offsets)):
            raise ValueError("offsets must be strictly increasing")
        if any(abs(o) > 60 for o in offsets):
            raise ValueError("offsets must lie within 60 days of the instalment")
        return offsets


class CallTask(_Section):
    after_days: Days
    assignee: PersonName


class StopService(_Section):
    after_days: Days
    # Told with a signed POST (HMAC-SHA256 of the body with the organisation's secret).
    webhook_url: AnyHttpUrl | None = None


class DemandLetter(_Section):
    after_days: Days
    pay_within_days: StrictInt = Field(default=14, ge=7, le=60)


class AgencyCase(_Section):
    after_days: Days


class Escalation(_Section):
    call_task: CallTask | None = None
    stop_service: StopService | None = None
    demand_letter: DemandLetter | None = None
    agency_case: AgencyCase | None = None


class Milestone(_Section):
    """One expected payment of a deposit schedule: a share of the invoice, due some days after
    its issue date (0: on issue, the deposit)."""

    percent: Annotated[ExactDecimal, Field(gt=0, le=100, decimal_places=4)]
    due_offset_days: Days = 0


class DepositRule(_Section):
    """Invoices of at least `threshold` (in `currency`) are paid in milestones (30/30/40...):
    each is an expected payment with its own reminders, met once the payments on the invoice
    reach its cumulative share. With `applies_to` quotes or both, an accepted quote of at least
    the threshold owes its deposit milestone(s) before work starts (rules/deposits.py)."""

    threshold: Annotated[ExactDecimal, Field(gt=0, max_digits=18, decimal_places=4)]
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    schedule: tuple[Milestone, ...] = Field(min_length=1, max_length=10)
    reminder_offsets: tuple[StrictInt, ...] = Field(default=(-3, 0, 3), min_length=1,
                                                    max_length=10)
    channel: Channel = "dunwell_email"
    # What the rule asks deposits on: invoices (as before the option existed), accepted quotes
    # (Xero Quotes, QuickBooks Estimates: the deposit before work starts), or both.
    applies_to: Literal["invoices", "quotes", "both"] = "invoices"

    @field_validator("reminder_offsets")
    @classmethod
    def _offsets(cls, offsets: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= a for a, b in itertools.pairwise(offsets)):
            raise ValueError("reminder_offsets must be strictly increasing")
        if any(abs(o) > 60 for o in offsets):
            raise ValueError("reminder_offsets must lie within 60 days of the milestone")
        return offsets

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The default (invoices) is left out, so policies stored before the option read and
        write exactly as they did."""
        body: dict[str, Any] = handler(self)
        if body.get("applies_to") == "invoices":
            del body["applies_to"]
        return body

    @model_validator(mode="after")
    def _whole_invoice(self) -> DepositRule:
        total = sum((m.percent for m in self.schedule), Decimal(0))
        if total != 100:
            raise ValueError(f"the milestones' percents must add up to 100, not {total}")
        if any(b.due_offset_days < a.due_offset_days
               for a, b in itertools.pairwise(self.schedule)):
            raise ValueError("milestones must be in the order they fall due")
        return self


class TermsOnHold(_Section):
    """New invoices of a customer over the limit or on hold: the terms to give them instead
    (0: due on receipt). `recommend` (the default, and what policies saved before this option
    mean) shows the shorter due date to the owner; `write_back` shortens it in the books
    through the action ledger (never lengthening one, never touching a paid or voided one)."""

    due_in_days: StrictInt = Field(default=7, ge=0, le=60)
    when: Literal["on_hold", "over_limit", "either"] = "either"
    apply: Literal["recommend", "write_back"] = "recommend"


class NewCustomerPolicy(_Section):
    """The stricter variant a new customer starts on (top-level sections replaced, as a
    contact's own overrides do) until `paid_on_time` of their invoices are paid on time."""

    paid_on_time: StrictInt = Field(default=3, ge=1, le=100)
    policy: dict[str, Any] = Field(min_length=1)

    @field_validator("policy")
    @classmethod
    def _known_sections(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(Policy.model_fields)
                         | ({"version", "new_customer_policy"} & set(value)))
        if unknown:
            raise ValueError(f"the new-customer variant cannot set {', '.join(unknown)}")
        return value


class Policy(_Section):
    """Version 2: everything an owner decides about chasing money, in the org's local time."""

    version: Literal[2] = 2
    reminder_steps: tuple[ReminderStep, ...] = Field(min_length=1, max_length=20)
    repeat: Repeat | None = None
    send_time: time = time(9, 0)
    # 24 is allowed (with send_time 00:00) for "any hour", which the demo uses.
    send_window_hours: StrictInt = Field(default=8, ge=1, le=24)
    business_days_only: StrictBool = True
    min_amount_due: Decimal = Field(default=Decimal("0.01"), ge=0)
    # The day of the month statements go out; fees placed on a statement invoice are gathered
    # per contact and invoiced on it (the 1st when not set).
    statement_day: StrictInt | None = Field(default=None, ge=1, le=28)
    language: Literal["en", "de", "nb", "pl", "he"] = "en"  # for contacts without their own
    late_fees: tuple[LateFee, ...] = Field(default=(), max_length=10)
    early_payment_discount: EarlyPaymentDiscount | None = None
    payment_plans: PlanReminders = PlanReminders()
    escalation: Escalation = Escalation()
    # Credit control (rules/deposits.py, rules/credit.py): optional, off when None.
    deposits: DepositRule | None = None
    terms_on_hold: TermsOnHold | None = None
    new_customer_policy: NewCustomerPolicy | None = None
    first_contact: FirstContact = FirstContact()

    @model_validator(mode="after")
    def _first_contact_on_the_ladder(self) -> Policy:
        step = self.first_contact.step
        if step is not None and step > len(self.reminder_steps):
            raise ValueError(f"first_contact step {step} is not on the ladder of"
                             f" {len(self.reminder_steps)} step(s)")
        return self

    @field_validator("reminder_steps")
    @classmethod
    def _strictly_increasing(cls, steps: tuple[ReminderStep, ...]) -> tuple[ReminderStep, ...]:
        for n, (a, b) in enumerate(itertools.pairwise(steps), start=1):
            if b.offset_days <= a.offset_days:
                raise ValueError(
                    f"offset_days must be strictly increasing: step {n} has {b.offset_days}"
                    f" after {a.offset_days} in step {n - 1}")
        return steps

    @field_validator("late_fees")
    @classmethod
    def _unique_ids(cls, fees: tuple[LateFee, ...]) -> tuple[LateFee, ...]:
        seen: set[str] = set()
        for fee in fees:
            if fee.id in seen:
                raise ValueError(f"two late fees have the id {fee.id!r}")
            seen.add(fee.id)
        return fees

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

    @model_validator(mode="after")
    def _variant_is_a_policy(self) -> Policy:
        # Refused when saved, not on the day a new customer's invoice is planned.
        if self.new_customer_policy is not None:
            new_customer_variant(self)
        return self


class ContactOverrides(_Section):
    """What an owner set for one contact; `policy` replaces whole top-level policy sections."""

    excluded: StrictBool = False
    disputed: StrictBool = False
    is_business: StrictBool | None = None
    language: Literal["en", "de", "nb", "pl", "he"] | None = None
    policy: dict[str, Any] = Field(default_factory=dict)

    @field_validator("policy")
    @classmethod
    def _known_sections(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(Policy.model_fields) | ({"version"} & set(value)))
        if unknown:
            raise ValueError(f"cannot override {', '.join(unknown)}")
        return value


def new_customer_variant(policy: Policy) -> Policy:
    """The policy a new customer starts on: the organisation's with the variant's sections."""
    variant = policy.new_customer_policy
    if variant is None:
        return policy
    body = {**policy.model_dump(mode="json"), **variant.policy, "new_customer_policy": None}
    try:
        return Policy.model_validate(body)
    except ValidationError as exc:
        raise ValueError(f"new_customer_policy: {describe(exc)}") from exc


def is_new_customer(policy: Policy, paid_on_time: int) -> bool:
    """Still on the stricter variant: fewer than N invoices paid on time so far."""
    variant = policy.new_customer_policy
    return variant is not None and paid_on_time < variant.paid_on_time


def first_contact_index(policy: Policy) -> int:
    """The ladder step (0-based) a late invoice's first message is: the policy's choice, else
    the first step after the due date, else the last step."""
    if policy.first_contact.step is not None:
        return policy.first_contact.step - 1
    steps = policy.reminder_steps
    return next((i for i, step in enumerate(steps) if step.offset_days > 0), len(steps) - 1)


def looking_forward(policy: Policy, day: date, charge_earlier: frozenset[str] = frozenset()
                    ) -> Policy:
    """The policy with every fee rule not yet dated counting from `day` (go-live, or the day a
    rule is added), except the rules the owner chose to charge from the due date."""
    fees = tuple(fee if fee.effective_from is not None or fee.id in charge_earlier
                 else fee.model_copy(update={"effective_from": day})
                 for fee in policy.late_fees)
    if fees == policy.late_fees:
        return policy
    return policy.model_copy(update={"late_fees": fees})


def dated_new_rules(policy: Policy, before: Policy | None, day: date) -> Policy:
    """A policy being saved: fee rules it adds (ids the policy before did not have) count
    from `day` unless the owner dated them; rules it keeps keep their date."""
    known = frozenset(fee.id for fee in before.late_fees) if before is not None else frozenset()
    return looking_forward(policy, day, charge_earlier=known)


def default_policy() -> Policy:
    """A gentle ladder most owners accept unchanged: a nudge before, on, and twice after."""
    return Policy(reminder_steps=(
        ReminderStep(offset_days=-3, template="friendly_before"),
        ReminderStep(offset_days=0, template="due_today"),
        ReminderStep(offset_days=7, template="overdue_1", tone="firm"),
        ReminderStep(offset_days=21, template="overdue_2", tone="final"),
    ))


def _loads(data: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(data, str):
        try:
            # parse_float=Decimal: an amount such as 0.10 never passes through a float.
            data = json.loads(data, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy is not valid JSON: {exc.msg} at line {exc.lineno}"
                              f" column {exc.colno}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy must be a JSON object, not {type(data).__name__}")
    return data


def policy_from_json(data: dict[str, Any] | str) -> Policy:
    """Read a stored or submitted policy; every problem becomes one PolicyError naming fields."""
    data = _loads(data)
    try:
        first_version = data.get("version") == 1
    except InvalidOperation:  # a signalling NaN answers a comparison by raising
        first_version = False
    if first_version:
        # Version 1 had the ladder and the window only; every field kept its meaning.
        data = {**data, "version": CURRENT_VERSION}
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(describe(exc)) from exc


# Optional credit-control sections: left out of the JSON while off, so bodies stored before
# they existed and bodies without them read and write the same.
CREDIT_SECTIONS = ("deposits", "terms_on_hold", "new_customer_policy")


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """JSON-ready dict (Decimal as a string, time as HH:MM:SS) that policy_from_json reads back."""
    body = policy.model_dump(mode="json")
    for section in CREDIT_SECTIONS:
        if body.get(section, ()) is None:
            del body[section]
    if body.get("first_contact") == FirstContact().model_dump(mode="json"):
        del body["first_contact"]  # the default: stored bodies stay as they were
    terms = body.get("terms_on_hold")
    if isinstance(terms, dict) and terms.get("apply") == "recommend":
        del terms["apply"]  # the default: a policy stored before the option is stored alike
    return body


def contact_overrides_from_json(data: dict[str, Any] | None) -> ContactOverrides:
    try:
        return ContactOverrides.model_validate(data or {})
    except ValidationError as exc:
        raise PolicyError(describe(exc, "overrides")) from exc


def with_contact_overrides(policy: Policy, overrides: ContactOverrides) -> Policy:
    """The policy in force for one contact: the organisation's, with the sections replaced."""
    if not overrides.policy:
        return policy
    return policy_from_json({**policy_to_json(policy), **overrides.policy})
