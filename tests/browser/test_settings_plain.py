"""The settings page as an owner meets it: a fee rule shows only the fields its kind takes,
its id is made by Dunwell (never typed), and a refused step is named as the page labels it,
counted from 1, with the focus on the summary; nothing is saved."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

# What each kind of fee rule asks for on the page, as an owner reads it.
SHOWN = {
    "flat": {"amount", "grace_days", "placement"},
    "percentage": {"percent", "grace_days", "placement"},
    "recurring_percentage": {"percent", "grace_days", "period_days", "max_charges", "placement"},
    "daily_interest": {"annual_rate_percent", "grace_days", "period_days", "max_charges",
                       "placement"},
    "statutory_interest": {"jurisdiction", "grace_days", "period_days", "max_charges",
                           "placement"},
    "statutory_compensation": {"jurisdiction", "grace_days", "placement"},
    "reminder_fee": {"amount", "grace_days", "period_days", "max_charges", "placement"},
}
VISIBLE_FIELDS = """row => Array.from(row.querySelectorAll('[data-fee-field]'))
  .filter(box => box.checkVisibility()).map(box => box.dataset.feeField)"""


def _policy_version(app, org_id: int) -> tuple[int | None, list[object]]:  # type: ignore[no-untyped-def]
    """The stored policy's version and fee rules (none stored yet: the default's)."""
    from store.db import db
    from store.models import Policy

    with app.app_context():
        row = db.session.scalars(select(Policy).where(Policy.org_id == org_id)).first()
        found = (None, []) if row is None else (row.version, list(row.body.get("late_fees", [])))
        db.session.remove()
    return found


def test_fee_fields_follow_the_kind_and_a_refusal_names_the_step(app, web, page  # type: ignore[no-untyped-def]
                                                                 ) -> None:
    page.goto(f"{web.url}/signin")
    page.get_by_role("link", name="Sign up with Xero").click()
    page.locator("input[name=tenant]").first.check()
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_url(re.compile(r"/orgs/\d+/dashboard$"))
    found = re.search(r"/orgs/(\d+)/", page.url)
    assert found is not None
    org_id = int(found.group(1))
    page.goto(f"{web.url}/orgs/{org_id}/settings")
    assert page.locator("#statement_day").count() == 1  # one statement day on the page
    assert page.get_by_label("Rule id").count() == 0  # ids are Dunwell's to make

    before = _policy_version(app, org_id)
    new = page.locator("[data-fee-row]").count() - 1  # the empty row after the saved rules
    row = page.locator(f"#late_fees-{new}")
    kind = row.get_by_label("Kind")
    for value, fields in SHOWN.items():
        kind.select_option(value)
        assert set(row.evaluate(VISIBLE_FIELDS)) == fields, value

    kind.select_option("flat")
    row.get_by_label("Amount").fill("-5")
    page.get_by_role("button", name="Save policy").click()
    summary = page.locator("#errors-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name=f"Late fee {new + 1}: Amount")).to_be_visible()
    assert "late_fees." not in summary.inner_text()
    # The refused row keeps its kind and shows only its fields again.
    row = page.locator(f"#late_fees-{new}")
    assert set(row.evaluate(VISIBLE_FIELDS)) == SHOWN["flat"]
    assert _policy_version(app, org_id) == before  # nothing saved

    # A good amount saves the rule under an id Dunwell made.
    row.get_by_label("Amount").fill("25.00")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#errors-summary")).to_have_count(0)
    version, fees = _policy_version(app, org_id)
    assert version is not None and version > (before[0] or 0) and len(fees) == new + 1
    added = fees[-1]
    assert re.fullmatch(r"flat-[0-9a-f]{8}", added["id"]), added  # type: ignore[index]
    assert added["rule"]["amount"] == "25.00"  # type: ignore[index]
