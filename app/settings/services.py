"""The policy editor: form fields to a policy body and back, saved only when the whole policy
validates, and a pure preview of what the policy will do to one invoice.

Field names are the policy's own paths (`reminder_steps.0.offset_days`), so every problem the
schema finds is shown next to the field it is about.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.settings import bounds
from collect import ledger, outbound, review
from collect.book import calendar_for, policy_for
from collect.plan import foresee, refresh_next_action
from rules import PlannedAction, Policy, PolicyError, policy_from_json, policy_to_json
from rules.fees import (
    DailyInterestRule,
    FlatFeeRule,
    PercentageFeeRule,
    RecurringPercentageFeeRule,
    ReminderFeeRule,
    StatutoryCompensationRule,
    StatutoryInterestRule,
)
from rules.messages import SAMPLE, MessageTemplateError, render, shipped_template
from rules.policy import CREDIT_SECTIONS, LANGUAGES, dated_new_rules
from rules.validation import NO_RATE_TABLE
from store.db import db
from store.models import AuditEvent, Contact, Invoice, Organisation, User
from store.models import Policy as PolicyRow

log = logging.getLogger(__name__)

FEE_KINDS = {cls.model_fields["kind"].default: cls for cls in (
    FlatFeeRule, PercentageFeeRule, RecurringPercentageFeeRule, DailyInterestRule,
    StatutoryInterestRule, StatutoryCompensationRule, ReminderFeeRule)}
# The fee fields the page offers; a rule's other settings (minimum, account code...) are kept.
FEE_FIELDS = ("amount", "percent", "annual_rate_percent", "jurisdiction", "grace_days",
              "period_days", "max_charges", "placement")
INT_FEE_FIELDS = frozenset({"grace_days", "period_days", "max_charges"})
# A new fee row counts once one of these is filled in (its kind and placement always are).
FEE_VALUE_FIELDS = ("amount", "percent", "annual_rate_percent", "jurisdiction", "grace_days",
                    "period_days", "max_charges")


def fee_kind_fields() -> dict[str, list[str]]:
    """The page's fee fields each kind of rule takes: the page shows only those."""
    return {kind: [name for name in FEE_FIELDS if name in cls.model_fields]
            for kind, cls in FEE_KINDS.items()}


def new_rule_id(kind: str) -> str:
    """A fee rule's id, made once when the rule is added: part of every charge's key, so it
    must never be reused (a random suffix: an id removed long ago is not made again)."""
    return f"{kind.replace('_', '-')}-{secrets.token_hex(4)}"
CHANNELS = ("provider_email", "dunwell_email", "note", "call_task", "sms")
TONES = ("friendly", "firm", "final")
EMPTY_STEP_ROWS = 2
EMPTY_FEE_ROWS = 1
PREVIEW_DAYS = 90
STEP_NAMED = re.compile(r"step (\d+) has")
COUNTRY_PATTERN = "^[A-Z]{2}$"  # rules/fees.py's Jurisdiction
# The policy's sections this page edits; an empty field removes the optional ones. The statement
# day is set once, with the statements, in the credit-control form.
PAGE_SECTIONS = frozenset({
    "version", "reminder_steps", "repeat", "send_time", "send_window_hours",
    "business_days_only", "min_amount_due", "language", "late_fees",
    "early_payment_discount", "payment_plans", "escalation"})


