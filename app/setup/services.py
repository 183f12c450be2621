"""Setup: what a new organisation's owner sees and decides before anything goes out.

The organisation is in review (collect/review.py) until `go_live`. Everything here reads the books
and previews the policy; the only writes are the policy (a preset), the mode, and the activity
log, each committed whole or not at all.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.settings.services import save_policy
from collect import ledger, review
from collect.book import calendar_for, policy_for
from collect.plan import Foreseen, foresee, refresh_next_action
from jobs.queues import enqueue_once
from jobs.tasks import plan_org
from rules import Policy, ReminderStep, policy_from_json, policy_to_json
from rules.actions import ActionKind
from rules.policy import Channel, Tone, looking_forward
from store.models import MailSender, Organisation, User

log = logging.getLogger(__name__)

FIRST_WEEK_DAYS = 6  # today and the six days after it
MOST_IMPORTANT = 20
FEE_KINDS = frozenset({"fee", "interest", "compensation"})
# How much an action matters to the customer who receives it, most first.
WEIGHT = {"agency_case": 0, "demand_letter": 1, "stop_service": 2, "compensation": 3,
          "fee": 3, "interest": 3, "terms_change": 4, "call_task": 5, "reminder": 6}
TONE_WEIGHT = {"final": 0, "firm": 1, "friendly": 2}


@dataclass(frozen=True)
class Preset:
    """A starting ladder an owner can take as it is: name, steps, repeat."""

    name: str
    steps: tuple[tuple[int, str, Tone], ...]  # (offset days, template, tone)
    repeat_every_days: int | None = None
    repeat_times: int | None = None


PRESETS = {
    "gentle": Preset("gentle", ((-3, "friendly_before", "friendly"), (0, "due_today", "friendly"),
                                (7, "overdue_1", "friendly"), (21, "overdue_2", "firm"))),
    "standard": Preset("standard", ((-3, "friendly_before", "friendly"),
                                    (0, "due_today", "friendly"), (7, "overdue_1", "firm"),
                                    (21, "overdue_2", "final"))),
    "firm": Preset("firm", ((-3, "friendly_before", "friendly"), (0, "due_today", "firm"),
                            (3, "overdue_1", "firm"), (10, "overdue_2", "firm"),
                            (21, "overdue_3", "final")), repeat_every_days=7, repeat_times=4),
}


class SetupRefused(ValueError):
    """A choice the page cannot take; the message is for the owner. Nothing was saved."""


def sender_verified(session: Session, org: Organisation) -> bool:
    """A sender of the organisation's own passed a test send (then presets use our email)."""
    return session.scalar(select(MailSender.verified_at).where(
        MailSender.org_id == org.id)) is not None


def preset_policy(current: Policy, name: str, channel: str) -> Policy:
    """The current policy with the preset's ladder and repeat (fees, window and the rest
    kept); every step through `channel`."""
    preset = PRESETS.get(name)
    if preset is None:
        raise SetupRefused(name)
    body: dict[str, Any] = policy_to_json(current)
    body["reminder_steps"] = [{"offset_days": offset, "template": template, "tone": tone,
                               "channel": channel} for offset, template, tone in preset.steps]
    body["repeat"] = None if preset.repeat_every_days is None else {
        "every_days": preset.repeat_every_days, "max_times": preset.repeat_times,
        "template": "repeat", "tone": "firm", "channel": channel}
    body.pop("first_contact", None)  # the preset's own first step after the due date
    return policy_from_json(body)


def preset_ladders(channel: Channel) -> dict[str, tuple[ReminderStep, ...]]:
    """Each preset's ladder, as steps, for the page to put in words."""
    return {name: tuple(ReminderStep(offset_days=o, template=t, tone=tone, channel=channel)
                        for o, t, tone in preset.steps) for name, preset in PRESETS.items()}


def choose_preset(session: Session, org: Organisation, user: User, name: str,
                  now: datetime) -> int:
    """Save the preset as the policy's next version. Returns the version."""
    channel = "dunwell_email" if sender_verified(session, org) else "provider_email"
    policy = preset_policy(policy_for(session, org), name, channel)
    version = save_policy(org, user, policy, now)
    log.info("org %s: preset %s chosen", org.id, name)
    return version


@dataclass
class FirstWeek:
    """What the first week would do: counts per day and kind, and the actions that matter
    most, as the engine plans them with fees counted from today."""

    days: list[date]
    counts: dict[date, Counter[str]]
    kinds: list[ActionKind]
    top: list[Foreseen]
    total: int


