"""Review mode: a new organisation's books are synced and planned, and every preview runs, but
nothing is sent, noted or written to the books until the owner says go (app/setup/).

The day's run of an organisation in review writes nothing to the action ledger: it counts what
would have gone out and says so in the activity log. So going live fires no backlog: every
invoice is planned afresh that day, the late ones with their first contact
(rules/reminders.py), and fee rules count from the go-live day (rules/policy.looking_forward).
The executor refuses, as a second line, any action of an organisation in review.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger
from collect.book import calendar_for
from collect.plan import foresee
from rules import Policy
from rules.policy import looking_forward
from store.models import Invoice, Organisation

log = logging.getLogger(__name__)

REVIEW, LIVE = "review", "live"
MODES = (REVIEW, LIVE)


def in_review(org: Organisation) -> bool:
    return org.mode != LIVE


def previewed(org: Organisation, now: datetime, charge_earlier: frozenset[str] = frozenset()
              ) -> Callable[[Policy], Policy] | None:
    """How a preview sees the policy: as going live today would date its fee rules (lateness
    before today not charged, but for the rules in `charge_earlier`); as it is once live."""
    if not in_review(org):
        return None
    day = calendar_for(org).today(now)
    return lambda policy: looking_forward(policy, day, charge_earlier)


def open_invoices(session: Session, org: Organisation) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(
        Invoice.org_id == org.id, Invoice.status == "open", Invoice.due_date.is_not(None))
        .order_by(Invoice.due_date, Invoice.id)))


def review_run(session: Session, org: Organisation, now: datetime) -> int:
    """The day's run in review: what would go out today, counted and told, nothing written
    to the ledger or the books. Returns the count; the caller commits."""
    found = foresee(session, org, open_invoices(session, org), now, 0,
                    adjust=previewed(org, now))
    kinds = Counter(f.action.kind for f in found)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "nothing"
    ledger.audit(session, org.id, "review_run",
                 f"In review: today's run would have done {summary}; nothing was sent or"
                 " written to the books", at=now, data={"counts": dict(kinds)})
    log.info("org %s: in review, %d action(s) not planned", org.id, len(found))
    return len(found)
