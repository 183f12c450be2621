"""Statutory interest is never silently dead, and said so in plain words (issue 22, point 7):
the statutory-interest calculator and the policy's validation errors, in each of the five
interface languages, name the unverified period and point to the confirm in Dunwell, never a
rate file or a command-line option; once an owner confirms the rate, the calculator uses it.
`dunwell rates status`, for whoever runs the service, still names the files."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest

from tests.integration import flows
from tests.integration.conftest import connect, run_jobs

pytestmark = pytest.mark.db

STATUTORY = {"version": 2, "reminder_steps": [{"offset_days": 7}],
             "late_fees": [{"id": "statutory", "rule": {"kind": "statutory_interest",
                                                         "jurisdiction": "GB"}}]}
# GBP 10,000 due 30 Sep 2026, as of 31 Oct 2026: in the GB table's unverified Jul-Dec 2026 row.
UNVERIFIED = {"jurisdiction": "GB", "amount": "10000", "currency": "GBP", "due": "2026-09-30",
              "as_of": "2026-10-31"}
# The unverified period in each language's own words: the jurisdiction, its rate, and the
# confirm in the notice above (this organisation's policy charges GB statutory interest).
SAID = {
    "en": ("is not yet confirmed by a second source", "in the notice above", "11.75%"),
    "de": ("noch nicht durch eine zweite Quelle bestätigt", "im Hinweis oben", "11,75"),
    "nb": ("ennå ikke bekreftet av en annen kilde", "i meldingen ovenfor", "11,75"),
    "pl": ("nie została jeszcze potwierdzona przez drugie źródło", "w komunikacie powyżej",
           "11,75"),
    "he": ("טרם אומת ממקור שני", "בהודעה שלמעלה", "11.75"),
}
OPERATOR_WORDS = re.compile(r"rules/rates|\.json|allow.unverified|--[a-z]|rates-dir|tables=")


def refusal(page: str) -> str:
    found = re.search(r'<p class="field-error" role="alert" id="quote-refusal">(.*?)</p>', page,
                      re.S)
    assert found, "the calculator gives no reason"
    return html.unescape(found.group(1))


def test_the_calculator_and_the_policy_say_it_in_the_readers_words(app, web, clock) -> None:  # type: ignore[no-untyped-def]
    from app.settings.services import save_policy
    from rules import policy_from_json
    from store.db import db
    from store.models import Organisation

    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    connected = connect(app, web, "xero", live=False)
    run_jobs(app)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        save_policy(org, "the test", policy_from_json(STATUTORY), clock())
    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}"

    for language, (unconfirmed, where, rate) in SAID.items():
        page = http.get(f"{base}/fees/quote", params=UNVERIFIED,
                        headers={"Accept-Language": language}).text
        said = refusal(page)
        assert unconfirmed in said and where in said and rate in said, (language, said)
        assert "GB" in said and not OPERATOR_WORDS.search(said), said
        assert not OPERATOR_WORDS.search(html.unescape(re.sub(r"<[^>]+>", " ", page)))
        # The notice it points to is on the page, with its buttons.
        assert 'id="rate-GB-2026-07-01"' in page and 'value="confirmed"' in page

    # Other refusals: a period without a row, a country without rates, an amount that is none.
    page = http.get(f"{base}/fees/quote", params={**UNVERIFIED, "due": "2026-12-31",
                                                  "as_of": "2027-01-10"}).text
    assert refusal(page).startswith("Dunwell has no GB statutory interest rate for")
    page = http.get(f"{base}/fees/quote", params={**UNVERIFIED, "jurisdiction": "XX"},
                    headers={"Accept-Language": "de"}).text
    assert refusal(page) == ("Dunwell hat keine gesetzlichen Sätze für XX. Es hat sie für DE,"
                             " EU, GB, NO, PL.")
    page = http.get(f"{base}/fees/quote", params={**UNVERIFIED, "amount": "ten pounds"}).text
    assert refusal(page) == ("Enter the amount as digits, like 10000 or 2500.50, without"
                             " thousands separators.")
    for text in (refusal(page),):
        assert not OPERATOR_WORDS.search(text)

    # The policy's own validation: a statutory rule for a country without rates, in German.
    settings = http.get(f"{base}/settings", headers={"Accept-Language": "de"}).text
    form = {**flows.policy_form(settings), "late_fees.0.id": "statutory",
            "late_fees.0.kind": "statutory_interest", "late_fees.0.jurisdiction": "XX"}
    refused = http.post(f"{base}/settings", data=form, headers={"Accept-Language": "de"})
    assert refused.status_code == 422
    shown = html.unescape(refused.text)
    assert "Dunwell hat keine gesetzlichen Sätze für XX. Es hat sie für DE, EU, GB, NO, PL." \
        in shown
    refused = http.post(f"{base}/settings", data={**form, "late_fees.0.jurisdiction": "GBR"})
    assert refused.status_code == 422 and "Two letters, e.g. GB or DE." in refused.text
    assert not OPERATOR_WORDS.search(html.unescape(re.sub(r"<[^>]+>", " ", refused.text)))

    # The activity log says why nothing was charged in plain words too.
    page = html.unescape(re.sub(r"<[^>]+>", " ", http.get(base).text))
    assert not OPERATOR_WORDS.search(page)

    # The owner confirms the rate in Dunwell: the calculator uses it from then on.
    csrf = flows.csrf_token(http.get(f"{base}/fees/quote").text)
    done = http.post(f"{base}/setup/rate", data={"csrf_token": csrf, "jurisdiction": "GB",
                                                 "start": "2026-07-01", "choice": "confirmed"})
    assert done.status_code == 200
    page = http.get(f"{base}/fees/quote", params=UNVERIFIED,
                    headers={"Accept-Language": "en-GB"}).text
    assert 'id="quote-refusal"' not in page
    interest = html.unescape(re.search(r'id="quote-interest-total">(.*?)</p>', page,
                                       re.S).group(1))
    assert "£99.79" in interest  # 10,000 x 11.75 % x 31 / 365


def test_rates_status_still_names_the_files_for_the_operator(app, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    result = app.test_cli_runner().invoke(args=["rates", "status"])
    assert result.exit_code == 0, result.output
    assert "GB 2026-07-01..2026-12-31: needs a check" in result.output
    assert "rules/rates/gb.json" in result.output
