"""Every page of a book, found from the app's routes (a page added later is visited without
anyone listing it), opened in Chromium: it answers, passes axe-core (no serious or critical
violation, labels on every input), and every visible link, button and field can take the
keyboard's focus. Then in each of the five languages, at 1280 and 390 px: no page is wider
than the window, and Hebrew runs right to left; at 1280 px each page of the four translated
languages also passes axe-core and shows no English left untranslated (the same page load
serves every check)."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect
from sqlalchemy import select

from collect.approvals import AWAITING_APPROVAL
from tests.browser.conftest import axe_problems, run_jobs_off_the_page, screenshot
from tests.security.routes import probes

# Focusable by the keyboard: what the page shows as interactive must take focus.
FOCUS_CHECK = """() => {
  const wanted = 'a[href], button, input:not([type=hidden]), select, textarea, summary';
  const missed = [];
  for (const el of document.querySelectorAll(wanted)) {
    const box = el.getBoundingClientRect();
    // Inside a closed <details> an element keeps a box but is not shown (checkVisibility).
    if (box.width === 0 || box.height === 0 || el.disabled || !el.checkVisibility()) continue;
    el.focus();
    if (document.activeElement !== el) missed.push(el.outerHTML.slice(0, 120));
  }
  return missed;
}"""
# A desktop's width and a phone's (an iPhone 12 to 15 is 390 CSS pixels wide).
WIDTHS = (1280, 390)
# Screenshots of these pages in German and Hebrew at both widths, kept under
# tests/browser/screenshots/ (not in git) as the run's artefacts.
SCREENSHOT_LANGUAGES = ("de", "he")
LANGUAGES = ("en", "de", "nb", "pl", "he")
MAIN_PAGES = ("", "/dashboard", "/settings", "/settings/approvals", "/settings/contacts",
              "/preview", "/members", "/setup", "/customers", "/fees/quote")
# The page wider than the window, and the elements that stick out of it (the first few).
OVERFLOW_CHECK = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (!box.width || (box.right <= width + 1 && box.left >= -1)) continue;
    const name = typeof el.className === 'string' && el.className
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
    const parent = el.parentElement;
    out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${name} ` +
             `${Math.round(box.left)}..${Math.round(box.right)} in ` +
             `${parent ? parent.tagName.toLowerCase() + '.' + parent.className : ''}`);
    if (out.length >= 4) break;
  }
  return `${document.documentElement.scrollWidth}px wide: ${out.join('; ')}`;
}"""
# Every text a reader sees: visible text nodes and the words of labels, placeholders, titles
# and alternatives (code, <pre> and what is marked translate="no" are the reader's data).
VISIBLE_TEXT = """() => {
  const found = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest('script, style, noscript, template, code, pre, [translate=no]')) continue;
    // Text marked as another language (a customer's message in theirs) is not the page's.
    const marked = el.closest('[lang]');
    if (marked && marked.lang !== document.documentElement.lang) continue;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (text && el.checkVisibility()) found.add(text);
  }
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], img[alt]')) {
    if (el.closest('[translate=no]')) continue;
    for (const name of ['aria-label', 'placeholder', 'title', 'alt']) {
      const value = (el.getAttribute(name) || '').replace(/\\s+/g, ' ').trim();
      if (value) found.add(value);
    }
  }
  return [...found];
}"""
CATALOGUES = Path(__file__).parents[2] / "app" / "translations"
# Words of English that are not words of German, Norwegian, Polish or Hebrew: a text with two
# of them is English prose.
ENGLISH_WORDS = frozenset(
    "the and with your you this that from have been are were which would there their when "
    "what into after before should could nothing every has they them than then only about "
    "must please doesn't don't isn't can't here".split())
# English a translated page may show: names, codes and the book's own data (the sandbox's demo
# books and the objects _book_values adds).
ALLOWED = frozenset({"Dunwell", "Xero", "QuickBooks", "QuickBooks Online", "Stripe", "Twilio",
                     "Sam", "Call", "Reporting", "letter.pdf"})


@cache
def translated_msgids(language: str) -> frozenset[str]:
    """The catalogue's messages whose translation differs from the English: seen as they are
    on a page of `language`, they were left untranslated. Messages with placeholders are
    left to the word check (the page shows them filled in)."""
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=language)
    found: set[str] = set()
    for message in catalog:
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) \
            else list(message.string or ())
        for text in map(str, ids):
            if text and "%" not in text and text not in strings and text.strip() not in ALLOWED:
                found.add(text.strip())
    return frozenset(found)


