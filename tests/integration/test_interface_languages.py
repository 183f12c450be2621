"""Pages in each interface language, chosen as a visitor does: the switcher in the top bar.

The catalogues' own test proves every string is translated; this one proves the app picks the
catalogue up, keeps the choice across requests, turns Hebrew pages right-to-left, and writes
money and dates the reader's way.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user

pytestmark = pytest.mark.db

# One string per page, as each catalogue translates it: the sign-in heading, the organisations
# heading and button (organisations/index.html), the 404 heading (error.html).
EXPECTED = {
    "en": ("Sign in to Dunwell", "Your organisations", "Connect QuickBooks", "Not found"),
    "de": ("Bei Dunwell anmelden", "Ihre Organisationen", "QuickBooks verbinden",
           "Nicht gefunden"),
    "nb": ("Logg inn på Dunwell", "Organisasjonene dine", "Koble til QuickBooks", "Ikke funnet"),
    "pl": ("Zaloguj się do Dunwell", "Twoje organizacje", "Połącz z QuickBooks",
           "Nie znaleziono"),
    "he": ("התחברות ל-Dunwell", "הארגונים שלך", "חיבור ל-QuickBooks", "לא נמצא"),
}


def choose_language(client: FlaskClient, language: str, back_to: str) -> str:
    page = client.get(back_to)
    answer = client.post("/language", data={"csrf_token": flows.csrf_token(page.text),
                                            "language": language, "next": back_to},
                         follow_redirects=True)
    assert answer.status_code == 200
    return answer.text


def html_tag(language: str) -> str:
    return f'<html lang="{language}" dir="{"rtl" if language == "he" else "ltr"}">'


def test_each_language_is_chosen_kept_and_shown_with_its_direction(app) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    client = app.test_client()
    for language, (sign_in, _heading, _button, not_found) in EXPECTED.items():
        page = choose_language(client, language, "/signin")
        assert html_tag(language) in page and sign_in in page, language
        assert "Sign in to Dunwell" not in page or language == "en"
        missing = client.get("/no-such-page")
        assert missing.status_code == 404
        assert html_tag(language) in missing.text and not_found in missing.text, language

    # Signing in starts a fresh session; the organisations page then follows each choice.
    page = client.get("/signin")
    signed_in = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                             "email": EMAIL, "password": PASSWORD},
                            follow_redirects=True)
    assert signed_in.status_code == 200
    for language, (_sign_in, heading, button, _not_found) in EXPECTED.items():
        page = choose_language(client, language, "/orgs")
        assert html_tag(language) in page and heading in page and button in page, language
        again = client.get("/orgs")  # the choice lives in the session, not in the request
        assert html_tag(language) in again.text and heading in again.text


def test_money_and_dates_follow_the_reader_language(app) -> None:  # type: ignore[no-untyped-def]
    from app.languages import day, money

    amount, when = Decimal("1234.50"), date(2026, 11, 23)
    written = {}
    for language in EXPECTED:
        with app.test_request_context("/", headers={"Accept-Language": language}):
            written[language] = (money(amount, "EUR"), day(when))
    # CLDR's spaces are no-break or narrow no-break ones: \s matches both.
    assert re.fullmatch(r"€1,234\.50", written["en"][0]) and written["en"][1] == "11/23/2026"
    assert re.fullmatch(r"1\.234,50\s€", written["de"][0]) and written["de"][1] == "23.11.2026"
    assert re.fullmatch(r"1\s234,50\s€", written["nb"][0]) and written["nb"][1] == "23.11.2026"
    assert re.fullmatch(r"1\s?234,50\s€", written["pl"][0]) and written["pl"][1] == "23.11.2026"
    assert "1,234.50" in written["he"][0] and "€" in written["he"][0]
    assert "23.11.2026" in written["he"][1]
    # The reader's region, where the browser names one: British and American English differ.
    moment = datetime(2026, 11, 25, 9, 0)
    for header, expected in (("en-GB,en;q=0.8", "25/11/2026"), ("en-US,en;q=0.8", "11/25/2026"),
                             ("en", "11/25/2026"), ("nb-NO,no;q=0.9", "25.11.2026")):
        with app.test_request_context("/", headers={"Accept-Language": header}):
            assert day(moment.date()) == day(moment) == expected, header


def test_a_chosen_language_is_the_pages_again_after_signing_in_from_another_browser(app) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import User

    create_user(app)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9"

    def sign_in() -> str:
        page = client.get("/signin")
        answer = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                              "email": EMAIL, "password": PASSWORD},
                             follow_redirects=True)
        assert answer.status_code == 200
        return answer.text

    sign_in()
    choose_language(client, "pl", "/orgs")
    with app.app_context():
        assert db.session.scalar(select(User.language).where(User.email == EMAIL)) == "pl"
    orgs = client.get("/orgs").text
    signed_out = client.post("/signout", data={"csrf_token": flows.csrf_token(orgs)},
                             follow_redirects=True)
    # Signed out, the pages follow the browser again.
    assert html_tag("de") in signed_out.text and EXPECTED["de"][0] in signed_out.text

    # Signed in, they are in the language Dunwell's emails to the owner are written in.
    page = sign_in()
    _sign_in, heading, button, _not_found = EXPECTED["pl"]
    assert html_tag("pl") in page and heading in page and button in page
    again = client.get("/orgs").text
    assert html_tag("pl") in again and heading in again
