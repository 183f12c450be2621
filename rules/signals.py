"""The stop-service signal of a customer on credit hold or over the credit limit: filed under
the customer, once per hold and once per stretch over the limit.

A signal's key names the customer and the day its cause began: the hold's first day, or the
issue day of the invoice that took the open balance over the limit
(`<org>:contact<contact>:stop_service:hold|limit:<day>`). Before signals were filed under
their customer each borrowed an invoice and its key named it
(`<org>:<invoice>:stop_service:hold<contact>:<day>`, `<org>:<invoice>:stop_service:limit<contact>`);
those rows keep their keys, and `signal_planned` counts them as the signal they are, so a
planner never sends one twice across the change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from rules.actions import contact_key

SignalCause = Literal["hold", "limit"]
TRIGGERS: dict[SignalCause, str] = {"hold": "credit_hold", "limit": "credit_limit"}
BORROWED_KEY = re.compile(
    r"^(?P<org>\d+):\d+:stop_service:(?P<cause>hold|limit)(?P<contact>\d+)(?::(?P<day>[\d-]+))?$")


def signal_key(org_id: int, contact_id: int, cause: SignalCause, since: date) -> str:
    return contact_key(org_id, contact_id, "stop_service", cause, since.isoformat())


@dataclass(frozen=True, slots=True)
class PastSignal:
    """A stop-service signal of the customer already in the ledger."""

    key: str
    planned_on: date  # in the organisation's zone
    waiting: bool  # not carried out yet (planned, claimed, failed or awaiting approval)


def signal_planned(org_id: int, contact_id: int, cause: SignalCause, since: date,
                   past: Iterable[PastSignal]) -> bool:
    """Whether the signal of this hold (or stretch over the limit, from `since`) is in the
    ledger already: under its key, under the borrowed invoice's key it had before, or because
    another signal of the customer still waits to go (it flags the customer all the same)."""
    own = signal_key(org_id, contact_id, cause, since)
    for signal in past:
        if signal.waiting or signal.key == own:
            return True
        borrowed = BORROWED_KEY.match(signal.key)
        if borrowed is None or borrowed["org"] != str(org_id) or borrowed["cause"] != cause \
                or int(borrowed["contact"]) != contact_id:
            continue
        day = borrowed["day"] or signal.planned_on.isoformat()  # a limit's: planned that day
        if day >= since.isoformat():
            return True
    return False