def _importance(item: Foreseen) -> tuple[int, int, Decimal]:
    action = item.action
    return (WEIGHT.get(action.kind, 7), TONE_WEIGHT.get(action.tone or "", 3),
            -(item.invoice.amount_due or Decimal(0)))


def first_week(session: Session, org: Organisation, now: datetime,
               charge_earlier: bool = False) -> FirstWeek:
    policy = policy_for(session, org)
    earlier = frozenset(f.id for f in policy.late_fees) if charge_earlier else frozenset()
    found = foresee(session, org, review.open_invoices(session, org), now, FIRST_WEEK_DAYS,
                    adjust=_as_going_live(org, now, earlier))
    calendar = calendar_for(org)
    today = calendar.today(now)
    days = [date.fromordinal(today.toordinal() + n) for n in range(FIRST_WEEK_DAYS + 1)]
    counts: dict[date, Counter[str]] = {day: Counter() for day in days}
    for item in found:
        counts.setdefault(calendar.today(item.at), Counter())[item.action.kind] += 1
    kinds = sorted({item.action.kind for item in found}, key=lambda k: WEIGHT.get(k, 7))
    top = sorted(found, key=_importance)[:MOST_IMPORTANT]
    return FirstWeek(days, counts, kinds, top, len(found))


def _as_going_live(org: Organisation, now: datetime, earlier: frozenset[str]
                   ) -> Callable[[Policy], Policy] | None:
    """The policy as going live now would date its fee rules (once live: as it is)."""
    if not review.in_review(org):
        return None
    return _dated(org, now, earlier)


def _dated(org: Organisation, now: datetime, earlier: frozenset[str]
           ) -> Callable[[Policy], Policy]:
    day = calendar_for(org).today(now)
    return lambda policy: looking_forward(policy, day, earlier)


def earlier_lateness(session: Session, org: Organisation, now: datetime) -> dict[str, Decimal]:
    """Per currency, what charging the lateness from before today would add on the first
    day: the fees and interest of a first run with every rule counting from the due date,
    less those of one counting from today."""
    policy = policy_for(session, org)
    if not policy.late_fees:
        return {}
    invoices = review.open_invoices(session, org)
    every = frozenset(f.id for f in policy.late_fees)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for sign, earlier in ((1, every), (-1, frozenset[str]())):
        for item in foresee(session, org, invoices, now, 0, adjust=_dated(org, now, earlier)):
            action = item.action
            if action.kind in FEE_KINDS and action.amount:
                totals[action.currency or item.invoice.currency] += sign * action.amount
    return {currency: amount for currency, amount in sorted(totals.items()) if amount}


def go_live(session: Session, org: Organisation, by: User | str, now: datetime, *,
            fees_seen: bool, charge_earlier: bool, approvals: bool) -> None:
    """The owner said go. Fee rules not yet dated count from today unless the owner, having
    seen what that would charge, chose to charge the earlier lateness; the mode becomes live
    (with approvals, if chosen) and today's run plans afresh. Commits."""
    if not review.in_review(org):
        raise SetupRefused("already live")
    policy = policy_for(session, org)
    if policy.late_fees and not fees_seen:
        raise SetupRefused("fees")
    today = calendar_for(org).today(now)
    earlier = frozenset(f.id for f in policy.late_fees) if charge_earlier else frozenset()
    dated = looking_forward(policy, today, earlier)
    if dated != policy:
        save_policy(org, by, dated, now)  # still in review: the dates are taken as given
    org.mode, org.live_since = review.LIVE, now
    org.safe_mode = approvals
    fees = ("" if not policy.late_fees else
            "; fees count lateness from the due date, as chosen" if charge_earlier else
            f"; fees count lateness from {today.isoformat()} on")
    who = by if isinstance(by, str) else by.email
    ledger.audit(session, org.id, "went_live",
                 f"{who} went live{' with approvals' if approvals else ''}{fees}",
                 at=now, data={"charge_earlier": charge_earlier, "approvals": approvals,
                               "by": who, "fees": bool(policy.late_fees),
                               "fees_from": today.isoformat()})
    refresh_next_action(session, org, now)
    session.commit()
    log.info("org %s: live (approvals %s)", org.id, approvals)
    enqueue_once(plan_org, org.id, job_id=f"plan-{org.id}-live-{int(now.timestamp())}")
