"""Statutory interest is never silently dead: the periods of an organisation's statutory rules
that need a decision, and the decision of an owner or admin, stored with who and when."""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger
from collect.book import calendar_for, policy_for
from collect.plan import refresh_next_action
from rules.rate_checks import RateCheck, open_checks
from rules.statutory import default_tables
from store.models import Organisation, RateConfirmation, User

log = logging.getLogger(__name__)
CHOICES = ("confirmed", "last_verified")


class DecisionRefused(ValueError):
    """Not a period that waits for a decision (any more), or not a choice it offers."""


def _jurisdictions(session: Session, org: Organisation) -> set[str]:
    found = set()
    for fee in policy_for(session, org).late_fees:
        name = getattr(fee.rule, "jurisdiction", None) or getattr(fee.rule, "legal_cap", None)
        if name:
            found.add(str(name))
    return found


def rate_checks(session: Session, org: Organisation, now: datetime) -> list[RateCheck]:
    """The statutory rate periods in force today that this organisation's rules need and
    nobody has decided on: each would otherwise charge nothing."""
    jurisdictions = _jurisdictions(session, org)
    if not jurisdictions:
        return []
    decided = {(j, start): choice for j, start, choice in session.execute(
        select(RateConfirmation.jurisdiction, RateConfirmation.period_start,
               RateConfirmation.choice).where(RateConfirmation.org_id == org.id))}
    return open_checks(default_tables(), jurisdictions, calendar_for(org).today(now),
                       decided)  # type: ignore[arg-type]


def decide(session: Session, org: Organisation, user: User, jurisdiction: str, start: date,
           choice: str, now: datetime) -> RateConfirmation:
    """Store the decision for one waiting period, say so in the activity log, and plan the
    invoices again with it. Commits."""
    waiting = {(c.jurisdiction, c.start): c for c in rate_checks(session, org, now)}
    found = waiting.get((jurisdiction, start))
    if found is None or choice not in CHOICES \
            or (choice == "confirmed" and found.problem != "unverified") \
            or (choice == "last_verified" and found.last_verified is None):
        raise DecisionRefused(jurisdiction)
    row = RateConfirmation(org_id=org.id, jurisdiction=jurisdiction, period_start=start,
                           choice=choice, confirmed_by=user.id, confirmed_at=now)
    session.add(row)
    if choice == "confirmed":
        what = f"confirmed the {jurisdiction} statutory rate of {found.rate} %"
    else:
        assert found.last_verified is not None
        what = (f"chose the last verified {jurisdiction} statutory rate"
                f" ({found.last_verified.annual_rate(False)} %)")
    ledger.audit(session, org.id, "rate_confirmed",
                 f"{user.email} {what} for {found.start}..{found.end}", at=now,
                 data={"jurisdiction": jurisdiction, "from": found.start.isoformat(),
                       "to": found.end.isoformat(), "choice": choice, "by": user.email})
    refresh_next_action(session, org, now)
    session.commit()
    log.info("org %s: %s statutory rate for %s decided (%s)", org.id, jurisdiction, start,
             choice)
    return row
