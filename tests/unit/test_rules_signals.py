"""A customer's stop-service signal is keyed by the customer and the day its cause began, and
the keys it had while it borrowed an invoice still count as the signal they are."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rules import PlannedAction
from rules.signals import PastSignal, signal_key, signal_planned

HOLD_DAY = date(2026, 11, 24)


def test_the_key_names_the_customer_and_the_day_not_an_invoice() -> None:
    assert signal_key(7, 42, "hold", HOLD_DAY) == "7:contact42:stop_service:hold:2026-11-24"
    assert signal_key(7, 42, "limit", date(2026, 10, 3)) == \
        "7:contact42:stop_service:limit:2026-10-03"


def test_a_hold_signals_once_whatever_key_it_was_planned_under() -> None:
    assert not signal_planned(7, 42, "hold", HOLD_DAY, [])
    done = PastSignal(signal_key(7, 42, "hold", HOLD_DAY), HOLD_DAY, waiting=False)
    assert signal_planned(7, 42, "hold", HOLD_DAY, [done])
    # Planned before signals were filed under the customer: under invoice 1001's key.
    borrowed = PastSignal("7:1001:stop_service:hold42:2026-11-24", HOLD_DAY, waiting=False)
    assert signal_planned(7, 42, "hold", HOLD_DAY, [borrowed])
    # A later hold is another signal; another customer's or organisation's is not this one.
    assert not signal_planned(7, 42, "hold", date(2026, 12, 2), [done, borrowed])
    assert not signal_planned(7, 43, "hold", HOLD_DAY, [done, borrowed])
    assert not signal_planned(8, 42, "hold", HOLD_DAY, [borrowed])
    # A limit's signal is not the hold's, unless it still waits to go (it flags them anyway).
    limit = PastSignal(signal_key(7, 42, "limit", date(2026, 10, 3)), HOLD_DAY, waiting=False)
    assert not signal_planned(7, 42, "hold", HOLD_DAY, [limit])
    waiting = PastSignal(signal_key(7, 42, "limit", date(2026, 10, 3)), HOLD_DAY, waiting=True)
    assert signal_planned(7, 42, "hold", HOLD_DAY, [waiting])


def test_a_limit_signal_planned_under_an_invoice_counts_from_the_day_it_was_planned() -> None:
    over_since = date(2026, 10, 3)
    borrowed = PastSignal("7:1001:stop_service:limit42", date(2026, 10, 5), waiting=False)
    assert signal_planned(7, 42, "limit", over_since, [borrowed])  # this stretch's
    # A stretch over the limit that began after it was planned: a new signal.
    assert not signal_planned(7, 42, "limit", date(2026, 11, 1), [borrowed])


def test_a_planned_action_is_filed_under_an_invoice_or_a_customer_never_both() -> None:
    at = datetime(2026, 11, 24, 9, tzinfo=UTC)
    mine = PlannedAction(key="7:contact42:statement:2026-11", kind="statement", invoice_id=None,
                         contact_id=42, org_id=7, scheduled_for=at, reason="Statement")
    assert mine.filed_under == ("contact", 42)
    theirs = PlannedAction(key="7:1001:reminder:0", kind="reminder", invoice_id=1001, org_id=7,
                           scheduled_for=at, reason="Reminder")
    assert theirs.filed_under == ("invoice", 1001)
    with pytest.raises(ValueError, match="one of the two"):
        PlannedAction(key="7:both", kind="statement", invoice_id=1001, contact_id=42, org_id=7,
                      scheduled_for=at, reason="Statement")
    with pytest.raises(ValueError, match="one of the two"):
        PlannedAction(key="7:neither", kind="statement", invoice_id=None, org_id=7,
                      scheduled_for=at, reason="Statement")