# A message's placeholders (%(name)s, %s): what a page fills in; the words between are the
# message's own.
PLACEHOLDERS = re.compile(r"%\([A-Za-z_]\w*\)[-#0 +]*\d*(?:\.\d+)?[a-z]|%[sd]")


@cache
def english_phrases(language: str) -> re.Pattern[str] | None:
    """The words of each catalogue message whose translation differs, its longest run between
    placeholders (two words or more), as one pattern: found inside a text of a `language`
    page, the message was shown in English with its values filled in, or as part of a longer
    sentence (a provider failure's class inside the activity log's sentence). A run that the
    language's own translations contain as well is left out."""
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=language)
    translations = " \n ".join(
        str(text) for message in catalog if message.id
        for text in ([message.string] if isinstance(message.string, str)
                     else list(message.string or ())))
    phrases: set[str] = set()
    for message in catalog:
        ids = [message.id] if isinstance(message.id, str) else list(message.id or ())
        strings = [message.string] if isinstance(message.string, str) \
            else list(message.string or ())
        for text in map(str, ids):
            if not text or text in strings:
                continue
            run = max((part.strip(" .,:;()") for part in PLACEHOLDERS.split(text)), key=len)
            if (len(run) >= 8 and len(re.findall(r"[A-Za-z']+", run)) >= 2
                    and run not in translations and run not in ALLOWED):
                phrases.add(run)
    if not phrases:
        return None
    return re.compile("|".join(map(re.escape, sorted(phrases, key=len, reverse=True))))


def english_left(texts: list[str], language: str) -> list[str]:
    """The texts of a `language` page that are English: a message of the catalogue shown
    untranslated (whole, filled in or inside a longer text), or a text with two or more words
    only English has."""
    msgids = translated_msgids(language)
    phrases = english_phrases(language)
    left = []
    for text in texts:
        if text in ALLOWED:
            continue
        words = set(re.findall(r"[a-z']+", text.lower()))
        if (text in msgids or len(words & ENGLISH_WORDS) >= 2
                or (phrases is not None and phrases.search(text))):
            left.append(text[:100])
    return left


# Pages whose answer is a file, not a page.
DOWNLOADS = re.compile(r"\.(pdf|zip|json|csv)$|/export|/download|/case-file|/documents/"
                       r"|/attachment$")


def _book_values(app, org_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """An object of each kind in the book, so that every page has something to show."""
    from app.organisations.members import new_api_token
    from store import clock
    from store.db import db
    from store.models import (
        Action,
        ApiToken,
        CardPayment,
        Contact,
        Document,
        Invoice,
        Membership,
        Organisation,
        Task,
        User,
    )

    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(Invoice.org_id == org_id)
                                     .order_by(Invoice.id)).first()
        assert invoice is not None
        task = Task(org_id=org_id, invoice_id=invoice.id, assignee="Sam", title="Call")
        # A phone call as an escalation step opens it (collect/execute.open_call_task), for
        # the owner: worded in the reader's language from the stored title.
        call = Task(org_id=org_id, invoice_id=invoice.id, kind="call", assignee="the owner",
                    title=CALL_TITLE.format(name=invoice.contact.name, number=invoice.number,
                                            currency=invoice.currency,
                                            amount=invoice.amount_due, due=invoice.due_date))
        db.session.add_all([call, *_activity(org_id, invoice),
                            *_card_payments(org_id, invoice, CardPayment)])
        document = Document(org_id=org_id, invoice_id=invoice.id, kind="demand_letter_pdf",
                            filename="letter.pdf", content_type="application/pdf",
                            content=b"%PDF-1.7 letter")
        # Two actions wait for approval: one planned for a day gone by (it goes out when
        # approved), one ahead; the long reason must not push the decision off the page. The
        # first has its reason as rules/ give it (a code and its figures), the second only
        # the English sentence of an action planned before them (read back into figures).
        reason = (f"Reminder 2 of 4 (provider_email, firm): {invoice.number} 14 days overdue; "
                  "sent now at the request of accounts.receivable.team@example.com")
        waiting = [Action(org_id=org_id, invoice_id=invoice.id, key=f"every-page-{n}",
                          kind="reminder", scheduled_for=clock.now() + timedelta(days=days),
                          status=AWAITING_APPROVAL, amount=Decimal("-3.00"),
                          currency=invoice.currency, channel="provider_email", step_index=1,
                          step_count=4, reason=reason, details=details)
                   for n, days, details in (
                       (1, -2, {"why": {"code": "overdue", "days": 14},
                                "sent_now_by": "accounts.receivable.team@example.com"}),
                       (2, 3, None))]
        db.session.add_all([task, document, *waiting])
        db.session.commit()
        owner = db.session.scalars(select(Membership).where(Membership.org_id == org_id)).one()
        new_api_token(db.session.get(Organisation, org_id), db.session.get(User, owner.user_id),
                      "Reporting", clock.now())
        values = {
            "org_id": org_id, "invoice_id": invoice.id, "task_id": task.id,
            "document_id": document.id, "user_id": owner.user_id,
            "contact_id": db.session.scalar(select(Contact.id).where(Contact.org_id == org_id)
                                            .order_by(Contact.id).limit(1)),
            "token_id": db.session.scalar(select(ApiToken.id).where(ApiToken.org_id == org_id)),
            "action_id": db.session.scalar(select(Action.id).where(Action.org_id == org_id)
                                           .order_by(Action.id).limit(1)),
        }
        db.session.remove()
    assert all(values.values()), values
    return values


