"""Issue 21, point 10: the access log recorded invitation links and OAuth codes (their secret
parts are redacted now, in every log that prints paths); CSRF tokens never expired (they have
a lifetime); the OAuth state and PKCE verifier sat in the readable signed cookie (they stay on
the server); pending invitations could not be withdrawn (they can, by owners and admins)."""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask.sessions import SecureCookieSessionInterface
from redis import Redis

from tests.integration import flows
from tests.integration.conftest import EMAIL
from tests.security.people import add_member, signed_in

pytestmark = pytest.mark.db


def test_the_access_log_shows_no_invitation_secret_reset_secret_or_oauth_code(
        app, connected, caplog) -> None:  # type: ignore[no-untyped-def]
    base = connected.web.url
    secrets_sent = ["inv-SECRET-0123456789abcdef", "reset.SECRET.0123456789", "CODE-SECRET-42"]
    with caplog.at_level(logging.INFO):
        requests.get(f"{base}/invitations/{secrets_sent[0]}")
        requests.get(f"{base}/password-reset/{secrets_sent[1]}")
        connected.http.get(f"{base}/connect/xero/callback?code={secrets_sent[2]}&state=s",
                           allow_redirects=False)
        requests.get(f"{base}/signup/xero/callback?code={secrets_sent[2]}&state=s",
                     allow_redirects=False)
        time.sleep(0.2)  # the server thread logs after it answers
        # gunicorn's access log in production: its line is formatted before it is logged.
        logging.getLogger("gunicorn.access").info(
            '127.0.0.1 - - "GET /invitations/%s HTTP/1.1" 200', secrets_sent[0])
    assert any(r.name == "gunicorn.access" and "/invitations/[redacted]" in r.getMessage()
               for r in caplog.records)
    access = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert sum("[redacted]" in line for line in access) >= 4, access
    assert not [line for line in caplog.messages if any(s in line for s in secrets_sent)]
    assert not [r for r in caplog.records
                if any(s in r.getMessage() for s in secrets_sent)]


def test_a_csrf_token_has_a_lifetime(app, connected) -> None:  # type: ignore[no-untyped-def]
    limit = app.config["WTF_CSRF_TIME_LIMIT"]
    assert isinstance(limit, int) and 0 < limit <= 24 * 3600
    base = connected.web.url
    app.config["WTF_CSRF_TIME_LIMIT"] = 1
    token = flows.csrf_token(connected.http.get(f"{base}/orgs").text)
    time.sleep(2.1)
    stale = connected.http.post(f"{base}/language", data={"csrf_token": token,
                                                          "language": "de"},
                                allow_redirects=False)
    assert stale.status_code == 400 and "expired" in stale.text.lower()
    app.config["WTF_CSRF_TIME_LIMIT"] = limit
    fresh = flows.csrf_token(connected.http.get(f"{base}/orgs").text)
    assert connected.http.post(f"{base}/language", data={"csrf_token": fresh, "language": "de"},
                               allow_redirects=False).status_code == 302


def _session_of(app, http: requests.Session) -> dict:  # type: ignore[no-untyped-def]
    """What anyone holding the cookie can read (the signature hides nothing)."""
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return dict(serializer.loads(http.cookies.get("session")))


@pytest.mark.parametrize("start", ["/connect/xero", "/signup/xero"])
def test_the_oauth_state_and_verifier_stay_on_the_server(app, connected, start) -> None:  # type: ignore[no-untyped-def]
    base, http = connected.web.url, connected.http
    csrf = flows.csrf_token(http.get(f"{base}/orgs").text)
    answer = (http.post(f"{base}{start}", data={"csrf_token": csrf}, allow_redirects=False)
              if start.startswith("/connect") else
              http.get(f"{base}{start}", allow_redirects=False))
    assert answer.status_code == 302
    state = parse_qs(urlsplit(answer.headers["Location"]).query)["state"][0]
    cookie = _session_of(app, http)
    assert state not in repr(cookie) and "verifier" not in repr(cookie)
    stored = Redis.from_url(app.config["REDIS_URL"])
    held = [stored.get(key) for key in stored.keys("oauth-flow:*")]
    assert any(state.encode() in value for value in held if value)
    assert all(b"verifier" in value for value in held if value and state.encode() in value)


def test_an_invitation_can_be_withdrawn_by_owners_and_admins_only(app, connected) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from store.db import db
    from store.models import AuditEvent, Invitation

    base, org = connected.web.url, connected.org_id
    page = connected.http.get(f"{base}/orgs/{org}/members")
    made = connected.http.post(f"{base}/orgs/{org}/members/invite", data={
        "csrf_token": flows.csrf_token(page.text), "email": "new@example.com",
        "role": "viewer"})
    link = re.search(r'id="invitation-link">([^<]+)<', made.text)
    assert link is not None
    path = urlsplit(link.group(1)).path
    assert requests.get(base + path).status_code == 200
    with app.app_context():
        invitation_id = db.session.scalar(select(Invitation.id).where(
            Invitation.email == "new@example.com"))
        db.session.remove()
    withdraw = f"{base}/orgs/{org}/invitations/{invitation_id}/revoke"
    add_member(app, org, "viewer@example.com", "viewer")
    viewer = signed_in(base, "viewer@example.com")
    csrf = flows.csrf_token(viewer.get(f"{base}/orgs/{org}/members").text)
    assert viewer.post(withdraw, data={"csrf_token": csrf}).status_code == 403
    assert requests.get(base + path).status_code == 200  # still works
    listed = connected.http.get(f"{base}/orgs/{org}/members").text
    assert f'/invitations/{invitation_id}/revoke' in listed
    done = connected.http.post(withdraw, data={"csrf_token": flows.csrf_token(listed)})
    assert done.status_code == 200 and "no longer works" in done.text
    assert requests.get(base + path).status_code == 404
    assert connected.http.post(withdraw, data={"csrf_token": flows.csrf_token(listed)}
                               ).status_code == 404
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.kind == "invitation_revoked")).all()
        db.session.remove()
    assert event == f"{EMAIL} withdrew the invitation of new@example.com"
