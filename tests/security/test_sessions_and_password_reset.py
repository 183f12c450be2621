"""Issue 21, point 6: a copied session cookie kept working after sign-out for up to 31 days.
Sessions are rows now: sign-out ends that one; a password change ends them all (removal from
every organisation: test_member_removal.py). Point 10: a password reset that is single-use,
expires, goes through Dunwell's mail code to a real SMTP server, and says nothing about whether
an address has an account."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user
from tests.security.people import signed_in

pytestmark = pytest.mark.db
NEW_PASSWORD = "a much longer new passphrase"


def _signed_out(http: requests.Session, base: str) -> bool:
    answer = http.get(f"{base}/orgs", allow_redirects=False)
    return answer.status_code == 302 and "/signin" in answer.headers["Location"]


def _copy_of(http: requests.Session) -> requests.Session:
    """Another browser holding the same session cookie (copied off a shared computer)."""
    thief = requests.Session()
    thief.cookies.set("session", http.cookies.get("session"))
    return thief


def test_sign_out_ends_the_session_for_every_copy_of_its_cookie(app, web) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    laptop, phone = signed_in(web.url, EMAIL), signed_in(web.url, EMAIL)
    thief = _copy_of(laptop)
    assert not _signed_out(thief, web.url)  # the copy works while the session lasts
    csrf = flows.csrf_token(laptop.get(f"{web.url}/orgs").text)
    assert laptop.post(f"{web.url}/signout", data={"csrf_token": csrf}).status_code == 200
    assert _signed_out(laptop, web.url) and _signed_out(thief, web.url)
    assert not _signed_out(phone, web.url)  # another sign-in of the same person goes on


def test_a_session_older_than_its_lifetime_is_over(app, web, clock) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from sqlalchemy import update

    from store.db import db
    from store.models import UserSession

    create_user(app)
    http = signed_in(web.url, EMAIL)
    clock.advance(days=40)  # the books' clock jumping ahead signs nobody out
    assert not _signed_out(http, web.url)
    with app.app_context():  # the session began longer ago than its lifetime, in real time
        db.session.execute(update(UserSession).values(
            created_at=datetime.now(UTC) - app.permanent_session_lifetime))
        db.session.commit()
        db.session.remove()
    assert _signed_out(http, web.url)


def _reset_mail(smtp, to: str, wait: float = 5.0) -> str | None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for rcpt, message in smtp.messages:
            if rcpt == [to]:
                return str(message.get_content())
        time.sleep(0.05)
    return None


def _without_secrets(html: str) -> str:
    """A page without what differs on every answer: CSRF tokens and the CSP nonce."""
    return re.sub(r'(value|nonce)="[A-Za-z0-9_.-]{20,}"', r'\1=""', html)


def _ask_for_reset(base: str, email: str) -> tuple[requests.Response, requests.Response]:
    http = requests.Session()
    page = http.get(f"{base}/password-reset")
    answer = http.post(f"{base}/password-reset", allow_redirects=False, data={
        "csrf_token": flows.csrf_token(page.text), "email": email})
    return answer, http.get(f"{base}/signin")


def test_a_password_reset_link_by_email_works_once_and_ends_every_session(
        app, web, smtp) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    before = [signed_in(web.url, EMAIL), signed_in(web.url, EMAIL)]
    stranger_answer, stranger_page = _ask_for_reset(web.url, "nobody@example.com")
    answer, page = _ask_for_reset(web.url, EMAIL)
    # The same answer for an address with an account and one without.
    assert (answer.status_code, answer.headers["Location"]) == \
        (stranger_answer.status_code, stranger_answer.headers["Location"]) == (302, "/signin")
    assert _without_secrets(page.text.replace(EMAIL, "ADDRESS")) == \
        _without_secrets(stranger_page.text.replace("nobody@example.com", "ADDRESS"))
    assert "If ADDRESS has an account" in _without_secrets(page.text.replace(EMAIL, "ADDRESS"))
    body = _reset_mail(smtp, EMAIL)
    assert body is not None and _reset_mail(smtp, "nobody@example.com", wait=0.5) is None
    link = re.search(r"https?://\S+(/password-reset/\S+)", body)
    assert link is not None and "within an hour" in body
    path = link.group(1)

    http = requests.Session()
    form = http.get(web.url + path)
    assert form.status_code == 200
    short = http.post(web.url + path, data={"csrf_token": flows.csrf_token(form.text),
                                            "password": "short", "confirm": "short"})
    assert short.status_code == 200 and "at least 12 characters" in short.text
    done = http.post(web.url + path, allow_redirects=False, data={
        "csrf_token": flows.csrf_token(form.text), "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/signin"
    assert all(_signed_out(session, web.url) for session in before)
    # Once only; the new password signs in, the old one no longer does.
    assert requests.get(web.url + path).status_code == 404
    assert "/signin" in flows.sign_in(requests.Session(), web.url, EMAIL, PASSWORD).url
    assert not _signed_out(signed_in(web.url, EMAIL, NEW_PASSWORD), web.url)


def test_a_password_reset_link_expires(app, web, smtp) -> None:  # type: ignore[no-untyped-def]
    create_user(app)
    app.config["PASSWORD_RESET_SECONDS"] = 1
    _ask_for_reset(web.url, EMAIL)
    body = _reset_mail(smtp, EMAIL)
    assert body is not None
    link = re.search(r"(/password-reset/\S+)", body)
    assert link is not None
    assert requests.get(web.url + link.group(1)).status_code == 200
    time.sleep(2.1)
    assert requests.get(web.url + link.group(1)).status_code == 404
    forged = link.group(1)[:-3] + ("abc" if not link.group(1).endswith("abc") else "xyz")
    app.config["PASSWORD_RESET_SECONDS"] = 3600
    assert requests.get(web.url + link.group(1)).status_code == 200
    assert requests.get(web.url + forged).status_code == 404


def test_reset_links_to_one_address_are_limited_and_the_answer_stays_the_same(
        app, web, smtp) -> None:  # type: ignore[no-untyped-def]
    from app.auth.views import RESET_MAILS_PER_HOUR

    create_user(app)
    answers = [_ask_for_reset(web.url, EMAIL)[0] for _ in range(RESET_MAILS_PER_HOUR + 2)]
    assert {(a.status_code, a.headers["Location"]) for a in answers} == {(302, "/signin")}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(smtp.messages) < RESET_MAILS_PER_HOUR:
        time.sleep(0.05)
    time.sleep(0.5)  # any mail beyond the limit would have arrived by now
    assert len([m for m in smtp.messages if m[0] == [EMAIL]]) == RESET_MAILS_PER_HOUR
