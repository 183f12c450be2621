"""What the portal says when it will not take an answer, in the customer's language; and what
the owners are emailed about the customer's answers that wait for them, in each owner's."""

from __future__ import annotations

from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.formatting import day

REFUSALS = {
    "unknown_invoice": _l("That invoice is not one of yours."),
    "not_open": _l("That invoice has nothing left to pay."),
    "bad_date": _l("Please give a date."),
    "date_past": _l("The date is in the past. Please choose today or a later day."),
    "date_far": _l("That date is too far ahead. Please ask for a payment plan instead."),
    "bad_amount": _l("Please give an amount greater than zero and no more than what is due."),
    "reason_missing": _l("Please tell us what is wrong with the invoice."),
    "reason_long": _l("Please keep the reason shorter."),
    "attachment_large": _l("The file is too large."),
    "bad_attachment_type": _l("Please attach a PDF, PNG or JPEG file."),
    "bad_interval": _l("Please choose how often you would pay."),
    "bad_number": _l("Please give the number of instalments."),
    "too_many_instalments": _l("That is more instalments than this business offers."),
    "plan_too_long": _l("That plan would run longer than this business allows."),
    "plan_pending": _l("You have already asked for a plan for this invoice."),
    "too_many": _l("Too many requests. Please wait a few minutes and try again."),
    "card_unavailable": _l("Paying by card is not possible just now. Please try again later."),
}


def refusal(code: str) -> str:
    return str(REFUSALS.get(code, REFUSALS["bad_number"]))


def owner_email(what: str, language: str, *, business: str, contact: str, number: str,
                link: str, reason: str = "", instalments: int = 0, every_days: int = 0,
                first_on: date | None = None) -> tuple[str, str]:
    """The subject and text of the email that tells an owner of a dispute ("dispute") or a
    plan request ("plan") made in the portal, in `language`."""
    with force_locale(language):
        if what == "dispute":
            subject = _("%(contact)s disputes invoice %(number)s (%(business)s)",
                        contact=contact, number=number, business=business)
            lines = [_("%(contact)s disputes invoice %(number)s in the portal: its reminders "
                       "and fees stop until you resolve the dispute.",
                       contact=contact, number=number),
                     _("Their reason: %(reason)s", reason=reason)]
        else:
            subject = _("%(contact)s asks to pay invoice %(number)s in instalments "
                        "(%(business)s)", contact=contact, number=number, business=business)
            lines = [_("%(contact)s asks in the portal to pay invoice %(number)s in "
                       "%(instalments)s instalments every %(days)s days from %(first)s. "
                       "Reminders go on until you approve or decline the request.",
                       contact=contact, number=number, instalments=instalments,
                       days=every_days, first=day(first_on, language=language))]
        lines.append(_("Open the invoice: %(link)s", link=link))
    return str(subject), "\n\n".join(str(line) for line in lines) + "\n"
