"""What went wrong, in the reader's language: a provider failure by its class with the
provider's own words quoted and isolated under it, card payments refunded and booked from
their parameters, a fee the law's tables could not charge (rules/ give a code and figures),
and a phone-call task's title; rows stored before the kinds carried parameters are read from
their sentences where they parse, and shown as stored where they do not."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask_babel import Babel

from app.events import action_reason, call_title, render_event, render_event_html, task_title
from app.languages import init_languages
from connectors.base import (
    AuthorizationRevoked,
    ConfigurationError,
    DailyLimitReached,
    EditRefused,
    MalformedAnswer,
    NotFound,
    ProviderRejected,
    RateLimited,
    TransientError,
    error_class,
)
from rules.engine import FeeNotCharged
from rules.reminders import standing
from rules.statutory import FxRateRequired, NotApplicable, RateNotCovered, RateUnverified

LRI, PDI = "\u2066", "\u2069"
UK = SimpleNamespace(country="GB", timezone="Europe/London")


@pytest.fixture(scope="module")
def web() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test"
    init_languages(app, Babel())
    return app


def _in(web: Flask, language: str, kind: str, message: str,
        data: dict[str, Any] | None, markup: bool = False) -> str:
    event = SimpleNamespace(kind=kind, message=message, data=data)
    with web.test_request_context("/", headers={"Accept-Language": language}):
        return render_event_html(event, UK) if markup else render_event(event, UK)


def test_each_failure_has_a_class_the_pages_word() -> None:
    assert [error_class(e) for e in (
        AuthorizationRevoked("x"), ConfigurationError("x"), DailyLimitReached("x", 1),
        RateLimited("x", 1), TransientError("x"), NotFound("x"), EditRefused("x"),
        ProviderRejected("x"), MalformedAnswer("x"), ValueError("x"))] == [
        "revoked", "configuration", "daily_limit", "rate_limited", "transient", "not_found",
        "edit_refused", "rejected", "malformed", "other"]


def test_a_failed_sync_says_its_class_and_quotes_the_provider(web: Flask) -> None:
    data = {"error": "HTTP 503 <b>Service Unavailable</b>", "error_class": "transient"}
    german = _in(web, "de", "sync_failed", "Sync failed: HTTP 503", data)
    assert german == ("Synchronisierung fehlgeschlagen: die Buchhaltung hat nicht rechtzeitig "
                      "geantwortet oder einen eigenen Fehler gemeldet. \u201c"
                      f"{LRI}HTTP 503 <b>Service Unavailable</b>{PDI}\u201d")
    # On a page: the provider's words escaped, in an isolated left-to-right <bdi>.
    page = _in(web, "he", "sync_failed", "Sync failed: HTTP 503", data, markup=True)
    assert page.startswith("הסנכרון נכשל: הנהלת החשבונות לא ענתה בזמן")
    assert page.endswith('<q class="detail"><bdi dir="ltr" lang="en">HTTP 503 &lt;b&gt;'
                         "Service Unavailable&lt;/b&gt;</bdi></q>")
    # A row stored before failures were classed: only the provider's words, quoted.
    old = _in(web, "nb", "sync_failed", "Sync failed: timeout", {"error": "timeout"})
    assert old == f"Synkroniseringen mislyktes. \u201c{LRI}timeout{PDI}\u201d"


def test_an_action_that_failed_or_was_given_up_says_why(web: Flask) -> None:
    about = {"key": "1:2:reminder:0", "action": "reminder", "step": 0, "steps": 4,
             "channel": "provider_email"}
    failed = _in(web, "de", "action_failed", "Will retry: HTTP 502",
                 {**about, "error": "HTTP 502", "error_class": "transient"})
    assert failed.startswith("Erinnerung 1 von 4 fehlgeschlagen; wird erneut versucht: die "
                             "Buchhaltung hat nicht rechtzeitig")
    dead = _in(web, "pl", "action_dead", "Needs the owner: invalid_grant",
               {**about, "error": "invalid_grant", "error_class": "revoked"})
    assert "wymaga właściciela: system księgowy nie akceptuje już dostępu Dunwell" in dead
    skipped = _in(web, "de", "action_skipped", "Provider refused: Invoice not open",
                  {**about, "reason": "rejected", "error": "Invoice not open",
                   "error_class": "rejected"})
    assert skipped == ("Erinnerung 1 von 4 nicht ausgeführt: die Buchhaltung hat es "
                       f"abgelehnt. \u201c{LRI}Invoice not open{PDI}\u201d")


def test_card_payments_refunded_and_booked_read_from_their_parameters(web: Flask) -> None:
    refunded = {"card_payment_id": 1, "amount": "25.00", "currency": "GBP"}
    assert _in(web, "de", "card_payment_refunded", "GBP 25.00 of a card payment ...",
               {**refunded, "taken_off": True}) == (
        "25,00\xa0£ einer Kartenzahlung über Stripe erstattet; die Zahlung in der Buchhaltung "
        "wird von der Rechnung genommen, die wieder gemahnt wird")
    assert "bleibt, bis die Erstattung dort erfasst ist" in _in(
        web, "de", "card_payment_refunded", "...", {**refunded, "taken_off": False})
    # Stored before the kind carried its parameters: read from the sentence.
    assert _in(web, "de", "card_payment_refunded",
               "GBP 25.00 of a card payment refunded through Stripe; the books' payment stays "
               "until the refund is recorded there", {"card_payment_id": 1}).startswith(
        "25,00\xa0£ einer Kartenzahlung über Stripe erstattet; die Zahlung in der "
        "Buchhaltung bleibt")

    booked = {"card_payment_id": 1, "amount": "25.00", "currency": "GBP", "number": "INV-7"}
    assert _in(web, "de", "card_payment_booked", "...", booked) == \
        "Kartenzahlung über 25,00\xa0£ in der Buchhaltung auf INV-7 gebucht"
    assert _in(web, "de", "card_payment_booked", "...", {**booked, "fee": "0.95"}) == (
        "Kartenzahlung über 25,00\xa0£ in der Buchhaltung auf INV-7 gebucht, mit der "
        "Stripe-Gebühr von 0,95\xa0£ als Bankgebühr")
    refused = _in(web, "he", "card_payment_booked", "...",
                  {**booked, "fee": "0.95", "fee_refused": "Account locked"}, markup=True)
    assert f"{LRI}0.95\xa0£{PDI} לא נרשמה" in refused
    assert '<bdi dir="ltr" lang="en">Account locked</bdi>' in refused
    for old, german in [
            ("Card payment of GBP 25.00 booked in the books on INV-7",
             "Kartenzahlung über 25,00\xa0£ in der Buchhaltung auf INV-7 gebucht"),
            ("Card payment of GBP 25.00 booked in the books on INV-7, with Stripe's fee of "
             "GBP 0.95 as a bank fee", "mit der Stripe-Gebühr von 0,95\xa0£ als Bankgebühr"),
            ("Card payment of GBP 25.00 booked in the books on INV-7; its fee of GBP 0.95 was "
             "not booked: Account locked", "ihre Gebühr von 0,95\xa0£ wurde nicht gebucht: "
             f"\u201c{LRI}Account locked{PDI}\u201d")]:
        assert german in _in(web, "de", "card_payment_booked", old,
                             {"card_payment_id": 1, "books_payment_id": "p"})
    # A sentence of no known shape is shown as stored.
    assert _in(web, "de", "card_payment_booked", "Booked by hand", {"card_payment_id": 1}) == \
        "Booked by hand"


def test_a_fee_the_tables_could_not_charge_is_a_code_with_figures(web: Flask) -> None:
    missing = FeeNotCharged("INV-7", "interest", RateNotCovered(
        "add rows to gb.json", jurisdiction="GB", start=date(2026, 7, 1),
        end=date(2026, 12, 31)))
    assert str(missing) == ("INV-7: fee 'interest' not charged: There is no GB statutory "
                            "interest rate for 2026-07-01..2026-12-31 yet, so nothing is "
                            "charged for it.")
    assert missing.facts() == {"problem": "fee_not_charged", "number": "INV-7",
                               "rule": "interest", "code": "rate_missing",
                               "jurisdiction": "GB", "start": "2026-07-01",
                               "end": "2026-12-31", "figure": "interest"}
    unverified = FeeNotCharged("INV-7", "interest", RateUnverified(
        "x", jurisdiction="GB", start=date(2026, 7, 1), end=date(2026, 12, 31),
        rate=Decimal("12.50")))
    assert unverified.facts()["code"] == "rate_unverified"
    assert unverified.facts()["rate"] == "12.50"
    assert FeeNotCharged("INV-7", "x", NotApplicable("x", jurisdiction="XX", known=(
        "DE", "GB"))).facts()["known"] == "DE, GB"
    assert FeeNotCharged("INV-7", "x", FxRateRequired(
        "x", why="w", source="EUR", target="GBP")).facts()["code"] == "fx_rate"

    german = _in(web, "de", "needs_attention", str(missing), missing.facts())
    assert german.startswith("INV-7: Die Gebühr interest wurde nicht berechnet. Dunwell hat "
                             "noch keinen gesetzlichen Zinssatz")
    assert "01.07.2026" in german and "31.12.2026" in german
    assert "12,5" in _in(web, "de", "needs_attention", str(unverified), unverified.facts())
    # Stored before the row carried figures: read from the English.
    assert _in(web, "de", "needs_attention", str(missing), None) == german
    assert "12,5" in _in(web, "de", "needs_attention", str(unverified), None)
    # A refusal without figures is shown as stored.
    other = FeeNotCharged("INV-7", "x", NotApplicable("consumer debt"))
    assert _in(web, "de", "needs_attention", str(other), other.facts()) == str(other)


def test_a_call_tasks_title_is_worded_for_the_reader(web: Flask) -> None:
    stored = "Call Ada Lovelace about INV-7: GBP 1480.00 due since 2026-11-03"
    with web.test_request_context("/", headers={"Accept-Language": "de"}):
        assert call_title(stored, UK) == ("Ada Lovelace wegen INV-7 anrufen: 1.480,00\xa0£ "
                                          "fällig seit 03.11.2026")
        assert call_title("Call the customer about INV-7: GBP 5.00 due since 2026-11-03",
                          UK) == ("Die Kundin bzw. den Kunden wegen INV-7 anrufen: 5,00\xa0£ "
                                  "fällig seit 03.11.2026")
        assert task_title(SimpleNamespace(kind="call", title="Ring Ada"), UK) == "Ring Ada"
    with web.test_request_context("/", headers={"Accept-Language": "he"}):
        assert call_title(stored, UK) == (f"להתקשר אל Ada Lovelace בנוגע ל-INV-7: "
                                          f"{LRI}1,480.00\xa0£{PDI} לתשלום מאז "
                                          f"{LRI}3.11.2026{PDI}")
    # The activity log's "task done" words the title the same way.
    assert _in(web, "de", "task_done", f"{stored}: done by sam@example.com",
               {"task_id": 1, "note": "", "title": stored, "by": "sam@example.com"}).startswith(
        "Ada Lovelace wegen INV-7 anrufen")


def test_a_reminders_reason_is_a_code_worded_for_the_reader(web: Flask) -> None:
    assert [standing(days) for days in (-3, 0, 1, 14)] == [
        {"code": "due_in", "days": 3}, {"code": "due_today", "days": 0},
        {"code": "overdue", "days": 1}, {"code": "overdue", "days": 14}]

    def reason(kind: str, stored: str, details: dict[str, Any] | None = None,
               language: str = "de") -> str:
        action = SimpleNamespace(kind=kind, reason=stored, details=details)
        with web.test_request_context("/", headers={"Accept-Language": language}):
            return action_reason(action, UK)

    assert reason("reminder", "...", {"why": {"code": "overdue", "days": 14},
                                      "sent_now_by": "sam@example.com"}) == \
        "14 Tage überfällig; jetzt gesendet auf Wunsch von sam@example.com"
    assert reason("reminder", "...", {"why": {"code": "due_in", "days": 3}}, "pl") == \
        "wymagalne za 3 dni"
    assert reason("call_task", "...", {"why": {"code": "overdue_unpaid", "days": 30,
                                               "amount": "1480.00", "currency": "GBP"}}) == \
        "30 Tage oder mehr überfällig, 1.480,00\xa0£ unbezahlt"
    assert reason("reminder", "...", {"why": {"code": "promise_broken",
                                              "pay_by": "2026-12-04"}}, "he") == \
        f"ההבטחה של הלקוח לשלם עד {LRI}4.12.2026{PDI} הופרה"
    # Actions planned before the codes: their English read back where it parses.
    assert reason("reminder", "Reminder 2 of 4 (provider_email, firm): INV-7 1 day overdue") \
        == "1 Tag überfällig"
    assert reason("reminder", "Repeat reminder 2 (provider_email, final): INV-7 due today; "
                  "sent now at the request of sam@example.com") == \
        "heute fällig; jetzt gesendet auf Wunsch von sam@example.com"
    assert reason("demand_letter", "Demand letter: INV-7 is 45+ days overdue with 1,480.00 "
                  "GBP unpaid") == "45 Tage oder mehr überfällig, 1.480,00\xa0£ unbezahlt"
    assert reason("reminder", "Promise broken: INV-7 was promised to be paid by "
                  "2026-12-04") == "das Zahlungsversprechen bis 04.12.2026 wurde nicht eingehalten"
    # Kinds whose figures rules/ give in their details.
    assert reason("plan_instalment", "...", {"instalment": 2, "instalments": 4,
                                             "instalment_due": "2026-12-15"}) == \
        "Rate 2 von 4, fällig am 15.12.2026"
    assert reason("deposit_reminder", "...", {"milestone": 1, "milestones": 3,
                                              "percent": "30", "milestone_due": "2026-12-15"},
                  "he") == (f"מקדמה {LRI}1{PDI} מתוך {LRI}3{PDI} ({LRI}30%{PDI}), לתשלום ב-"
                            f"{LRI}15.12.2026{PDI}")
    retainer = SimpleNamespace(kind="retainer_top_up", reason="...", currency="GBP",
                               details={"balance": "120.00", "threshold": "500.00"})
    with web.test_request_context("/", headers={"Accept-Language": "nb"}):
        assert action_reason(retainer, UK) == \
            "saldoen på forskuddet, 120,00\xa0£, er under 500,00\xa0£"
    # The rest as stored; kinds whose reasons are not codes yet show none.
    assert reason("interest", "...", {"rule_id": "statutory", "period_start": "2026-12-01",
                                      "period_end": "2026-12-31"}) == \
        "01.12.2026 bis 31.12.2026, berechnet nach der Regel statutory der Richtlinie"
    assert reason("fee", "...", {"rule_id": "late"}) == \
        "berechnet nach der Regel late der Richtlinie"
    assert reason("discount", "...", {"percent": "2"}, "pl") == "2% rabatu za wcześniejszą zapłatę"
    assert reason("reminder", "Second reminder, firm tone") == "Second reminder, firm tone"
    assert reason("fee", "Flat late fee (INV-7)") == "Flat late fee (INV-7)"
    assert reason("statement", "Statement for 2026-12 to Ada") == ""
