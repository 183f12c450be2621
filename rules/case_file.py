"""The case file a collections agency (or a lawyer) needs to take over one unpaid invoice.

One ZIP with everything that shows the debt and what was done about it: the invoice, payments,
fees and interest with their periods and reasons, every message sent, every action taken, the
policy in force and the demand letter. An agency opens it in a spreadsheet and a text editor, so
it is CSV (UTF-8 with a byte-order mark, which spreadsheet programs need to read ø or א), JSON
and plain text. It is evidence, so it is the same bytes for the same facts: entries sorted by
name, every timestamp the case date. Names inside the ZIP are built from our own counters and
dates plus a slug of anything user-controlled, so no entry can climb out of the archive's root.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.statutory import format_money

README = "README.txt"
INVOICE = "invoice.json"
PAYMENTS = "payments.csv"
FEES = "fees.csv"
MESSAGES = "messages.csv"
MESSAGE_DIR = "messages"
TIMELINE = "timeline.csv"
POLICY = "policy.json"
DEMAND_LETTER = "demand-letter.pdf"
ZIP_EPOCH = date(1980, 1, 1)  # the earliest date a ZIP entry can carry
_CURRENCY = re.compile(r"[A-Z]{3}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
# A cell starting with one of these runs as a formula in a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNIX = 3
# Letters of our languages that NFKD does not take apart into a base letter and an accent.
_NO_DECOMPOSITION = str.maketrans({"æ": "ae", "ø": "o", "ß": "ss", "ł": "l", "đ": "d",
                                   "œ": "oe", "þ": "th"})


class CaseFileError(ValueError):
    """Facts a case file cannot be built from; the message says which and why."""


@dataclass(frozen=True)
class CaseParty:
    """The creditor (the business) or the debtor (its customer)."""

    name: str
    address: tuple[str, ...] = ()
    email: str = ""
    phone: str = ""
    registration: str = ""  # company number, VAT id, org.nr, NIP: whatever identifies it


@dataclass(frozen=True)
class CaseInvoice:
    number: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    reference: str = ""  # the provider's id or the customer's purchase order


@dataclass(frozen=True)
class CasePayment:
    paid_on: date
    amount: Decimal
    method: str = ""
    reference: str = ""


@dataclass(frozen=True)
class CaseFee:
    """One fee, interest or compensation charge, with the period it covers and why."""

    charged_on: date
    kind: str  # "fee" | "interest" | "compensation"
    period_start: date
    period_end: date
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class CaseMessage:
    """A reminder, letter or note as it was sent."""

    sent_at: datetime
    kind: str
    channel: str
    recipient: str
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class CaseAction:
    """One action the collection run took, and how it ended."""

    at: datetime
    kind: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class CaseFacts:
    """Everything the case file holds. Amounts are in the invoice's currency; `policy` is the
    policy in force as JSON-ready data (`rules.policy.policy_to_json`); datetimes are aware and
    shown in `time_zone`, the organisation's."""

    case_date: date
    time_zone: str
    creditor: CaseParty
    debtor: CaseParty
    invoice: CaseInvoice
    policy: Mapping[str, Any]
    payments: tuple[CasePayment, ...] = ()
    fees: tuple[CaseFee, ...] = ()
    messages: tuple[CaseMessage, ...] = ()
    timeline: tuple[CaseAction, ...] = ()
    demand_letter_pdf: bytes | None = None

    def __post_init__(self) -> None:
        if not _is_day(self.case_date) or self.case_date < ZIP_EPOCH:
            raise CaseFileError(f"the case date must be a date from {ZIP_EPOCH} on")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CaseFileError(f"unknown time zone {self.time_zone!r}") from exc
        invoice = self.invoice
        if not _CURRENCY.fullmatch(invoice.currency):
            raise CaseFileError(f"currency must be an ISO 4217 code, not {invoice.currency!r}")
        days = [("invoice issue date", invoice.issue_date), ("invoice due date",
                                                              invoice.due_date)]
        days += [("payment date", payment.paid_on) for payment in self.payments]
        for fee in self.fees:
            days += [("fee date", fee.charged_on), ("fee period start", fee.period_start),
                     ("fee period end", fee.period_end)]
        for what, day in days:
            if not _is_day(day):
                raise CaseFileError(f"the {what} must be a date, not {day!r}")
        amounts = [("invoice total", invoice.total), ("amount paid", invoice.amount_paid),
                   ("amount due", invoice.amount_due)]
        amounts += [("payment", payment.amount) for payment in self.payments]
        amounts += [("fee", fee.amount) for fee in self.fees]
        for what, amount in amounts:
            if not isinstance(amount, Decimal) or not amount.is_finite():
                raise CaseFileError(f"the {what} must be a finite Decimal, not {amount!r}")
        moments = [("message", message.sent_at) for message in self.messages]
        moments += [("action", action.at) for action in self.timeline]
        for what, moment in moments:
            if not isinstance(moment, datetime) or moment.utcoffset() is None:
                raise CaseFileError(f"every {what} time must be an aware datetime, not "
                                    f"{moment!r}")


