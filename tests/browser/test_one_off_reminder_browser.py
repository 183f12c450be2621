"""A one-off text from an invoice's page in a real browser, on a phone's width, in English and
in Hebrew: the collector chooses the channel, the tone and a line of their own, previews the
exact words with their segments, sends it, and sees it on the invoice's timeline; the Twilio
emulator holds each text once. axe finds nothing serious, nothing sticks out of the page (at a
phone's width and a desktop's), and the Hebrew page shows no English of its own."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS, axe_problems
from tests.browser.test_collector_workbench import _flash, _sign_in
from tests.browser.test_every_page import OVERFLOW_CHECK, VISIBLE_TEXT, english_left
from tests.integration.conftest import run_jobs
from tests.integration.test_sms_channel import set_up, twilio  # noqa: F401 (a fixture)

pytestmark = pytest.mark.db


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The form and its preview, kept as the run's artefact (tests/browser/screenshots/)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.locator("#one-off").screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _preview_text(page, base: str, line: str, encoding: str) -> str:  # type: ignore[no-untyped-def]
    """Preview a text in the page's language and check the preview; the previewed words."""
    page.goto(base)
    page.check("#one-off-sms")
    page.select_option("#one-off-tone", "firm")
    page.fill("#one-off-line", line)
    with page.expect_navigation():
        page.click("#one-off-form button[type=submit]")
    assert "one_off=preview" in page.url
    preview = page.locator("#one-off-preview")
    assert preview.is_visible()
    words = page.locator("#one-off-text").inner_text().strip()
    assert words.startswith(line)
    assert encoding in page.locator("#one-off-segments").inner_text()
    assert page.evaluate(OVERFLOW_CHECK) is None
    assert axe_problems(page) == []
    return words


def test_a_collector_previews_and_sends_a_one_off_text(  # type: ignore[no-untyped-def]
        app, web, page, clock, sandbox, qbo_sandbox, twilio) -> None:  # noqa: F811
    state = twilio[0]
    connected, _, target_id = set_up(app, web, clock, sandbox, qbo_sandbox, twilio, "xero")
    run_jobs(app)  # the day's run that going live booked: the ladder's text
    ladder = list(state.messages)
    _sign_in(page, web.url)
    base = f"{web.url}/orgs/{connected.org_id}/invoices/{target_id}"
    _preview_text(page, base, "As agreed on the phone.", "GSM-7")  # a desktop's width
    _shot(page, "one-off-preview-en-1280")

    page.set_viewport_size({"width": 390, "height": 844})
    words = _preview_text(page, base, "As agreed on the phone.", "GSM-7")
    _shot(page, "one-off-preview-en-390")
    assert "segment(s) in GSM-7" in page.locator("#one-off-segments").inner_text()
    with page.expect_navigation():
        page.click("#one-off-send button[type=submit]")
    assert "The one-off reminder goes out now." in _flash(page)
    run_jobs(app)
    assert [m["body"] for sid, m in state.messages.items() if sid not in ladder] == [words]
    page.goto(base)
    timeline = page.locator("ol.timeline li.one_off_reminder").first
    assert "One-off reminder" in timeline.inner_text()
    assert "Text message (SMS)" in timeline.inner_text()
    timeline.locator("summary").click()
    assert words in timeline.inner_text()

    # Hebrew: right to left, translated, the same flow.
    page.locator("#language-choice").select_option("he")
    page.get_by_role("button", name="Change language").click()
    clock.advance(minutes=1)  # the second text is the timeline's newest
    words_he = _preview_text(page, base, "כפי שסיכמנו בטלפון.", "UCS-2")  # Hebrew letters
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert english_left(page.evaluate(VISIBLE_TEXT), "he") == []
    _shot(page, "one-off-preview-he-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.evaluate(OVERFLOW_CHECK) is None and axe_problems(page) == []
    _shot(page, "one-off-preview-he-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    with page.expect_navigation():
        page.click("#one-off-send button[type=submit]")
    assert "התזכורת החד-פעמית נשלחת עכשיו." in _flash(page)
    run_jobs(app)
    assert [m["body"] for sid, m in state.messages.items() if sid not in ladder] == \
        [words, words_he]
    page.goto(base)
    assert page.evaluate(OVERFLOW_CHECK) is None
    assert english_left(page.evaluate(VISIBLE_TEXT), "he") == []
    assert axe_problems(page) == []
    newest = page.locator("ol.timeline li.one_off_reminder").first
    assert "הודעת טקסט (SMS)" in newest.inner_text()
    newest.locator("summary").click()
    assert words_he in newest.inner_text()