def _activity(org_id: int, invoice: Any) -> list[Any]:
    """Activity-log rows of the kinds a page words from parameters: card payments refunded
    and booked (one stored before the kind carried its parameters, read from its sentence),
    and provider failures by their class with the provider's own words under them."""
    from store import clock
    from store.models import AuditEvent

    about = {"key": f"{org_id}:{invoice.id}:reminder:0", "action": "reminder", "step": 0,
             "steps": 4, "channel": "provider_email"}
    rows = [
        ("card_payment_refunded", f"{invoice.currency} 25.00 of a card payment refunded "
         "through Stripe; the books' payment is taken off the invoice, which is chased again",
         {"card_payment_id": 1, "amount": "25.00", "currency": invoice.currency,
          "taken_off": True}),
        ("card_payment_booked", f"Card payment of {invoice.currency} 25.00 booked in the "
         f"books on {invoice.number}, with Stripe's fee of {invoice.currency} 0.95 as a bank "
         "fee", {"card_payment_id": 1, "books_payment_id": "p-1", "books_fee_id": "f-1"}),
        ("card_payment_not_booked", f"A card payment of {invoice.currency} 25.00 could not "
         "be booked in the books: Invoice not open. Book it there by hand (or refund it).",
         {"card_payment_id": 1, "amount": "25.00", "currency": invoice.currency,
          "refused": "Invoice not open"}),
        ("sync_failed", "Sync failed: HTTP 503 Service Unavailable",
         {"error": "HTTP 503 Service Unavailable", "error_class": "transient"}),
        ("action_failed", "Will retry: HTTP 502 Bad Gateway",
         {**about, "error": "HTTP 502 Bad Gateway", "error_class": "transient"}),
        ("action_dead", "Needs the owner: invalid_grant",
         {**about, "error": "invalid_grant", "error_class": "revoked"}),
        ("action_skipped", "Provider refused: Invoice not open",
         {**about, "reason": "rejected", "error": "Invoice not open",
          "error_class": "rejected"}),
        # A fee the law's tables could not charge: as a code with its figures, and as an
        # English sentence stored before (read back into them).
        ("needs_attention", f"{invoice.number}: fee 'interest' not charged: The GB "
         "statutory interest rate for 2026-07-01..2026-12-31 (12.00 % a year for business "
         "debts) is not yet confirmed by a second source: nothing is charged at that rate "
         "until an owner or admin confirms it or chooses the last verified rate.",
         {"problem": "fee_not_charged", "number": invoice.number, "rule": "interest",
          "code": "rate_unverified", "jurisdiction": "GB", "start": "2026-07-01",
          "end": "2026-12-31", "figure": "interest", "rate": "12.00"}),
        ("needs_attention", f"{invoice.number}: fee 'statutory' not charged: There is no GB "
         "statutory interest rate for 2027-01-01..2027-06-30 yet, so nothing is charged for "
         "it.", None),
    ]
    return [AuditEvent(org_id=org_id, kind=kind, message=message, data=data,
                       invoice_id=invoice.id, at=clock.now()) for kind, message, data in rows]