def _is_day(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def agency_case_file(case: CaseFacts) -> bytes:
    """The ZIP, as bytes, that hands this invoice over to a collections agency."""
    zone = ZoneInfo(case.time_zone)
    payments = sorted(case.payments, key=lambda payment: payment.paid_on)
    fees = sorted(case.fees, key=lambda fee: (fee.charged_on, fee.period_start))
    messages = sorted(case.messages, key=lambda message: message.sent_at)
    timeline = sorted(case.timeline, key=lambda action: action.at)
    currency = case.invoice.currency

    def moment(value: datetime) -> str:
        return value.astimezone(zone).isoformat(timespec="seconds")

    entries: dict[str, bytes] = {}
    width = max(3, len(str(len(messages))))
    message_rows = []
    for number, message in enumerate(messages, start=1):
        stem = (f"{MESSAGE_DIR}/{number:0{width}d}-{message.sent_at.astimezone(zone).date()}-"
                f"{_slug(message.kind, 'message')}")
        header = [f"Date: {moment(message.sent_at)}", f"Kind: {_line(message.kind)}",
                  f"Channel: {_line(message.channel)}", f"To: {_line(message.recipient)}",
                  f"Subject: {_line(message.subject)}"]
        entries[f"{stem}.txt"] = _text("\n".join(header) + "\n\n" + message.text)
        if message.html is not None:
            entries[f"{stem}.html"] = message.html.encode("utf-8")
        message_rows.append((number, moment(message.sent_at), message.kind, message.channel,
                             message.recipient, message.subject, f"{stem}.txt",
                             f"{stem}.html" if message.html is not None else ""))
    entries[MESSAGES] = _csv(("number", "sent_at", "kind", "channel", "recipient", "subject",
                              "text_file", "html_file"), message_rows)
    entries[PAYMENTS] = _csv(("paid_on", "amount", "currency", "method", "reference"),
                             [(payment.paid_on, payment.amount, currency, payment.method,
                               payment.reference) for payment in payments])
    entries[FEES] = _csv(("charged_on", "kind", "period_start", "period_end", "amount",
                          "currency", "reason"),
                         [(fee.charged_on, fee.kind, fee.period_start, fee.period_end,
                           fee.amount, currency, fee.reason) for fee in fees])
    entries[TIMELINE] = _csv(("at", "kind", "status", "message"),
                             [(moment(action.at), action.kind, action.status, action.message)
                              for action in timeline])
    entries[INVOICE] = _json(_invoice_json(case, payments, fees))
    entries[POLICY] = _json(case.policy)
    if case.demand_letter_pdf is not None:
        entries[DEMAND_LETTER] = case.demand_letter_pdf
    entries[README] = _text(_readme(case, payments, fees, messages, timeline))
    return _zip(entries, case.case_date)


def _days_overdue(case: CaseFacts) -> int:
    return max(0, (case.case_date - case.invoice.due_date).days)


def _party_json(party: CaseParty) -> dict[str, Any]:
    return {"name": party.name, "address": list(party.address), "email": party.email,
            "phone": party.phone, "registration": party.registration}


def _invoice_json(case: CaseFacts, payments: Sequence[CasePayment],
                  fees: Sequence[CaseFee]) -> dict[str, Any]:
    invoice = case.invoice
    return {
        "as_of": case.case_date.isoformat(),
        "time_zone": case.time_zone,
        "number": invoice.number,
        "reference": invoice.reference,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "days_overdue": _days_overdue(case),
        "currency": invoice.currency,
        "total": _amount(invoice.total),
        "amount_paid": _amount(invoice.amount_paid),
        "amount_due": _amount(invoice.amount_due),
        "payments_total": _amount(sum((p.amount for p in payments), Decimal(0))),
        "fees_total": _amount(sum((fee.amount for fee in fees), Decimal(0))),
        "creditor": _party_json(case.creditor),
        "debtor": _party_json(case.debtor),
    }


def _readme(case: CaseFacts, payments: Sequence[CasePayment], fees: Sequence[CaseFee],
            messages: Sequence[CaseMessage], timeline: Sequence[CaseAction]) -> str:
    invoice, currency = case.invoice, case.invoice.currency

    def party(role: str, who: CaseParty) -> list[str]:
        lines = [f"{role}: {_line(who.name)}"]
        lines += [f"  {_line(line)}" for line in who.address if line.strip()]
        lines += [f"  {label}: {_line(value)}" for label, value in (
            ("Registration", who.registration), ("Email", who.email), ("Phone", who.phone))
            if value.strip()]
        return lines

    fees_total = sum((fee.amount for fee in fees), Decimal(0))
    enclosed = [
        (README, "this summary"),
        (INVOICE, "the invoice, the creditor and the debtor (amounts as decimal strings)"),
        (PAYMENTS, f"payments received ({len(payments)})"),
        (FEES, f"fees and interest charged, each with its period and reason ({len(fees)})"),
        (MESSAGES, f"every reminder, letter and note sent ({len(messages)}), indexing "
                   f"{MESSAGE_DIR}/"),
        (f"{MESSAGE_DIR}/", "each message as sent: a .txt with date, channel, recipient and "
                            "subject, and a .html where it was sent as HTML"),
        (TIMELINE, f"every collection action taken, with its status ({len(timeline)})"),
        (POLICY, "the collection policy in force"),
    ]
    if case.demand_letter_pdf is not None:
        enclosed.append((DEMAND_LETTER, "the final demand letter as sent"))
    if not messages:
        enclosed = [item for item in enclosed if item[0] != f"{MESSAGE_DIR}/"]
    rows = [
        ("Issued", invoice.issue_date.isoformat()),
        ("Due", invoice.due_date.isoformat()),
        ("Days overdue", f"{_days_overdue(case)} (as of {case.case_date.isoformat()})"),
        ("Invoice total", format_money(invoice.total, currency)),
        ("Paid", f"{format_money(invoice.amount_paid, currency)} ({len(payments)} "
                 f"payment{'' if len(payments) == 1 else 's'})"),
        ("Fees and interest", f"{format_money(fees_total, currency)} ({len(fees)} "
                              f"charge{'' if len(fees) == 1 else 's'})"),
        ("Amount due", format_money(invoice.amount_due, currency)),
    ]
    if invoice.reference.strip():
        rows.insert(0, ("Reference", _line(invoice.reference)))
    lines = ["Collections case file", "=====================", "",
             f"Prepared: {case.case_date.isoformat()}", "",
             *party("Creditor", case.creditor), "", *party("Debtor", case.debtor), "",
             f"Invoice {_line(invoice.number)}"]
    lines += [f"  {label + ':':<19}{value}" for label, value in rows]
    lines += ["", "Enclosed"]
    lines += [f"  {name:<19}{what}" for name, what in enclosed]
    lines += ["", f"Dates are calendar dates in the creditor's time zone ({case.time_zone}); "
              "times carry their UTC offset.",
              "CSV files are UTF-8 with a byte-order mark, comma-separated, with a header row; "
              "a text cell that a spreadsheet would run as a formula starts with an "
              "apostrophe (') added by us.", ""]
    return "\n".join(lines)


def _line(value: str) -> str:
    """One line of a header or summary: a newline in a subject cannot forge another line."""
    return " ".join(value.split())


def _slug(value: str, fallback: str) -> str:
    """A safe name part from user text: ASCII letters, digits and dashes, nothing else."""
    spelt = value.lower().translate(_NO_DECOMPOSITION)
    ascii_text = unicodedata.normalize("NFKD", spelt).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:40].strip("-")
    return slug or fallback


def _amount(value: Decimal) -> str:
    return format(value, "f")


def _cell(value: object) -> object:
    """Our figures as written; text (ours or anyone's) never starts like a formula."""
    if isinstance(value, Decimal):
        return _amount(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        return _amount(value)
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    raise CaseFileError(f"the policy holds a {type(value).__name__}, which JSON cannot hold")


def _json(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False,
                       default=_json_value) + "\n").encode("utf-8")


def _text(value: str) -> bytes:
    return value.replace("\r\n", "\n").encode("utf-8")


def _zip(entries: Mapping[str, bytes], day: date) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            if not _SAFE_NAME.fullmatch(name) or ".." in name:
                raise CaseFileError(f"unsafe name in the case file: {name!r}")
            info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()
