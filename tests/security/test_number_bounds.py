"""Issue 21, point 7: a default credit limit of `1e26` saved, and then the settings page
answered 500 until someone cleared it blind; `1e999999` stored a megabyte. Every money and
count input has a range and a clear error, and nothing is saved outside it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from tests.integration import flows
from tests.integration.conftest import run_jobs
from tests.security.conftest import fingerprint

pytestmark = pytest.mark.db

TOO_BIG = ["1e26", "1e999999", "9" * 40, "1000000000000", "-5", "NaN", "Infinity"]


def test_the_default_credit_limit_and_the_credit_sections_have_a_range(app, connected) -> None:  # type: ignore[no-untyped-def]
    base = f"{connected.web.url}/orgs/{connected.org_id}"
    http = connected.http
    for value in TOO_BIG:
        before = fingerprint(app)
        page = http.get(f"{base}/settings")
        answer = http.post(f"{base}/settings/credit", data={
            "csrf_token": flows.csrf_token(page.text), "default_credit_limit": value})
        assert answer.status_code == 422, value
        expected = ("Enter an amount from 0 to 999,999,999,999.99." if value[0].isdigit()
                    else "A credit limit is a positive amount, or empty for none.")
        assert expected in answer.text, value
        assert fingerprint(app) == before, value
        assert http.get(f"{base}/settings").status_code == 200
    for name, value in (("new_customer_policy.paid_on_time", "1" + "0" * 30),
                        ("deposits.threshold", "1e26"),
                        ("statement_day", "9" * 30)):
        page = http.get(f"{base}/settings")
        data = {"csrf_token": flows.csrf_token(page.text), name: value}
        if name.startswith("new_customer_policy"):
            data["new_customer_policy.policy"] = "{}"
        if name.startswith("deposits"):
            data["deposits.schedule"] = "100"
        before = fingerprint(app)
        answer = http.post(f"{base}/settings/credit", data=data)
        assert answer.status_code == 422, name
        assert fingerprint(app) == before, name
    # The largest amount allowed saves, and the page shows it.
    page = http.get(f"{base}/settings")
    saved = http.post(f"{base}/settings/credit", data={
        "csrf_token": flows.csrf_token(page.text), "default_credit_limit": "999999999999.99"})
    assert saved.status_code == 200 and "999999999999.99" in saved.text


def test_a_customers_credit_limit_retainer_and_top_up_have_a_range(app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Contact

    run_jobs(app)
    with app.app_context():
        contact = db.session.scalar(select(Contact.id).where(
            Contact.org_id == connected.org_id).order_by(Contact.id).limit(1))
        db.session.remove()
    base = f"{connected.web.url}/orgs/{connected.org_id}/customers/{contact}"
    page = connected.http.get(base)
    csrf = flows.csrf_token(page.text)
    before = fingerprint(app)
    for value in TOO_BIG:
        for path, data in (("/limit", {"limit": value}),
                           ("/retainer", {"threshold": value, "top_up_to": value}),
                           ("/retainer/top-up", {"amount": value})):
            answer = connected.http.post(base + path, data={"csrf_token": csrf, **data})
            assert answer.status_code == 200 and "flash error" in answer.text, (path, value)
    assert fingerprint(app) == before
    assert connected.http.get(base).status_code == 200


def test_policy_and_contact_counts_have_a_range(app) -> None:  # type: ignore[no-untyped-def]
    """The policy form and a contact's plan offsets: a range, not an integer of any size."""
    from app.settings import bounds
    from app.settings.services import PolicyForm
    from rules import default_policy

    with app.test_request_context():
        for name in ("repeat.every_days", "escalation.call_task.after_days",
                     "payment_plans.grace_days"):
            form = PolicyForm(MultiDict({name: "9" * 30}), default_policy())
            assert form.validate() is None
            assert "Enter a whole number from" in form.errors[name], name
        form = PolicyForm(MultiDict({"payment_plans.offsets": "1, 99999999999999"}),
                          default_policy())
        assert form.validate() is None and "each from" in form.errors["payment_plans.offsets"]
        with pytest.raises(bounds.NumberRefused):
            bounds.whole_number("1" * 5000)
        with pytest.raises(bounds.NumberRefused, match=r"Enter a whole number\.$"):
            bounds.whole_number("twelve")
        assert bounds.too_large(Decimal("1e999999")) and bounds.too_large(Decimal("NaN"))
        assert not bounds.too_large(bounds.MAX_AMOUNT)