def schema_problem(item: Mapping[str, Any]) -> str:
    """One schema problem (an item of pydantic's `errors()`) in the reader's language: the
    schema's own English words only for rules the page does not know by name (the policy's
    own checks, such as a ladder out of order)."""
    kind, ctx = item["type"], item.get("ctx") or {}
    limit = ctx.get("gt", ctx.get("ge", ctx.get("lt", ctx.get("le"))))
    known = {
        "greater_than": lambda: _("Must be more than %(limit)s.", limit=limit),
        "greater_than_equal": lambda: _("Must be at least %(limit)s.", limit=limit),
        "less_than": lambda: _("Must be less than %(limit)s.", limit=limit),
        "less_than_equal": lambda: _("Must be at most %(limit)s.", limit=limit),
        "int_type": lambda: _("Enter a whole number."),
        "int_parsing": lambda: _("Enter a whole number."),
        "int_from_float": lambda: _("Enter a whole number."),
        "decimal_parsing": lambda: _("Enter an amount, such as 5000 or 5000.00."),
        "decimal_type": lambda: _("Enter an amount, such as 5000 or 5000.00."),
        "decimal_max_places": lambda: _("At most %(places)s decimal places.",
                                        places=ctx.get("decimal_places")),
        "decimal_max_digits": lambda: _("That amount has too many digits."),
        "literal_error": lambda: _("Choose one of the offered options."),
        "string_pattern_mismatch": lambda: (
            _("Two letters, e.g. GB or DE.") if ctx.get("pattern") == COUNTRY_PATTERN
            else _("Give a three-letter currency code, such as GBP.")),
        # rules/validation.py: a statutory rule for a country Dunwell holds no rates for.
        NO_RATE_TABLE: lambda: _("Dunwell has no statutory rates for %(jurisdiction)s. It has"
                                 " them for %(known)s.", jurisdiction=ctx.get("jurisdiction"),
                                 known=ctx.get("known")),
        "too_short": lambda: _("Give at least %(count)s.", count=ctx.get("min_length")),
        "too_long": lambda: _("Give at most %(count)s.", count=ctx.get("max_length")),
        "missing": lambda: _("This field is required."),
        "dict_type": lambda: _("Give a JSON object of policy sections."),
        "bool_type": lambda: _("Choose one of the offered options."),
        "bool_parsing": lambda: _("Choose one of the offered options."),
    }
    if kind in known:
        return str(known[kind]())
    return str(item["msg"]).removeprefix("Value error, ")