def _card_payments(org_id: int, invoice: Any, card_payment: Any) -> list[Any]:
    """A card payment the books refused to book and one the card issuer declined: the
    settings page words each failure, the provider's own message quoted under it."""
    common = {"org_id": org_id, "invoice_id": invoice.id, "contact_id": invoice.contact_id,
              "currency": invoice.currency, "amount": Decimal("25.00")}
    return [card_payment(**common, status="paid", received=Decimal("25.00"),
                         booking_error="Invoice not open"),
            card_payment(**common, status="failed", failure="Your card was declined.")]


# The statutory calculator asked (its answer in the reader's language) and asked with the
# amount and the dates left blank (a message naming them).
CALCULATOR = ("/fees/quote?jurisdiction=GB&amount=2500&currency=GBP&due=2025-01-15"
              "&as_of=2025-06-30",
              "/fees/quote?jurisdiction=GB&amount=&currency=GBP&due=&as_of=")


def _signed_up(app, web, page) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """A Xero book signed up for, live and synced; the GET pages of its routes to visit."""
    page.goto(f"{web.url}/signin")
    page.get_by_role("link", name="Sign up with Xero").click()
    page.locator("input[name=tenant]").first.check()
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_url(re.compile(r"/orgs/\d+/dashboard$"))
    org_id = int(re.search(r"/orgs/(\d+)/", page.url).group(1))
    # A new book starts in review: the owner goes live on its setup page first.
    page.goto(f"{web.url}/orgs/{org_id}/setup")
    page.get_by_role("button", name="Go live").click()
    page.wait_for_url(f"{web.url}/orgs/{org_id}")
    run_jobs_off_the_page(app, page)
    values = _book_values(app, org_id)
    pages = sorted({p.url for p in probes(app, values, {"GET"})
                    if not p.url.startswith(("/api/", "/webhooks/", "/static/", "/signout",
                                             "/signin/", "/signup/", "/invitations/", "/connect",
                                             "/launch", "/password-reset/", "/demo/",
                                             # a customer's portal needs their link:
                                             # tests/browser/test_portal_phone.py
                                             "/portal/"))
                    and not DOWNLOADS.search(p.url)})
    assert f"/orgs/{org_id}/dashboard" in pages and f"/orgs/{org_id}/settings" in pages
    return org_id, pages + [f"/orgs/{org_id}{asked}" for asked in CALCULATOR]


