"""Shorter terms as a write-back: the policy option (old policies read as before), the ledger
key, and the decision right before writing (never lengthen, never a paid or voided invoice)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from rules import PolicyError, default_policy, policy_from_json, policy_to_json
from rules.credit import InvoiceHistory, recommended_terms, terms_change_key, terms_verdict

NEW_DUE = date(2026, 12, 1)


def _with_terms(**terms: object) -> dict[str, object]:
    return {**policy_to_json(default_policy()), "terms_on_hold": terms}


def test_a_policy_stored_before_the_option_reads_as_a_recommendation() -> None:
    policy = policy_from_json(_with_terms(due_in_days=7, when="over_limit"))
    assert policy.terms_on_hold is not None
    assert (policy.terms_on_hold.due_in_days, policy.terms_on_hold.when,
            policy.terms_on_hold.apply) == (7, "over_limit", "recommend")
    # ... and is stored exactly as it was: the default is left out.
    assert policy_to_json(policy)["terms_on_hold"] == {"due_in_days": 7, "when": "over_limit"}


def test_write_back_is_kept_and_stored() -> None:
    policy = policy_from_json(_with_terms(due_in_days=0, when="either", apply="write_back"))
    assert policy.terms_on_hold is not None and policy.terms_on_hold.apply == "write_back"
    assert policy_to_json(policy)["terms_on_hold"] == {
        "due_in_days": 0, "when": "either", "apply": "write_back"}
    assert policy_from_json(policy_to_json(policy)) == policy


@pytest.mark.parametrize("apply", ["write", "always", "", None, 1])
def test_an_unknown_apply_is_refused(apply: object) -> None:
    with pytest.raises(PolicyError, match="apply"):
        policy_from_json(_with_terms(due_in_days=7, apply=apply))


def test_the_key_names_the_invoice_and_the_new_day() -> None:
    assert terms_change_key(7, 42, NEW_DUE) == "7:42:terms_change:2026-12-01"
    assert terms_change_key(7, 42, date(2026, 12, 2)) != terms_change_key(7, 42, NEW_DUE)


@pytest.mark.parametrize(("status", "due", "unknown", "verdict"), [
    ("open", date(2026, 12, 24), False, "write"),  # due later: shortened
    ("open", date(2026, 12, 2), False, "write"),
    ("open", NEW_DUE, False, "already_shorter"),  # due that day already: nothing to do
    ("open", date(2026, 11, 30), False, "already_shorter"),  # sooner: never lengthened
    ("open", None, False, "already_shorter"),
    ("paid", date(2026, 12, 24), False, "not_open"),
    ("voided", date(2026, 12, 24), False, "not_open"),
    ("deleted", date(2026, 12, 24), False, "not_open"),
    ("draft", date(2026, 12, 24), False, "not_open"),
    # After a write whose answer was lost: due on the new day is that write.
    ("open", NEW_DUE, True, "done"),
    ("paid", NEW_DUE, True, "done"),
    ("open", date(2026, 12, 24), True, "write"),  # it did not happen: written now
    ("paid", date(2026, 12, 24), True, "not_open"),
    ("open", date(2026, 11, 30), True, "already_shorter"),
])
def test_the_verdict_right_before_writing(status: str, due: date | None, unknown: bool,
                                          verdict: str) -> None:
    assert terms_verdict(status, due, NEW_DUE, write_unknown=unknown) == verdict


def test_only_later_due_dates_of_open_invoices_become_changes() -> None:
    def invoice(n: int, issued: date, due: date, amount_due: str = "100") -> InvoiceHistory:
        return InvoiceHistory(n, issued, due, Decimal(100), Decimal(amount_due), "GBP")

    changes = recommended_terms([
        invoice(1, date(2026, 11, 20), date(2026, 12, 20)),  # 30 days: to 7
        invoice(2, date(2026, 11, 21), date(2026, 11, 25)),  # 4 days: shorter already
        invoice(3, date(2026, 11, 22), date(2026, 12, 22), "0"),  # paid: left alone
        invoice(4, date(2026, 11, 1), date(2026, 12, 1)),  # before the hold
    ], 7, on_hold_since=date(2026, 11, 15))
    assert [(c.invoice_id, c.due_date, c.recommended_due, c.because) for c in changes] == [
        (1, date(2026, 12, 20), date(2026, 11, 27), "on credit hold")]
