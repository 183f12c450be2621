"""One contact's collection settings, as the owner edits them on the contact's settings page:
excluded, disputed, language, business or consumer, and the parts of the policy that differ for
this contact (no late fees; its own way of chasing payment-plan instalments).

They are checked as rules.ContactOverrides and, applied to the organisation's policy, as a whole
policy (rules.with_contact_overrides), so a contact cannot be given settings the daily run would
refuse; nothing is saved while any field is wrong. Policy sections set elsewhere (the command
line, the API) and not shown here are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.settings import bounds
from collect import contact_disputes, ledger
from collect.book import plan_record, policy_for
from collect.plan import refresh_next_action
from rules.invoice import PaymentPlan as AgreedPlan
from rules.policy import (
    LANGUAGES,
    Policy,
    PolicyError,
    contact_overrides_from_json,
    policy_to_json,
    with_contact_overrides,
)
from store.models import Contact, Invoice, Organisation, PaymentPlan, User

FEES = ("policy", "none")  # the organisation's late fees, or none for this contact
PLANS = ("policy", "own")  # the organisation's instalment reminders, or the contact's own


@dataclass
class ContactForm:
    """One submission of a contact's settings: the values to store and every problem by field."""

    contact: Contact
    form: Mapping[str, str]
    policy: Policy

    def __post_init__(self) -> None:
        self.errors: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.overrides: dict[str, Any] = {}

    def _text(self, name: str) -> str:
        return (self.form.get(name) or "").strip()

    def validate(self) -> bool:
        language, kind = self._text("language"), self._text("kind") or "business"
        if language and language not in LANGUAGES:
            self.errors["language"] = f"Language must be one of {', '.join(LANGUAGES)}."
        if kind not in ("business", "consumer"):
            self.errors["kind"] = "Choose business or consumer."
        fees, plans = self._text("late_fees") or "policy", self._text("plans") or "policy"
        if fees not in FEES:
            self.errors["late_fees"] = "Choose the policy's late fees or none."
        if plans not in PLANS:
            self.errors["plans"] = "Choose the policy's instalment reminders or the contact's own."
        # Sections this page does not show are kept; the two it shows are set from the form.
        overrides = {k: v for k, v in (self.contact.policy_overrides or {}).items()
                     if k not in ("late_fees", "payment_plans")}
        if fees == "none":
            overrides["late_fees"] = []
        if plans == "own":
            section = self._plan_section()
            if section is not None:
                overrides["payment_plans"] = section
        self.values = {"excluded": self.form.get("excluded") == "on",
                       "disputed": self.form.get("disputed") == "on",
                       "language": language or None, "is_business": kind == "business"}
        if self.errors:
            return False
        try:
            checked = contact_overrides_from_json({**self.values, "policy": overrides})
            with_contact_overrides(self.policy, checked)
        except PolicyError as exc:
            self.errors[self._field_of(str(exc))] = str(exc)[:1].upper() + str(exc)[1:] + "."
            return False
        self.overrides = overrides
        return True

    def _plan_section(self) -> dict[str, Any] | None:
        section = dict(policy_to_json(self.policy)["payment_plans"])
        try:
            offsets = bounds.day_offsets(self._text("plan_offsets"))
        except bounds.NumberRefused as exc:
            self.errors["plan_offsets"] = str(exc)
            return None
        if not offsets:
            self.errors["plan_offsets"] = "Give at least one day, e.g. -3, 0, 3."
            return None
        section["offsets"] = offsets
        grace = self._text("plan_grace_days")
        if grace:
            try:
                section["grace_days"] = bounds.whole_number(grace)
            except bounds.NumberRefused as exc:
                self.errors["plan_grace_days"] = str(exc)
                return None
        return section

    @staticmethod
    def _field_of(message: str) -> str:
        if "grace_days" in message:
            return "plan_grace_days"
        if "payment_plans" in message or "offsets" in message:
            return "plan_offsets"
        if "late_fees" in message:
            return "late_fees"
        return "contact"


