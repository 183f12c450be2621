"""The preview tells the truth about the channel (issue 22, point 5), on both sandboxes: for the
provider's invoice email the setup page and the "what will happen" page show the subject and
body the provider words from the organisation's settings (the very email the sandbox then
records), and the settings page shows it too, with the ladder's template and tone disabled and
one sentence saying why; Dunwell's own email is shown as our text in the customer's language
and the book's currency."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from babel.numbers import format_currency
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

LADDER = {"version": 2, "reminder_steps": [
    {"offset_days": -3}, {"offset_days": 0},
    {"offset_days": 7, "tone": "firm", "channel": "dunwell_email"},
    {"offset_days": 21, "tone": "final"}]}


def texts(page: str) -> dict[str, str]:
    """Each previewed email on a page: its subject and its body."""
    found = re.findall(r'class="sent-subject"><strong>[^<]*</strong> <span dir="auto"[^>]*>(.*?)'
                       r'</span></p>\s*<pre class="preview-box sent-body"[^>]*>(.*?)</pre>',
                       page, re.S)
    return {html.unescape(subject): html.unescape(body) for subject, body in found}


def sent_emails(provider: str, box: Any, tenant: str) -> dict[str, str]:
    body = "Body" if provider == "xero" else "Message"
    return {str(e["Subject"]): str(e[body]) for e in box.emails(tenant)}


def tag(page: str, element_id: str) -> str:
    found = re.search(rf'<(input|select)[^>]*id="{element_id}"[^>]*>', page)
    assert found, element_id
    return found.group(0)


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_the_provider_email_preview_is_what_the_provider_sends(  # type: ignore[no-untyped-def]
        app, web, sandbox, qbo_sandbox, clock, provider: str) -> None:
    from app.settings.services import save_policy
    from rules import policy_from_json
    from store.db import db
    from store.models import Contact, Invoice, Organisation

    if provider == "quickbooks":
        clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California
    box = (sandbox if provider == "xero" else qbo_sandbox)[0]
    name = "Xero" if provider == "xero" else "QuickBooks"
    connected = connect(app, web, provider, live=False)
    run_jobs(app)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        save_policy(org, "the test", policy_from_json(LADDER), clock())
        currency = org.base_currency
    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}"

    # The setup page: each reminder of the first week sent as the provider's email shows it.
    page = http.get(f"{base}/setup").text
    previewed = texts(page)
    assert previewed, "the first week holds reminders by the provider's email"
    standard = f"This is {name}'s standard wording"
    assert (standard in page) == (provider == "xero")  # QuickBooks lets us read its settings

    # The settings page: the provider's email for an invoice; template and tone disabled for
    # its steps, with one sentence why; enabled where Dunwell's email sends our own text.
    page = http.get(f"{base}/settings").text
    assert texts(page), "the settings page shows what the provider sends"
    assert (f"Steps sent as {name}'s own invoice email are worded by {name} from its email"
            " settings, so their template and tone do not apply") in html.unescape(page)
    for step, by_provider in ((0, True), (1, True), (2, False), (3, True)):
        for field in ("template", "tone"):
            element = tag(page, f"reminder_steps-{step}-{field}")
            assert ("disabled" in element) == by_provider, element
            if by_provider:
                assert 'aria-describedby="provider-wording"' in element
    # Their values still go with the form (hidden twins), so saving keeps them.
    saved = http.post(f"{base}/settings", data=flows.policy_form(page))
    assert saved.status_code == 200 and "Policy saved" in saved.text
    with app.app_context():
        from store.models import Policy
        body = db.session.scalar(select(Policy.body))
        assert [(s.get("tone", "friendly"), s.get("channel", "provider_email"))
                for s in body["reminder_steps"]] == [
            ("friendly", "provider_email"), ("friendly", "provider_email"),
            ("firm", "dunwell_email"), ("final", "provider_email")]
    # Our own text's preview: the book's currency, not a sample's.
    csrf = flows.csrf_token(page)
    answer = http.post(f"{base}/settings/template-preview", data={
        "csrf_token": csrf, "language": "en", "subject": "Invoice {{ invoice_number }}",
        "body": "Due: {{ amount_due|money }}"}, headers={"X-CSRFToken": csrf}).json()
    assert format_currency(Decimal("1234.50"), currency, locale="en") in answer["text"]

    # Go live: what the provider sends for today's first contacts is what was previewed.
    flows.go_live(http, web.url, connected.org_id, charge_earlier=False)
    run_jobs(app)
    sent = sent_emails(provider, box, connected.tenant_id)
    common = set(previewed) & set(sent)
    assert common, (sorted(previewed)[:3], sorted(sent)[:3])
    assert {s: previewed[s] for s in common} == {s: sent[s] for s in common}

    # "What will happen" to an open invoice: the provider's email for its provider steps, and
    # our own email, in the customer's language, for the step Dunwell sends.
    with app.app_context():
        target = next(i for i in db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open",
            Invoice.next_action_at.is_not(None)).order_by(Invoice.due_date.desc()))
            if i.contact is not None and i.contact.email)
        db.session.get(Contact, target.contact_id).language = "de"
        db.session.commit()
        target_id, number = target.id, target.number
    page = http.get(f"{base}/preview", params={"invoice": target_id}).text
    shown = texts(page)
    assert any(number in subject for subject in shown)
    german = [s for s in shown if s.startswith("Zahlungserinnerung") or "Rechnung" in s]
    assert german, sorted(shown)
    if provider == "quickbooks":
        # The owner changes the wording in QuickBooks: the previews follow at once.
        with box.lock:
            box.company(connected.tenant_id).invoice_message = (
                "Please pay [Invoice No.]", "Hello [Full Name], it is time.")
        page = http.get(f"{base}/preview", params={"invoice": target_id}).text
        assert f"Please pay {number}" in texts(page)