class PolicyForm:
    """One submission: the policy body it describes and every problem, by field name."""

    def __init__(self, form: MultiDict[str, str], current: Policy) -> None:
        self.form = form
        self.current = current
        self.errors: dict[str, str] = {}
        self.body = self._body()

    # -- reading fields ------------------------------------------------------------------

    def text(self, name: str) -> str:
        return (self.form.get(name) or "").strip()

    def integer(self, name: str) -> int | str | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            return bounds.whole_number(raw)
        except bounds.NumberRefused as exc:
            self.errors.setdefault(name, str(exc))
            return raw

    def rows(self, prefix: str, key_field: str) -> list[int]:
        """Indexes of the repeated rows (steps, fees) that were filled in, in page order."""
        indexes = sorted({int(k.split(".")[1]) for k in self.form
                          if k.startswith(prefix + ".") and k.split(".")[1].isdigit()})
        return [i for i in indexes if self.text(f"{prefix}.{i}.{key_field}")]

    # -- building the body ---------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        self.step_rows = self.rows("reminder_steps", "offset_days")
        self.fee_rows = self._fee_rows()
        body: dict[str, Any] = {
            "version": 2,
            "reminder_steps": [{
                "offset_days": self.integer(f"reminder_steps.{i}.offset_days"),
                "template": self.text(f"reminder_steps.{i}.template") or "reminder",
                "channel": self.text(f"reminder_steps.{i}.channel") or "provider_email",
                "tone": self.text(f"reminder_steps.{i}.tone") or "friendly",
            } for i in self.step_rows],
            "send_time": self.text("send_time") or "09:00",
            "send_window_hours": self.integer("send_window_hours"),
            "business_days_only": self.form.get("business_days_only") == "on",
            "min_amount_due": self.text("min_amount_due") or "0",
            "language": self.text("language") or "en",
            "late_fees": [self._fee(i) for i in self.fee_rows],
            "payment_plans": self._plans(),
            "escalation": self._escalation(),
        }
        if body["send_window_hours"] is None:
            body["send_window_hours"] = 8
        # Sections this page does not show (set elsewhere) are kept as they are.
        for section, value in policy_to_json(self.current).items():
            if section not in PAGE_SECTIONS:
                body.setdefault(section, value)
        every, day = self.integer("repeat.every_days"), self.integer("repeat.day_of_month")
        if every is not None or day is not None:
            body["repeat"] = {k: v for k, v in {
                "every_days": every, "day_of_month": day,
                "max_times": self.integer("repeat.max_times"),
                "tone": self.text("repeat.tone") or "firm",
                "channel": self.text("repeat.channel") or "provider_email",
                "template": (self.current.repeat.template if self.current.repeat
                             else "reminder")}.items() if v is not None}
        if self.text("early_payment_discount.percent"):
            body["early_payment_discount"] = {
                "percent": self.text("early_payment_discount.percent"),
                "within_days": self.integer("early_payment_discount.within_days"),
                "realise_as": self.text("early_payment_discount.realise_as") or "credit_note"}
        return body

    def _fee_rows(self) -> list[int]:
        """Fee rows kept: a rule already saved (its id) unless Remove is ticked, and a new row
        once a field of it is filled in."""
        indexes = sorted({int(k.split(".")[1]) for k in self.form
                          if k.startswith("late_fees.") and k.split(".")[1].isdigit()})
        return [i for i in indexes if self.form.get(f"late_fees.{i}.remove") != "on" and (
            self.text(f"late_fees.{i}.id")
            or any(self.text(f"late_fees.{i}.{name}") for name in FEE_VALUE_FIELDS))]

    def _fee(self, row: int) -> dict[str, Any]:
        kind = self.text(f"late_fees.{row}.kind") or "flat"
        fee_id = self.text(f"late_fees.{row}.id") or new_rule_id(kind)
        known = FEE_KINDS.get(kind)
        previous = next((f for f in self.current.late_fees if f.id == fee_id), None)
        rule: dict[str, Any] = {}
        if previous is not None and previous.rule.kind == kind:
            rule = previous.rule.model_dump(mode="json", exclude_defaults=True)
        rule["kind"] = kind
        for name in FEE_FIELDS:
            field = f"late_fees.{row}.{name}"
            if known is not None and name not in known.model_fields:
                continue
            value: Any = self.integer(field) if name in INT_FEE_FIELDS else self.text(field)
            if value in (None, ""):
                rule.pop(name, None)
            else:
                rule[name] = value.upper() if name == "jurisdiction" else value
        return {"id": fee_id, "rule": rule}

    def _plans(self) -> dict[str, Any]:
        offsets: list[int] = []
        try:
            offsets = bounds.day_offsets(self.text("payment_plans.offsets"))
        except bounds.NumberRefused as exc:
            self.errors.setdefault("payment_plans.offsets", str(exc))
        plans: dict[str, Any] = {"offsets": offsets}
        grace = self.integer("payment_plans.grace_days")
        if grace is not None:
            plans["grace_days"] = grace
        return plans

    def _escalation(self) -> dict[str, Any]:
        escalation: dict[str, Any] = {}
        call = self.integer("escalation.call_task.after_days")
        if call is not None:
            escalation["call_task"] = {
                "after_days": call,
                "assignee": self.text("escalation.call_task.assignee") or "Accounts"}
        stop = self.integer("escalation.stop_service.after_days")
        if stop is not None:
            escalation["stop_service"] = {"after_days": stop}
            if url := self.text("escalation.stop_service.webhook_url"):
                escalation["stop_service"]["webhook_url"] = url
                if refused := outbound.refusal_to_save(url):
                    self.errors.setdefault("escalation.stop_service.webhook_url", refused)
        letter = self.integer("escalation.demand_letter.after_days")
        if letter is not None:
            escalation["demand_letter"] = {"after_days": letter}
            pay_within = self.integer("escalation.demand_letter.pay_within_days")
            if pay_within is not None:
                escalation["demand_letter"]["pay_within_days"] = pay_within
        agency = self.integer("escalation.agency_case.after_days")
        if agency is not None:
            escalation["agency_case"] = {"after_days": agency}
        return escalation

    # -- validating ----------------------------------------------------------------------

    def field_name(self, loc: tuple[Any, ...]) -> str:
        """The form field a schema error is about (rows are renumbered when blanks drop)."""
        parts = list(loc)
        if len(parts) >= 2 and parts[0] == "reminder_steps" and isinstance(parts[1], int):
            parts[1] = self.step_rows[parts[1]] if parts[1] < len(self.step_rows) else parts[1]
        if len(parts) >= 2 and parts[0] == "late_fees" and isinstance(parts[1], int):
            parts[1] = self.fee_rows[parts[1]] if parts[1] < len(self.fee_rows) else parts[1]
            # ("late_fees", n, "rule", "<kind>", "amount") -> late_fees.n.amount
            if len(parts) >= 4 and parts[2] == "rule":
                parts = [*parts[:2], *parts[4:]] if parts[3] in FEE_KINDS else \
                    [*parts[:2], *parts[3:]]
                if len(parts) == 2:
                    parts.append("kind")
            elif len(parts) == 2:
                parts.append("id")
        if len(parts) == 2 and parts[0] == "reminder_steps":
            parts.append("offset_days")
        return ".".join(str(p) for p in parts)

    def validate(self) -> Policy | None:
        if not self.body["reminder_steps"]:
            self.errors.setdefault("reminder_steps.0.offset_days",
                                   _("The ladder needs at least one step."))
        try:
            policy = Policy.model_validate(self.body)
        except ValidationError as exc:
            for item in exc.errors():
                if item["type"] == "too_short" and item["loc"] == ("reminder_steps",):
                    continue
                name = self.field_name(item["loc"]) or "policy"
                message = schema_problem(item)
                # The ladder's order is checked on the whole list; the message names the step.
                out_of_order = STEP_NAMED.search(message)
                if name == "reminder_steps" and out_of_order:
                    name = self.field_name(("reminder_steps", int(out_of_order.group(1)),
                                            "offset_days"))
                self.errors.setdefault(name, message[:1].upper() + message[1:]
                                       + ("" if message.endswith(".") else "."))
            return None
        return None if self.errors else policy


