"""A risk score's reasons (rules/risk.py: a kind and its numbers) in the reader's language, for
the pages and the command line alike."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import ngettext

from app.formatting import money
from rules.risk import ReasonKind, Risk, RiskReason


def _broken(reason: RiskReason) -> str:
    parts = []
    if reason.plans:
        parts.append(ngettext("%(num)d broken payment plan", "%(num)d broken payment plans",
                              reason.plans))
    if reason.promises:
        parts.append(ngettext("%(num)d broken promise to pay", "%(num)d broken promises to pay",
                              reason.promises))
    return ", ".join(parts)


def risk_reason(reason: RiskReason) -> str:
    """One reason as a phrase, with the points it adds."""
    kind = reason.kind
    if kind is ReasonKind.OVERDUE:
        amounts = ", ".join(money(amount, currency) for currency, amount in reason.amounts)
        text = ngettext("%(amounts)s overdue, the oldest by %(num)d day",
                        "%(amounts)s overdue, the oldest by %(num)d days", reason.days,
                        amounts=amounts)
    elif kind is ReasonKind.HABIT:
        if reason.days > 0:
            text = ngettext("expected to pay %(num)d day late (from %(count)d paid invoices)",
                            "expected to pay %(num)d days late (from %(count)d paid invoices)",
                            reason.days, count=reason.count)
        elif reason.days < 0:
            text = ngettext("expected to pay %(num)d day early (from %(count)d paid invoices)",
                            "expected to pay %(num)d days early (from %(count)d paid invoices)",
                            -reason.days, count=reason.count)
        else:
            text = _("expected to pay on the due date (from %(count)d paid invoices)",
                     count=reason.count)
    elif kind is ReasonKind.VERY_LATE:
        text = _("%(count)d of the last %(of)d invoices paid more than 30 days late",
                 count=reason.count, of=reason.of)
    elif kind is ReasonKind.BROKEN:
        text = _broken(reason)
    elif kind is ReasonKind.DISPUTED:
        text = ngettext("%(num)d invoice in dispute", "%(num)d invoices in dispute", reason.count)
    else:
        text = _("no paid invoices yet")
    if reason.points:
        text = _("%(reason)s (+%(points)d)", reason=text, points=reason.points)
    return text


def risk_reasons(risk: Risk) -> str:
    """All of a score's reasons, the overdue debt first."""
    return "; ".join(risk_reason(reason) for reason in risk.reasons)