def contact_of(session: Session, org: Organisation, contact_id: int) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.org_id == org.id,
                                                   Contact.id == contact_id))
    if contact is None:
        raise LookupError(contact_id)
    return contact


def save(session: Session, org: Organisation, checked: ContactForm, user: User,
         now: datetime) -> None:
    """Store what `checked` validated and move the contact's invoices' next actions; commits.
    Marking the customer disputed, or clearing it, is dated by `user` (collect/contact_disputes):
    none of its invoices' fees accrue on those days."""
    contact = checked.contact
    contact.excluded = checked.values["excluded"]
    contact_disputes.set_disputed(session, contact, checked.values["disputed"], user, now)
    contact.language = checked.values["language"]
    contact.is_business = checked.values["is_business"]
    contact.policy_overrides = checked.overrides or None
    ledger.audit(session, org.id, "contact_settings",
                 f"Collection settings changed for contact {contact.id}", at=now,
                 data={"contact_id": contact.id})
    ids = session.scalars(select(Invoice.id).where(Invoice.org_id == org.id,
                                                   Invoice.contact_id == contact.id)).all()
    refresh_next_action(session, org, now, list(ids))
    session.commit()


def form_values(contact: Contact, policy: Policy) -> dict[str, str]:
    """The form as stored, for the page's first showing."""
    overrides = contact.policy_overrides or {}
    plans = overrides.get("payment_plans") or policy_to_json(policy)["payment_plans"]
    return {
        "excluded": "on" if contact.excluded else "", "disputed": "on" if contact.disputed else "",
        "language": contact.language or "", "kind": "business" if contact.is_business
        else "consumer",
        "late_fees": "none" if overrides.get("late_fees") == [] else "policy",
        "plans": "own" if "payment_plans" in overrides else "policy",
        "plan_offsets": ", ".join(str(o) for o in plans.get("offsets", ())),
        "plan_grace_days": str(plans.get("grace_days", "")),
    }


def summary(contact: Contact | None) -> list[str]:
    """What is set for this contact, one short phrase each, in the reader's language."""
    if contact is None:
        return []
    said = []
    if contact.excluded:
        said.append(_l("excluded from collection"))
    if contact.disputed:
        said.append(_l("disputed"))
    if contact.language:
        said.append(_l("language %(code)s", code=contact.language))
    if not contact.is_business:
        said.append(_l("consumer"))
    overrides = contact.policy_overrides or {}
    if overrides.get("late_fees") == []:
        said.append(_l("no late fees"))
    if "payment_plans" in overrides:
        offsets = ", ".join(str(o) for o in overrides["payment_plans"].get("offsets", ()))
        said.append(_l("own instalment reminders at %(days)s days", days=offsets))
    other = sorted(set(overrides) - {"late_fees", "payment_plans"})
    if other:
        said.append(_l("own %(sections)s", sections=", ".join(other)))
    return [str(phrase) for phrase in said]


def active_plans(session: Session, org: Organisation, contact: Contact) -> list[
        tuple[Invoice, AgreedPlan]]:
    """The payment plans agreed with this contact (app/payment_plans), with their invoices;
    each plan's days and amounts as planning reads them (dates, not the stored text)."""
    return [(invoice, plan_record(plan)) for invoice, plan in session.execute(
        select(Invoice, PaymentPlan).join(PaymentPlan, PaymentPlan.invoice_id == Invoice.id)
        .where(Invoice.org_id == org.id, Invoice.contact_id == contact.id,
               PaymentPlan.status == "active").order_by(Invoice.due_date, Invoice.id))]


def open_invoices(session: Session, org: Organisation, contact: Contact) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(
        Invoice.org_id == org.id, Invoice.contact_id == contact.id, Invoice.status == "open")
        .order_by(Invoice.due_date, Invoice.id).limit(100)))


def current_policy(session: Session, org: Organisation) -> Policy:
    return policy_for(session, org)