def save_policy(org: Organisation, by: User | str, policy: Policy, now: datetime) -> int:
    """Store the policy as the organisation's next version, say so in the activity log, and
    move every invoice's next action to what the new policy says. Returns the version.

    The one way a policy is saved, from this page and from the command line (`by` is then a
    description such as "the command line")."""
    session = db.session()
    policy_for(session, org)  # the row exists from here on
    row = session.scalars(select(PolicyRow).where(PolicyRow.org_id == org.id)).one()
    previous = row.body
    if not review.in_review(org):  # in review, going live dates every fee rule
        policy = dated_new_rules(policy, policy_from_json(previous), calendar_for(org).today(now))
    row.body = policy_to_json(policy)
    row.version = (row.version or 1) + 1
    who = by if isinstance(by, str) else by.email
    ledger.audit(session, org.id, "policy_saved",
                 f"Collection policy version {row.version} saved by {who}", at=now,
                 data={"version": row.version, "previous": previous, "by": who})
    refresh_next_action(session, org, now)
    session.commit()
    return row.version


def with_credit_sections(current: Policy, sections: Mapping[str, object]) -> Policy:
    """The policy with its credit-control sections replaced (None turns one off), validated
    whole: a PolicyError names every problem, and nothing is changed. The policy's own
    statement day is set with them: the credit-control form holds the one statement day."""
    unknown = sorted(set(sections) - {*CREDIT_SECTIONS, "statement_day"})
    if unknown:
        raise PolicyError(f"not a credit-control section: {', '.join(unknown)}")
    return policy_from_json({**policy_to_json(current), **sections})


def save_credit_sections(org: Organisation, by: User | str, sections: Mapping[str, object],
                         now: datetime) -> tuple[Policy, int | None]:
    """Deposits, terms on hold and the new-customer variant, from the settings page or the
    command line alike: saved as the policy's next version (save_policy) when they change it.
    Returns the policy in force and the new version (None: nothing changed, nothing saved)."""
    current = policy_for(db.session(), org)
    policy = with_credit_sections(current, sections)
    if policy == current:
        db.session.commit()
        return policy, None
    log.info("org %s: credit-control policy sections %s saved", org.id,
             ", ".join(sorted(sections)))
    return policy, save_policy(org, by, policy, now)


