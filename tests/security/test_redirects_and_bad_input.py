"""Issue 21, point 4: `/signin?next=/%09/evil.example/` answered `Location: //evil.example/`
(the check ran before the tab was dropped), the language form's `next` likewise, and a newline
in `next` gave a 500 after sign-in. Point 8: ids beyond 64 bits in a URL (OverflowError), deeply
nested JSON in the credit form (RecursionError) and control characters in `next` answered 500.
Redirects are never followed here: the Location header is the answer."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs
from tests.security.conftest import fingerprint
from tests.security.routes import STATE_CHANGING, probes

pytestmark = pytest.mark.db

# (what `next` is, as typed into the URL) — each must not leave the site.
HOSTILE_NEXT = [
    "/%09/evil.example/", "/%0a/evil.example/", "/%0d%0a/evil.example/", "%09//evil.example/",
    "//evil.example/", "/\\evil.example/", "\\\\evil.example/", "/%5Cevil.example/",
    "https://evil.example/", "https:evil.example", "%20//evil.example/", "/%00/evil.example/",
    "javascript:alert(1)", "/%E2%80%A8/evil.example/", "%0b//evil.example/",
    "/%7F/evil.example/", "%2F%2Fevil.example%2F", "///evil.example/",
]


def _is_same_origin_path(location: str) -> bool:
    """What a browser would do with the Location: stay on this site."""
    cleaned = "".join(c for c in location.strip("".join(map(chr, range(33))))
                      if c not in "\t\n\r").replace("\\", "/")
    parts = urlsplit(cleaned)
    return cleaned.startswith("/") and not cleaned.startswith("//") and \
        not parts.scheme and not parts.netloc


def _sign_in(client, next_value: str):  # type: ignore[no-untyped-def]
    page = client.get("/signin")
    return client.post(f"/signin?next={next_value}", data={
        "csrf_token": flows.csrf_token(page.get_data(as_text=True)),
        "email": EMAIL, "password": PASSWORD})


def test_sign_in_and_language_redirects_stay_on_the_site(app) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    app.config["SIGN_IN_RATE_LIMIT"] = False  # many sign-ins in a row, all succeeding
    for value in HOSTILE_NEXT:
        answer = _sign_in(app.test_client(), value)
        assert answer.status_code == 302, (value, answer.status_code)
        assert _is_same_origin_path(answer.headers["Location"]), (value, answer.headers)
        client = app.test_client()
        page = client.get("/signin")
        language = client.post("/language", data={
            "csrf_token": flows.csrf_token(page.get_data(as_text=True)), "language": "de",
            "next": unquote(value)})  # the characters themselves, as a form posts them
        assert language.status_code == 302, value
        assert _is_same_origin_path(language.headers["Location"]), (value, language.headers)
    # A path of the site itself still works, with its query.
    kept = _sign_in(app.test_client(), quote("/orgs/1/settings?tab=credit#x", safe="/"))
    assert kept.headers["Location"] == "/orgs/1/settings?tab=credit#x"


def test_the_probe_itself_a_tab_before_the_second_slash(app) -> None:  # type: ignore[no-untyped-def]
    """The exact requests of the probe: a tab answered `Location: //evil.example/`, a newline
    a 500 after the user was signed in."""
    create_user(app)
    for value in ("/%09/evil.example/", "/%0a/evil.example/", "/%0d%0aSet-Cookie:x=1"):
        answer = _sign_in(app.test_client(), value)
        assert answer.status_code == 302, value
        assert answer.headers["Location"] in ("/orgs", "/Set-Cookie:x=1"), value
        assert not any(c.startswith("x=") for c in answer.headers.get_all("Set-Cookie"))


def test_ids_beyond_64_bits_are_404_on_every_route(app, connected) -> None:  # type: ignore[no-untyped-def]
    run_jobs(app)
    huge = 2**64 + 7
    values = {name: huge for name in ("org_id", "contact_id", "invoice_id", "task_id",
                                      "document_id", "token_id", "user_id", "action_id",
                                      "invitation_id")}
    found = probes(app, values, {"GET", *STATE_CHANGING}, skip_without_tenant_parameters=True)
    assert len(found) >= 40
    csrf = flows.csrf_token(connected.http.get(f"{connected.web.url}/orgs").text)
    before = fingerprint(app)
    answers = {}
    for probe in found:
        if probe.rule.startswith("/api/"):
            continue
        answer = connected.http.request(probe.method, connected.web.url + probe.url,
                                        data={"csrf_token": csrf}, allow_redirects=False)
        answers[f"{probe.method} {probe.rule}"] = answer.status_code
    assert {k: v for k, v in answers.items() if v != 404} == {}
    # Half the id a route holds, the org's own id: a real organisation's id still works.
    org = connected.org_id
    for query in (f"/orgs/{org}/preview?invoice={huge}", f"/orgs/{org}/preview?invoice=-{huge}"):
        assert connected.http.get(connected.web.url + query).status_code == 404, query
    assert fingerprint(app) == before


def test_deeply_nested_json_in_the_credit_form_is_a_clear_error(app, connected) -> None:  # type: ignore[no-untyped-def]
    base, org = connected.web.url, connected.org_id
    page = connected.http.get(f"{base}/orgs/{org}/settings")
    before = fingerprint(app)
    for nested in ("[" * 9_000 + "]" * 9_000, '{"a":' * 3_000 + "1" + "}" * 3_000,
                   "[" * 100_000 + "]" * 100_000):
        answer = connected.http.post(f"{base}/orgs/{org}/settings/credit", data={
            "csrf_token": flows.csrf_token(page.text), "new_customer_policy.paid_on_time": "2",
            "new_customer_policy.policy": nested})
        assert answer.status_code == 422
        assert ("nested too deeply" in answer.text or "characters of JSON" in answer.text)
    assert fingerprint(app) == before