# One test per language, so that the five can run on different workers; each signs up anew.
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_answers_passes_axe_and_takes_the_keyboard(  # type: ignore[no-untyped-def]
        app, web, page, language: str) -> None:
    org_id, pages = _signed_up(app, web, page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{web.url}/orgs/{org_id}/dashboard")
    page.locator("#language-choice").select_option(language)
    page.locator(".language button").click()
    expect(page.locator("html")).to_have_attribute("lang", language)

    # Every page answers. Then, at a desktop's width and a phone's, on the same page load for
    # every check: no page is wider than the window (a right-to-left page wider than the
    # window opens scrolled to a blank stretch; a phone page wider than the phone scrolls
    # sideways), Hebrew runs right to left; at 1280 px each passes axe, in English each takes
    # the keyboard, and in the other four no English is left untranslated.
    problems: dict[str, list[str]] = {}
    too_wide: dict[str, str] = {}
    untranslated: dict[str, list[str]] = {}
    direction = "rtl" if language == "he" else "ltr"
    visited: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        desktop = width == WIDTHS[0]
        for url in pages if desktop else visited:
            answer = page.goto(f"{web.url}{url}")
            if desktop:
                assert answer is not None
                if not answer.headers.get("content-type", "").startswith("text/html"):
                    continue
                if answer.status >= 400:
                    problems[url] = [f"answered {answer.status}"]
                    continue
                visited.append(url)
            assert page.locator("html").get_attribute("dir") == direction, url
            wider = page.evaluate(OVERFLOW_CHECK)
            if wider:
                too_wide[f"{language} {width}px {url}"] = wider
            if desktop:
                _seeded_texts_shown(page, url, org_id)
                found = axe_problems(page)
                if language == "en":
                    found += [f"not focusable: {html}" for html in page.evaluate(FOCUS_CHECK)]
                    screenshot(page, "page" + re.sub(r"[^a-z0-9]+", "_", url.lower()))
                else:
                    english = english_left(page.evaluate(VISIBLE_TEXT), language)
                    if english:
                        untranslated[f"{language} {url}"] = english
                if found:
                    problems[url if language == "en" else f"{language} {url}"] = found
            if language in SCREENSHOT_LANGUAGES and _main_page(url, org_id):
                screenshot(page, f"{language}/{width}"
                           + re.sub(r"[^a-z0-9]+", "_", url.lower()))
        if desktop:
            assert len(visited) >= 10, visited
    assert too_wide == {}
    assert problems == {}
    assert untranslated == {}, "\n".join(f"{page}: {texts}"
                                          for page, texts in untranslated.items())


def _seeded_texts_shown(page: Any, url: str, org_id: int) -> None:
    """The seeded data is on its pages, so the English check has the texts to read: the
    calculator's answer and its blank fields, the call task, the provider failures quoted."""
    if url == f"/orgs/{org_id}{CALCULATOR[0]}":
        expect(page.locator("#quote-interest-total")).to_be_visible()
    elif url == f"/orgs/{org_id}{CALCULATOR[1]}":
        expect(page.locator("#quote-missing")).to_be_visible()
    elif url == f"/orgs/{org_id}":
        # Four of the seeded failures quote the provider's words, each isolated.
        assert page.locator("q.detail bdi[dir=ltr]").count() >= 4
    elif url == f"/orgs/{org_id}/card-payments":
        assert page.locator("q.detail").count() >= 2
    elif re.fullmatch(rf"/orgs/{org_id}/invoices/\d+", url):  # the seeded invoice's page
        # Its card payments: the failures worded, the processor's words quoted; the reasons
        # of its actions waiting for approval, worded.
        assert page.locator(".card-payment q.detail").count() >= 2
        assert page.locator(".timeline .reason").count() >= 2
    elif url == f"/orgs/{org_id}/settings/approvals":
        assert page.locator(".reason").count() >= 2  # the reasons are shown, worded


# The seeded call task's title, as collect/execute.open_call_task stores it.
CALL_TITLE = "Call {name} about {number}: {currency} {amount} due since {due}"


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_the_english_check_knows_each_seeded_text_in_english(language: str) -> None:
    """Without a browser: the seeded activity, call task and reasons worded in English are
    each caught by the English check of a `language` page, and worded in `language` none is
    (the provider's own words, marked as English on the page, left out as the page does)."""
    from flask import Flask
    from flask_babel import Babel

    from app.events import action_reason, call_title, render_event_html
    from app.languages import init_languages

    web = Flask(__name__)
    web.config["SECRET_KEY"] = "test"
    init_languages(web, Babel())
    invoice = SimpleNamespace(id=1, number="INV-0001", currency="GBP", contact_id=1,
                              amount_due=Decimal("100.00"), due_date=date(2026, 11, 2),
                              contact=SimpleNamespace(name="Ada"))
    title = CALL_TITLE.format(name="Ada", number=invoice.number, currency=invoice.currency,
                              amount=invoice.amount_due, due=invoice.due_date)
    waiting = SimpleNamespace(kind="reminder", reason="", details={
        "why": {"code": "overdue", "days": 14}, "sent_now_by": "sam@example.com"})

    def worded(reader: str) -> list[str]:
        with web.test_request_context("/", headers={"Accept-Language": reader}):
            return [html.unescape(re.sub(r'<q class="detail">.*?</q>', "",
                                         str(render_event_html(event))))
                    for event in _activity(1, invoice)] + [
                call_title(title), action_reason(waiting)]

    english, translated = worded("en"), worded(language)
    assert len(english) == 11
    assert [text for text in english if not english_left([text], language)] == []
    assert [text for text in translated if english_left([text], language)] == []


def _main_page(url: str, org_id: int) -> bool:
    return url in {f"/orgs/{org_id}{tail}"
                   for tail in (*MAIN_PAGES, *CALCULATOR, "/card-payments")}