def policy_version(org: Organisation) -> int:
    policy_for(db.session(), org)
    return db.session.scalar(select(PolicyRow.version).where(PolicyRow.org_id == org.id)) or 1


# -- per-contact overrides ----------------------------------------------------------------


def contacts_of(org: Organisation, limit: int = 200) -> list[Contact]:
    return list(db.session.scalars(select(Contact).where(
        Contact.org_id == org.id, Contact.is_customer.is_(True), Contact.archived.is_(False))
        .order_by(Contact.name).limit(limit)))


class ContactSettingsError(ValueError):
    """A contact setting that is not one of the offered choices."""


def save_contact_settings(org: Organisation, contact_id: int, form: Mapping[str, str],
                          now: datetime) -> Contact:
    contact = db.session.scalar(select(Contact).where(Contact.org_id == org.id,
                                                      Contact.id == contact_id))
    if contact is None:
        raise LookupError(contact_id)
    language = (form.get("language") or "").strip()
    kind = (form.get("kind") or "business").strip()
    if language and language not in LANGUAGES:
        raise ContactSettingsError(f"Language must be one of {', '.join(LANGUAGES)}.")
    if kind not in ("business", "consumer"):
        raise ContactSettingsError("Choose business or consumer.")
    contact.excluded = form.get("excluded") == "on"
    contact.language = language or None
    contact.is_business = kind == "business"
    ledger.audit(db.session(), org.id, "contact_settings",
                 f"Collection settings changed for contact {contact.id}", at=now,
                 data={"contact_id": contact.id})
    ids = db.session.scalars(select(Invoice.id).where(Invoice.org_id == org.id,
                                                      Invoice.contact_id == contact.id)).all()
    refresh_next_action(db.session(), org, now, ids)
    db.session.commit()
    return contact


# -- templates ----------------------------------------------------------------------------


def template_preview(source: str, language: str, business_name: str,
                     currency: str) -> dict[str, str]:
    """A template rendered for a sample invoice in one language and the book's currency, or
    what is wrong with it."""
    if language not in LANGUAGES:
        return {"error": f"Language must be one of {', '.join(LANGUAGES)}."}
    try:
        message = render(source, replace(SAMPLE, locale=language, business_name=business_name,
                                         currency=currency))
    except MessageTemplateError as exc:
        return {"error": str(exc)}
    return {"subject": message.subject, "text": message.text, "direction": message.direction}


def shipped_texts() -> dict[str, dict[str, str]]:
    return {language: {tone: shipped_template(language, tone) for tone in TONES}
            for language in LANGUAGES}


# -- "what will happen" -------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    reason: str
    amount: Decimal | None
    currency: str | None
    channel: str | None
    action: PlannedAction  # as the engine planned it (its key and tone: what it will send)


def what_will_happen(org: Organisation, invoice_id: int, now: datetime,
                     days: int = PREVIEW_DAYS) -> tuple[Invoice, list[TimelineEntry]]:
    """Every action the policy would take on this invoice over the next `days`, if nobody pays:
    the engine asked at each day's send time, with what it planned before counted as done.
    Pure: nothing is written."""
    session = db.session()
    invoice = session.scalar(select(Invoice).where(Invoice.org_id == org.id,
                                                   Invoice.id == invoice_id))
    if invoice is None:
        raise LookupError(invoice_id)
    if invoice.due_date is None:
        return invoice, []
    return invoice, [TimelineEntry(at=f.at, kind=f.action.kind, reason=f.action.reason,
                                   amount=f.action.amount, currency=f.action.currency,
                                   channel=f.action.channel, action=f.action)
                     for f in foresee(session, org, [invoice], now, days,
                                      adjust=review.previewed(org, now))]


def open_invoices(org: Organisation, limit: int = 300) -> list[Invoice]:
    return list(db.session.scalars(select(Invoice).where(
        Invoice.org_id == org.id, Invoice.status == "open")
        .order_by(Invoice.due_date, Invoice.id).limit(limit)))


def recent_policy_events(org: Organisation) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.org_id == org.id, AuditEvent.kind == "policy_saved")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(5)))
