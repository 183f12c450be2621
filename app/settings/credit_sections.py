"""The settings page's credit-control editor: deposits and milestones, the terms given to
customers on hold or over their limit, the stricter variant for new customers, and the
organisation's default credit limit.

Each section is checked by its own schema model (rules/policy.py) field by field, so a problem
is shown next to the field it is about, in the reader's language; then the whole policy is
checked, and only then is anything written, through the same function the command line uses
(services.save_credit_sections).
"""

from __future__ import annotations

import itertools
import json
import typing
from collections.abc import Mapping
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.settings import bounds, services
from collect import outbound
from collect.customers import credit_settings, set_default_credit_limit
from rules import Policy, PolicyError
from rules.policy import DepositRule, NewCustomerPolicy, TermsOnHold
from store.db import db
from store.models import CreditSettings, Organisation, User

CENTS = Decimal("0.01")
MAX_POLICY_JSON_CHARS = 20_000
# The deposit fields the page lays out itself; any other field of the model (an option added
# later) is offered from the model, as every terms-on-hold field is.
DEPOSIT_FIELDS = ("threshold", "currency", "schedule", "reminder_offsets", "channel")
# Labels of the fields and choices the page knows; a field added to the model later is still
# offered (under its own name) until it gets a label here.
FIELD_LABELS = {
    "due_in_days": _l("Terms to give (days; 0: due on receipt)"),
    "when": _l("For customers"),
    "apply": _l("How the terms are given"),
    "applies_to": _l("Deposits asked on"),
}
CHOICE_LABELS = {
    "on_hold": _l("On credit hold"),
    "over_limit": _l("Over their credit limit"),
    "either": _l("On hold or over their limit"),
    "recommend": _l("Recommended to me"),
    "write_back": _l("Written back to the books"),
    "invoices": _l("Invoices"),
    "quotes": _l("Accepted quotes"),
    "both": _l("Invoices and accepted quotes"),
}


