"""An organisation's SMS settings, read from the form and checked before anything is saved:
its own Twilio account (the auth token encrypted as the OAuth tokens are, never shown again)
or the server's, a sender and a cost per segment for the preview."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from collect.providers import token_vault
from store.models import Organisation, SmsSettings

ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
CURRENCY = re.compile(r"[A-Z]{3}")


class SettingsRefused(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SmsChoice:
    enabled: bool
    account_sid: str | None
    auth_token: str | None  # None: keep the saved one
    sender: str | None
    cost_per_segment: Decimal | None
    cost_currency: str | None


def settings_of(session: Session, org: Organisation) -> SmsSettings | None:
    return session.scalar(select(SmsSettings).where(SmsSettings.org_id == org.id))


def read_choice(form: MultiDict[str, str], current: SmsSettings | None) -> SmsChoice:
    account_sid = (form.get("account_sid") or "").strip() or None
    if account_sid is not None and not ACCOUNT_SID.fullmatch(account_sid):
        raise SettingsRefused("account_sid", _("An Account SID is AC followed by 32 letters "
                                               "and digits, as Twilio's console shows it."))
    auth_token = (form.get("auth_token") or "").strip() or None
    if auth_token is not None and not re.fullmatch(r"[0-9A-Za-z]{16,64}", auth_token):
        raise SettingsRefused("auth_token", _("Paste the auth token as Twilio's console shows"
                                              " it."))
    if account_sid and auth_token is None and not (current and current.auth_token_enc
                                                   and current.account_sid == account_sid):
        raise SettingsRefused("auth_token", _("Give the auth token of this account."))
    sender = (form.get("sender") or "").strip() or None
    if sender is not None and not (E164.fullmatch(sender) or ALPHANUMERIC.fullmatch(sender)):
        raise SettingsRefused("sender", _("A number in international form, such as "
                                          "+447700900123, or a name of up to 11 letters and "
                                          "digits."))
    cost_text = (form.get("cost_per_segment") or "").strip()
    try:
        cost = Decimal(cost_text) if cost_text else None
    except InvalidOperation:
        cost = Decimal(-1)
    if cost is not None and (not cost.is_finite() or not Decimal(0) <= cost <= Decimal(10)):
        raise SettingsRefused("cost_per_segment", _("A price between 0 and 10, such as 0.04."))
    currency = (form.get("cost_currency") or "").strip().upper() or None
    if currency is not None and not CURRENCY.fullmatch(currency):
        raise SettingsRefused("cost_currency", _("A three-letter currency code, such as EUR."))
    return SmsChoice(enabled=form.get("enabled") == "on", account_sid=account_sid,
                     auth_token=auth_token, sender=sender, cost_per_segment=cost,
                     cost_currency=currency)


def save(session: Session, org: Organisation, choice: SmsChoice) -> SmsSettings:
    row = settings_of(session, org)
    if row is None:
        row = SmsSettings(org_id=org.id)
        session.add(row)
    row.enabled, row.sender = choice.enabled, choice.sender
    row.cost_per_segment, row.cost_currency = choice.cost_per_segment, choice.cost_currency
    if choice.account_sid is None:
        row.account_sid, row.auth_token_enc = None, None  # the server's account
    else:
        row.account_sid = choice.account_sid
        if choice.auth_token is not None:
            row.auth_token_enc = token_vault().encrypt(choice.auth_token)
    return row
