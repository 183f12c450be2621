"""The settings page in a real browser (issue 22, point 5): a step sent as the provider's own
invoice email has its template and tone disabled, with the sentence why; choosing Dunwell's
email for it enables them at once, and the provider's email for an invoice is shown as the
provider words it. Axe finds nothing on the page."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import axe_problems
from tests.integration.conftest import EMAIL, PASSWORD, connect, run_jobs

pytestmark = pytest.mark.db


def test_the_provider_wording_disables_tone_and_template(app, web, page) -> None:  # type: ignore[no-untyped-def]
    connected = connect(app, web, "xero", live=False)
    run_jobs(app)
    page.goto(f"{web.url}/signin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{web.url}/orgs")
    page.goto(f"{web.url}/orgs/{connected.org_id}/settings")

    tone, template = page.locator("#reminder_steps-0-tone"), page.locator(
        "#reminder_steps-0-template")
    assert tone.is_disabled() and template.is_disabled()
    assert tone.get_attribute("aria-describedby") == "provider-wording"
    assert "are worded by Xero from its email settings" in page.locator(
        "#provider-wording").inner_text()
    box = page.locator("#provider-email")
    assert re.search(r"What Xero sends for invoice \S+", box.inner_text())
    assert "Xero's standard wording" in box.inner_text()
    assert axe_problems(page) == []

    page.locator("#reminder_steps-0-channel").select_option("dunwell_email")
    assert tone.is_enabled() and template.is_enabled()
    tone.select_option("firm")
    page.get_by_role("button", name="Save policy").click()
    page.wait_for_load_state()
    assert "Policy saved" in page.content()
    assert page.locator("#reminder_steps-0-tone").input_value() == "firm"
    assert page.locator("#reminder_steps-0-tone").is_enabled()
    # The next step is still the provider's: its tone kept as it was, and still disabled.
    assert page.locator("#reminder_steps-1-tone").is_disabled()
