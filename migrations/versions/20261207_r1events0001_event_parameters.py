"""event_parameters: activity-log rows written as English sentences get the parameters the
page now words them from in the reader's language (app/events.py), where the sentence can be
parsed; the rest keep no parameters and are shown as stored. A data migration: the schema is
unchanged, and going down leaves the parameters (the older code ignores them).

Revision ID: r1events0001
Revises: q1refunds001
Create Date: 2026-12-07 05:10:00

"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "r1events0001"
down_revision: str | Sequence[str] | None = "q1refunds001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = r"(?P<provider>Xero|QuickBooks Online|QuickBooks|The provider)"
COUNTS = ("invoices", "contacts", "payments", "actions", "api_calls", "missed", "waiting",
          "version", "contact_id")


def _went_live(found: dict[str, Any]) -> dict[str, Any]:
    rest, approvals = found.pop("rest") or "", bool(found.pop("with_approvals"))
    earlier = re.fullmatch(r"; fees count lateness from the due date, as chosen", rest)
    dated = re.fullmatch(r"; fees count lateness from (\d{4}-\d\d-\d\d) on", rest)
    if rest and not (earlier or dated):
        raise ValueError(rest)
    return {**found, "approvals": approvals, "fees": bool(rest),
            "charge_earlier": bool(earlier), **({"fees_from": dated.group(1)} if dated else {})}


def _sync_mode(found: dict[str, Any]) -> dict[str, Any]:
    return {**found, "mode": found["mode"].lower()}


def _safe_mode(found: dict[str, Any]) -> dict[str, Any]:
    return {**found, "on": found["on"] == "on", "waiting": found["waiting"] or 0}


# kind -> (the sentence the code wrote, what else the parameters need)
PATTERNS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]] | None]] = {
    "connected": (rf"(?P<by>\S+) connected {PROVIDERS} organisation (?P<tenant>.+)", None),
    "deletion_cancelled": (r"Reconnected within the grace period: the synced data is kept",
                           None),
    "deletion_requested": (r"(?P<by>\S+) asked for the synced data to be deleted now", None),
    "disconnected": (rf"Disconnected from {PROVIDERS}; the synced data will be deleted after "
                     r"(?P<purge_after>\d{4}-\d\d-\d\d) \(UTC\) unless the organisation is "
                     r"reconnected", None),
    "daily_limit": (rf"{PROVIDERS}'s daily API limit for this organisation is spent; the "
                    r"remaining reminders wait and go out when it refills\.", None),
    "sync_done": (r"(?P<mode>Full|Incremental) sync: (?P<invoices>\d+) invoices, "
                  r"(?P<contacts>\d+) contacts, (?P<payments>\d+) payments read in "
                  r"(?P<api_calls>\d+) API calls", _sync_mode),
    "sync_failed": (r"Sync failed: (?P<error>.+)", None),
    "invited": (r"(?P<by>\S+) invited a new (?P<role>\w+)", None),
    "invitation_revoked": (r"(?P<by>\S+) withdrew the invitation of (?P<email>\S+)", None),
    "joined": (r"(?P<by>\S+) joined as (?P<role>\w+)", None),
    "api_token": (r"(?P<by>\S+) made API token '(?P<name>.*)'", None),
    "policy_saved": (r"Collection policy version (?P<version>\d+) saved by (?P<by>.+)", None),
    "contact_settings": (r"Collection settings changed for contact (?P<contact_id>\d+)", None),
    "went_live": (r"(?P<by>.+?) went live(?P<with_approvals> with approvals)?(?P<rest>;.*)?",
                  _went_live),
    "safe_mode": (r"Safe mode turned (?P<on>on|off) by (?P<by>\S+?)"
                  r"(?:; (?P<waiting>\d+) action\(s\) still wait for approval)?", _safe_mode),
    "template_saved": (r"Reminder text \((?P<language>\w+), (?P<tone>\w+)\) saved by "
                       r"(?P<by>\S+)", None),
    "template_reset": (r"Reminder text \((?P<language>\w+), (?P<tone>\w+)\) reset to the "
                       r"default by (?P<by>\S+)", None),
}
# Events of an action: its kind, step and amount are read from the action's row.
ACTION_EVENTS = {"action_planned", "action_replanned", "action_awaiting", "action_approved",
                 "action_done", "action_skipped", "action_failed", "action_dead"}
ACTION_ERRORS = re.compile(r"(?:Will retry|Gave up|Needs the owner|Provider refused): (?P<e>.+)",
                           re.S)
APPROVED_BY = re.compile(r"Approved by (?P<by>\S+?):")

events = sa.table("audit_events", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                  sa.column("message", sa.Text), sa.column("data", sa.JSON),
                  sa.column("action_id", sa.Integer))
actions = sa.table("actions", sa.column("id", sa.Integer), sa.column("key", sa.String),
                   sa.column("kind", sa.String), sa.column("step_index", sa.Integer),
                   sa.column("step_count", sa.Integer), sa.column("channel", sa.String),
                   sa.column("amount", sa.String), sa.column("currency", sa.String))


def parsed(kind: str, message: str) -> dict[str, Any] | None:
    """The parameters of one old sentence, or None when it does not read as its kind's."""
    if kind not in PATTERNS:
        return None
    pattern, more = PATTERNS[kind]
    found = re.fullmatch(pattern, message.strip(), re.S)
    if found is None:
        return None
    values: dict[str, Any] = {k: v for k, v in found.groupdict().items()}
    for name in COUNTS:
        if values.get(name) is not None:
            values[name] = int(values[name])
    try:
        return more(values) if more else values
    except ValueError:
        return None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(events.c.id, events.c.kind, events.c.message, events.c.data,
                                  events.c.action_id)
                        .where(events.c.kind.in_([*PATTERNS, *ACTION_EVENTS]))).all()
    about = {row.id: row for row in bind.execute(sa.select(actions).where(actions.c.id.in_(
        {r.action_id for r in rows if r.kind in ACTION_EVENTS and r.action_id})))} \
        if rows else {}
    for row in rows:
        if row.data is not None and not isinstance(row.data, dict):
            continue
        data = dict(row.data or {})
        if row.kind in ACTION_EVENTS:
            action = about.get(row.action_id)
            if action is None or "action" in data:
                continue
            described: dict[str, Any] = {
                "key": action.key, "action": action.kind, "step": action.step_index,
                "steps": action.step_count, "channel": action.channel,
                "amount": None if action.amount is None else str(action.amount),
                "currency": action.currency}
            found: dict[str, Any] | None = described
            if row.kind == "action_approved":
                by = APPROVED_BY.match(row.message)
                found = {**described, "by": by.group("by")} if by else None
            elif row.kind in ("action_failed", "action_dead"):
                error = ACTION_ERRORS.match(row.message)
                found = {**described, "error": error.group("e")} if error else None
        else:
            found = parsed(row.kind, row.message)
        if found is None:
            continue  # shown as stored
        bind.execute(sa.update(events).where(events.c.id == row.id)
                     .values(data={**data, **found}))


def downgrade() -> None:
    """The parameters stay: the code before this revision reads only `message`."""