def _choices(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def model_fields(model: type[BaseModel], prefix: str,
                 skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A section's fields as the model has them today: a choice for a Literal, a check box for
    a bool, a number for an int (fields without a default are the page's own, never here)."""
    fields = []
    for name, info in model.model_fields.items():
        if name in skip or info.is_required():
            continue
        choices = _choices(info.annotation)
        kind = "select" if choices else ("check" if info.annotation is bool else "number")
        fields.append({
            "name": f"{prefix}.{name}", "key": name, "kind": kind,
            "label": str(FIELD_LABELS.get(name, name.replace("_", " "))),
            "choices": [(str(c), str(CHOICE_LABELS.get(str(c), c))) for c in choices]})
    return fields


def terms_fields() -> list[dict[str, Any]]:
    return model_fields(TermsOnHold, "terms_on_hold")


def deposit_fields() -> list[dict[str, Any]]:
    """The deposit options beyond the ones the page lays out itself."""
    return model_fields(DepositRule, "deposits", DEPOSIT_FIELDS)


def _shown(value: Any) -> str:
    return ("on" if value else "") if isinstance(value, bool) else str(value)


def _joined(numbers: tuple[Any, ...], sep: str) -> str:
    return sep.join(str(n) for n in numbers)


def form_values(policy: Policy, org: Organisation) -> dict[str, str]:
    """The editor's fields as the saved policy and settings have them."""
    values: dict[str, str] = {"deposits.currency": org.base_currency or "",
                              "deposits.channel": "dunwell_email",
                              "deposits.reminder_offsets": "-3, 0, 3"}
    settings = credit_settings(db.session(), org)
    limit = settings.default_credit_limit
    values["default_credit_limit"] = "" if limit is None else str(limit.quantize(CENTS))
    values.update({
        # One statement day: the policy's own where it names one (its statement-invoice fees
        # fall due on it), else the statements' (collect/book.py reads it the same way).
        "statement_day": str(policy.statement_day or settings.statement_day or ""),
        "statement_time": settings.statement_time or "09:00",
        "stop_service_on_hold": "on" if settings.stop_service_on_hold else "",
        "stop_service_webhook_url": settings.stop_service_webhook_url or ""})
    if (deposits := policy.deposits) is not None:
        values.update({
            "deposits.threshold": str(deposits.threshold), "deposits.currency": deposits.currency,
            "deposits.schedule": _joined(tuple(f"{m.percent.normalize():f}"
                                               for m in deposits.schedule), "/"),
            "deposits.due_days": _joined(tuple(m.due_offset_days for m in deposits.schedule),
                                         "/"),
            "deposits.reminder_offsets": _joined(deposits.reminder_offsets, ", "),
            "deposits.channel": deposits.channel})
    for field in deposit_fields():
        info = DepositRule.model_fields[field["key"]]
        values[field["name"]] = _shown(getattr(deposits, field["key"]) if deposits is not None
                                       else info.get_default(call_default_factory=True))
    terms = policy.terms_on_hold
    shown = terms if terms is not None else TermsOnHold()
    for name in TermsOnHold.model_fields:
        values[f"terms_on_hold.{name}"] = _shown(getattr(shown, name))
    values["terms_on_hold.on"] = "on" if terms is not None else ""
    if (variant := policy.new_customer_policy) is not None:
        values["new_customer_policy.paid_on_time"] = str(variant.paid_on_time)
        values["new_customer_policy.policy"] = json.dumps(variant.policy, indent=2,
                                                          sort_keys=True, default=str)
    else:
        values["new_customer_policy.paid_on_time"] = ""
        values["new_customer_policy.policy"] = ""
    return values


class SettingRefused(ValueError):
    """A credit setting that cannot be saved, with the field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def update_credit_settings(session: Session, org: Organisation, *,
                           statement_day: int | None = None, statement_time: str | None = None,
                           stop_service_on_hold: bool | None = None,
                           webhook_url: str | None = None) -> CreditSettings:
    """Statements and what a hold does, from the settings page or the command line alike. None
    leaves a setting as it is; statement_day 0 turns statements off and an empty webhook_url
    clears it. Everything is checked before anything changes (SettingRefused)."""
    settings = credit_settings(session, org)
    if statement_day is not None and not 0 <= statement_day <= 28:
        raise SettingRefused("statement_day", _("Choose a day from 1 to 28: every month has"
                                                " it."))
    local_time = None
    if statement_time is not None:
        try:
            local_time = time.fromisoformat(statement_time.strip()).strftime("%H:%M")
        except ValueError as exc:
            raise SettingRefused("statement_time", _("Give a time as HH:MM.")) from exc
    if webhook_url and (refused := outbound.refusal_to_save(webhook_url)):
        raise SettingRefused("stop_service_webhook_url", refused)
    if statement_day is not None:
        settings.statement_day = statement_day or None
    if local_time is not None:
        settings.statement_time = local_time
    if stop_service_on_hold is not None:
        settings.stop_service_on_hold = stop_service_on_hold
    if webhook_url is not None:
        settings.stop_service_webhook_url = webhook_url or None
    session.add(settings)
    return settings


class CreditForm:
    """One submission of the editor: the sections it describes and every problem, by field."""

    def __init__(self, form: Mapping[str, str], current: Policy) -> None:
        self.form = form
        self.current = current
        self.errors: dict[str, str] = {}
        self.limit: Decimal | None = None
        self.sections: dict[str, object] = {}
        self.settings: dict[str, Any] = {}
        self.policy: Policy | None = None

    def text(self, name: str) -> str:
        return (self.form.get(name) or "").strip()

    def _numbers(self, name: str, separators: str) -> list[str]:
        raw = self.text(name)
        for sep in separators[1:]:
            raw = raw.replace(sep, separators[0])
        return [p.strip() for p in raw.split(separators[0]) if p.strip()]

    def _integers(self, name: str, separators: str, message: str) -> list[int] | None:
        try:
            numbers = [int(p) for p in self._numbers(name, separators)]
        except ValueError:
            self.errors.setdefault(name, message)
            return None
        try:
            return [bounds.within(n) for n in numbers]
        except bounds.NumberRefused as exc:
            self.errors.setdefault(name, str(exc))
            return None

    def _read(self, fields: list[dict[str, Any]], body: dict[str, Any]) -> None:
        """The model-rendered fields into the section's body (an empty one: the default)."""
        for field in fields:
            name, raw = field["name"], self.text(field["name"])
            if field["kind"] == "check":
                body[field["key"]] = self.form.get(name) == "on"
            elif field["kind"] == "number":
                if raw:
                    try:
                        body[field["key"]] = bounds.whole_number(raw)
                    except bounds.NumberRefused as exc:
                        self.errors.setdefault(name, str(exc))
            elif raw:
                body[field["key"]] = raw

    def _model(self, model: type[BaseModel], prefix: str, body: dict[str, Any],
               where: Mapping[str, str]) -> dict[str, Any] | None:
        """The section if its model accepts it; otherwise each problem next to its field."""
        try:
            checked = model.model_validate(body)
        except ValidationError as exc:
            for item in exc.errors():
                loc = item["loc"]
                head = str(loc[0]) if loc else ""
                field = where.get(head, f"{prefix}.{head}" if head else where.get("", prefix))
                self.errors.setdefault(field, services.schema_problem(item))
            return None
        return checked.model_dump(mode="json")

    # -- the sections ---------------------------------------------------------------------

    def _deposits(self) -> dict[str, Any] | None:
        if not self.text("deposits.threshold"):
            return None  # no threshold: no deposits
        percents = self._numbers("deposits.schedule", "/,; ")
        if not percents:
            self.errors["deposits.schedule"] = _("Give the milestones' percents, such as"
                                                 " 30/30/40.")
            return None
        try:
            total = sum((Decimal(p) for p in percents), Decimal(0))
        except InvalidOperation:
            self.errors["deposits.schedule"] = _("Give percents separated by slashes, such as"
                                                 " 30/30/40.")
            return None
        if total != 100:
            self.errors["deposits.schedule"] = _(
                "The milestones must add up to 100 %%, not %(total)s %%.", total=total)
        days = self._integers("deposits.due_days", "/,; ",
                              _("Give whole numbers of days separated by slashes, such as"
                                " 0/30/60."))
        if days is not None and not days:
            days = [0] * len(percents)
        if days is not None and len(days) != len(percents):
            self.errors["deposits.due_days"] = _(
                "Give one number of days for each milestone (%(count)s).", count=len(percents))
            days = None
        elif days is not None and any(b < a for a, b in itertools.pairwise(days)):
            self.errors["deposits.due_days"] = _("The milestones must be in the order they"
                                                 " fall due.")
        offsets = self._integers("deposits.reminder_offsets", ",; ",
                                 _("Give whole numbers of days separated by commas."))
        if offsets is not None:
            if any(b <= a for a, b in itertools.pairwise(offsets)):
                self.errors["deposits.reminder_offsets"] = _(
                    "Each reminder must come after the one before it.")
            elif any(abs(o) > 60 for o in offsets):
                self.errors["deposits.reminder_offsets"] = _(
                    "Reminders must lie within 60 days of the milestone.")
        try:
            if bounds.too_large(Decimal(self.text("deposits.threshold"))):
                self.errors["deposits.threshold"] = bounds.amount_ceiling_message()
        except InvalidOperation:
            pass  # the model names what is wrong with it
        body: dict[str, Any] = {
            "threshold": self.text("deposits.threshold"),
            "currency": self.text("deposits.currency").upper(),
            "schedule": [{"percent": p, "due_offset_days": d}
                         for p, d in zip(percents, days or [0] * len(percents), strict=True)],
            "channel": self.text("deposits.channel") or "dunwell_email"}
        if offsets is not None:
            body["reminder_offsets"] = offsets
        self._read(deposit_fields(), body)
        if any(name.startswith("deposits.") for name in self.errors):
            return None
        return self._model(DepositRule, "deposits", body, {
            "schedule": "deposits.schedule", "": "deposits.schedule"})

    def _terms(self) -> dict[str, Any] | None:
        if self.form.get("terms_on_hold.on") != "on":
            return None
        body: dict[str, Any] = {}
        self._read(terms_fields(), body)
        if any(name.startswith("terms_on_hold.") for name in self.errors):
            return None
        return self._model(TermsOnHold, "terms_on_hold", body, {"": "terms_on_hold.on"})

    def _newcomer(self) -> dict[str, Any] | None:
        raw_count, raw_policy = (self.text("new_customer_policy.paid_on_time"),
                                 self.text("new_customer_policy.policy"))
        if not raw_count and not raw_policy:
            return None
        body: dict[str, Any] = {"paid_on_time": raw_count or None}
        try:
            body["paid_on_time"] = bounds.whole_number(raw_count, 0)
        except bounds.NumberRefused as exc:
            self.errors["new_customer_policy.paid_on_time"] = str(exc)
        if not raw_policy:
            self.errors["new_customer_policy.policy"] = _(
                "Give the sections the new-customer variant replaces, as a JSON object.")
            return None
        if len(raw_policy) > MAX_POLICY_JSON_CHARS:
            self.errors["new_customer_policy.policy"] = _(
                "Give at most %(count)s characters of JSON.", count=MAX_POLICY_JSON_CHARS)
            return None
        try:
            body["policy"] = json.loads(raw_policy, parse_float=Decimal)
        except RecursionError:  # `[[[[…]]]]` thousands deep: no policy is nested like that
            self.errors["new_customer_policy.policy"] = _("This JSON is nested too deeply.")
            return None
        except json.JSONDecodeError as exc:
            self.errors["new_customer_policy.policy"] = _(
                "This is not valid JSON (line %(line)s, column %(column)s).",
                line=exc.lineno, column=exc.colno)
            return None
        if not isinstance(body["policy"], dict):
            self.errors["new_customer_policy.policy"] = _(
                "Give a JSON object of policy sections.")
            return None
        if self.errors:
            return None
        return self._model(NewCustomerPolicy, "new_customer_policy", body,
                           {"": "new_customer_policy.policy"})

    def _default_limit(self) -> None:
        raw = self.text("default_credit_limit").replace(",", "")
        if not raw:
            return
        try:
            self.limit = Decimal(raw)
        except InvalidOperation:
            self.errors["default_credit_limit"] = _("Enter an amount, such as 5000 or"
                                                    " 5000.00.")
            return
        if self.limit.is_finite() and self.limit > bounds.MAX_AMOUNT:
            self.errors["default_credit_limit"] = bounds.amount_ceiling_message()
        elif not self.limit.is_finite() or self.limit < 0:
            self.errors["default_credit_limit"] = _("A credit limit is a positive amount, or"
                                                    " empty for none.")
        elif self.limit.as_tuple().exponent < -2:  # type: ignore[operator]
            self.errors["default_credit_limit"] = _("A credit limit has at most two decimal"
                                                    " places.")

    def _statements(self) -> None:
        raw_day = self.text("statement_day")
        day = 0
        if raw_day:
            try:
                day = bounds.whole_number(raw_day)
            except bounds.NumberRefused as exc:
                self.errors["statement_day"] = str(exc)
        self.settings = {"statement_day": day,
                         "statement_time": self.text("statement_time") or "09:00",
                         "stop_service_on_hold": self.form.get("stop_service_on_hold") == "on",
                         "webhook_url": self.text("stop_service_webhook_url")}

    def validate(self) -> bool:
        """True when every section and the whole policy they make are valid."""
        self.sections = {"deposits": self._deposits(), "terms_on_hold": self._terms(),
                         "new_customer_policy": self._newcomer()}
        self._default_limit()
        self._statements()
        if self.errors:
            return False
        if self.current.statement_day is not None and 0 <= self.settings["statement_day"] <= 28:
            # The policy names a statement day of its own: the one field shows it and saves it
            # there too (empty: the policy's falls back to the statements', as for a new one).
            # A day out of range is refused with the statements' settings (SettingRefused).
            self.sections["statement_day"] = self.settings["statement_day"] or None
        try:
            self.policy = services.with_credit_sections(self.current, self.sections)
        except PolicyError as exc:
            # Only the variant is checked against the rest of the policy: it is about that.
            self.errors["new_customer_policy.policy"] = _(
                "The new-customer variant is not a valid policy: %(problem)s",
                problem=str(exc).removeprefix("new_customer_policy: "))
            return False
        return True


def save(org: Organisation, user: User, form: CreditForm, now: datetime) -> int | None:
    """The default limit and the sections, in one transaction; the new policy version, or None
    when the policy itself did not change. CreditRefused or SettingRefused: nothing was
    saved."""
    set_default_credit_limit(db.session(), org, form.limit)
    update_credit_settings(db.session(), org, **form.settings)
    _policy, version = services.save_credit_sections(org, user, form.sections, now)
    return version
