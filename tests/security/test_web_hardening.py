"""Sessions and forms: CSRF on every state-changing route, security headers, cookie flags,
session rotation on sign-in and a limit on failed sign-ins."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs
from tests.security.conftest import fingerprint
from tests.security.routes import CSRF_EXEMPT_PREFIXES, STATE_CHANGING, probes

pytestmark = pytest.mark.db


def _first_id(app, model, org_id: int) -> int:  # type: ignore[no-untyped-def]
    from store.db import db

    with app.app_context():
        found = db.session.scalar(select(model.id).where(model.org_id == org_id)
                                  .order_by(model.id).limit(1))
        return int(found) if found is not None else 1


def test_every_state_changing_route_without_a_csrf_token_is_400_and_changes_nothing(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.models import Action, ApiToken, Contact, Document, Invitation, Invoice, Task, User

    run_jobs(app)  # books synced, reminders sent: there is something to change
    org = connected.org_id
    with app.app_context():
        from store.db import db

        owner = db.session.scalar(select(User.id).where(User.email == EMAIL))
    values = {"org_id": org, "contact_id": _first_id(app, Contact, org),
              "invoice_id": _first_id(app, Invoice, org), "task_id": _first_id(app, Task, org),
              "document_id": _first_id(app, Document, org),
              "token_id": _first_id(app, ApiToken, org), "user_id": owner,
              "action_id": _first_id(app, Action, org),
              "invitation_id": _first_id(app, Invitation, org)}
    found = probes(app, values, STATE_CHANGING)
    checked = [p for p in found if not p.rule.startswith(CSRF_EXEMPT_PREFIXES)]
    # The routes known today must all be among those probed (a rename is noticed too).
    assert {"/signin", "/signout", "/language", "/connect/xero", "/connect/quickbooks",
            "/orgs/<int:org_id>/settings", "/orgs/<int:org_id>/disconnect",
            "/orgs/<int:org_id>/sync", "/orgs/<int:org_id>/members/invite",
            "/orgs/<int:org_id>/customers/<int:contact_id>/hold",
            "/orgs/<int:org_id>/tasks/<int:task_id>/done",
            "/invitations/<token>"} <= {p.rule for p in checked}
    before = fingerprint(app)
    answers = {}
    for probe in checked:
        answer = connected.http.request(probe.method, connected.web.url + probe.url,
                                        data={"note": "x", "role": "viewer",
                                              "email": "x@example.com", "limit": "1"},
                                        allow_redirects=False)
        answers[f"{probe.method} {probe.rule}"] = answer.status_code
    assert {k: v for k, v in answers.items() if v != 400} == {}
    assert fingerprint(app) == before
    # Still signed in: the sign-out without a token did nothing.
    assert connected.http.get(f"{connected.web.url}/orgs").status_code == 200


def test_csrf_tokens_from_before_sign_in_do_not_work_after_it(app, web) -> None:  # type: ignore[no-untyped-def]
    """Session rotation: sign-in starts a fresh session, so anything planted before is gone."""
    create_user(app)
    http = requests.Session()
    page = http.get(f"{web.url}/signin")
    before_token = flows.csrf_token(page.text)
    cookie_before = http.cookies.get("session")
    signed_in = http.post(f"{web.url}/signin", data={
        "csrf_token": before_token, "email": EMAIL, "password": PASSWORD},
        allow_redirects=False)
    assert signed_in.status_code == 302
    assert http.cookies.get("session") != cookie_before
    stale = http.post(f"{web.url}/language", data={"csrf_token": before_token,
                                                   "language": "de"},
                      allow_redirects=False)
    assert stale.status_code == 400
    fresh_token = flows.csrf_token(http.get(f"{web.url}/orgs").text)
    assert fresh_token != before_token
    assert http.post(f"{web.url}/language", data={"csrf_token": fresh_token, "language": "de"},
                     allow_redirects=False).status_code == 302


def test_security_headers_on_pages_and_no_store_once_signed_in(app, connected) -> None:  # type: ignore[no-untyped-def]
    anonymous = requests.get(f"{connected.web.url}/signin")
    csp = anonymous.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["style-src"] == "'self'"
    assert directives["script-src"].startswith("'self' 'nonce-")
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert anonymous.headers["X-Frame-Options"] == "DENY"
    assert anonymous.headers["X-Content-Type-Options"] == "nosniff"
    assert anonymous.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in anonymous.headers  # served over plain HTTP here
    # A nonce is new for every answer.
    again = requests.get(f"{connected.web.url}/signin").headers["Content-Security-Policy"]
    assert again != csp
    static = requests.get(f"{connected.web.url}/static/dunwell.css")
    assert "no-store" not in static.headers.get("Cache-Control", "")
    for path in ("/orgs", f"/orgs/{connected.org_id}", f"/orgs/{connected.org_id}/sync-status",
                 "/static/dunwell.css"):
        answer = connected.http.get(connected.web.url + path)
        assert answer.status_code == 200, path
        assert answer.headers["Cache-Control"] == "no-store", path


def test_hsts_and_secure_cookie_in_production_settings(app) -> None:  # type: ignore[no-untyped-def]
    from app import create_app

    production = create_app({**app.config, "BASE_URL": "https://dunwell.example.com",
                             "SESSION_COOKIE_SECURE": True, "SECURITY_HSTS": True})
    client = production.test_client()
    answer = client.get("/signin", base_url="https://dunwell.example.com")
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _sign_in_attempt(client, email: str, password: str, address: str):  # type: ignore[no-untyped-def]
    page = client.get("/signin", environ_base={"REMOTE_ADDR": address})
    return client.post("/signin", environ_base={"REMOTE_ADDR": address}, data={
        "csrf_token": flows.csrf_token(page.get_data(as_text=True)),
        "email": email, "password": password})


def test_the_eleventh_failed_sign_in_in_a_minute_is_429(app) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    client = app.test_client()
    for _ in range(10):
        assert _sign_in_attempt(client, EMAIL, "wrong password", "203.0.113.7").status_code == 200
    refused = _sign_in_attempt(client, EMAIL, "wrong password", "203.0.113.7")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    # Even the right password waits: the guesser learns nothing more this minute.
    assert _sign_in_attempt(client, EMAIL, PASSWORD, "203.0.113.7").status_code == 429
    # The same email from another address is limited too (a spread-out guess at one account).
    assert _sign_in_attempt(app.test_client(), EMAIL, PASSWORD, "198.51.100.9").status_code \
        == 429
    # Another person from another address signs in as usual.
    create_user(app, "second@example.com", PASSWORD)
    ok = _sign_in_attempt(app.test_client(), "second@example.com", PASSWORD, "198.51.100.10")
    assert ok.status_code == 302


def test_a_successful_sign_in_is_not_counted_and_clears_the_email_count(app) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    for _ in range(9):
        _sign_in_attempt(app.test_client(), EMAIL, "wrong password", "203.0.113.8")
    assert _sign_in_attempt(app.test_client(), EMAIL, PASSWORD, "192.0.2.1").status_code == 302
    for _ in range(3):
        assert _sign_in_attempt(app.test_client(), EMAIL, PASSWORD, "192.0.2.2").status_code \
            == 302
    assert _sign_in_attempt(app.test_client(), EMAIL, "wrong", "192.0.2.3").status_code == 200
