"""Issue 21, point 2: a removed member who can still reach the same Xero organisation pressed
Connect and became an owner of the existing organisation (`_attach` added an owner membership
for whoever connected, and the connection switched to their consent). Connecting books that
belong to an organisation grants nothing; only its owners and admins may replace the
connection; anyone else is told whom to ask, and the new consent is withdrawn."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, run_jobs
from tests.security.people import add_member, roles_in, signed_in, user_id_of

pytestmark = pytest.mark.db


def _connection(app, org_id: int) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection

    with app.app_context():
        found = db.session.scalar(select(Connection).where(Connection.org_id == org_id))
        state = (found.grant_id, found.status)
        db.session.remove()
    return state


def _remove(owner: requests.Session, base: str, org: int, user_id: int) -> None:
    page = owner.get(f"{base}/orgs/{org}/members/{user_id}/remove")
    done = owner.post(f"{base}/orgs/{org}/members/{user_id}/remove",
                      data={"csrf_token": flows.csrf_token(page.text)})
    assert done.status_code == 200


def _connect_again(http: requests.Session, base: str, provider: str = "xero"
                   ) -> requests.Response:
    return flows.answer_consent(http, flows.start_connect(http, base, provider), "allow")


def _last_sync_status(app, org_id: int) -> str:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import SyncRun

    with app.app_context():
        status = db.session.scalar(select(SyncRun.status).where(SyncRun.org_id == org_id)
                                   .order_by(SyncRun.id.desc()).limit(1))
        db.session.remove()
    return str(status)


def test_a_removed_member_who_connects_the_same_books_gains_nothing(app, connected) -> None:  # type: ignore[no-untyped-def]
    from jobs.tasks import enqueue_sync
    from store.db import db
    from store.models import Grant, Membership

    base, org = connected.web.url, connected.org_id
    run_jobs(app)
    former = add_member(app, org, "former@example.com", "admin")
    _remove(connected.http, base, org, former)
    grant_before = _connection(app, org)
    members_before = roles_in(app, org)

    # The former member signs in again (their account is theirs) and presses Connect Xero.
    http = signed_in(base, "former@example.com")
    answer = _connect_again(http, base)
    assert answer.status_code == 409
    assert "is already connected to Dunwell" in answer.text and EMAIL in answer.text
    assert roles_in(app, org) == members_before  # no membership, owner or otherwise
    assert _connection(app, org) == grant_before  # the connection still on the owner's consent
    assert http.get(f"{base}/orgs/{org}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Membership).where(
            Membership.user_id == former)) is None
        assert db.session.scalar(select(Grant).where(Grant.created_by == former)) is None
        db.session.remove()
    # The organisation goes on working on its owner's consent.
    with app.app_context():
        enqueue_sync(org)
    run_jobs(app)
    assert _last_sync_status(app, org) == "done"


def test_a_viewer_cannot_take_over_the_connection_and_an_admin_may_replace_it(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    base, org = connected.web.url, connected.org_id
    viewer = add_member(app, org, "viewer@example.com", "viewer")
    admin = add_member(app, org, "admin@example.com", "admin")
    grant_before = _connection(app, org)
    refused = _connect_again(signed_in(base, "viewer@example.com"), base)
    assert refused.status_code == 409 and EMAIL in refused.text
    assert roles_in(app, org)[viewer] == "viewer" and _connection(app, org) == grant_before
    # An admin may reconnect: the connection moves to their consent, nobody's role changes.
    landed = _connect_again(signed_in(base, "admin@example.com"), base)
    assert landed.status_code == 200 and landed.url.endswith(f"/orgs/{org}")
    grant_after, status = _connection(app, org)
    assert grant_after != grant_before[0] and status == "active"
    assert roles_in(app, org) == {user_id_of(app, EMAIL): "owner", viewer: "viewer",
                                  admin: "admin"}


def test_the_same_holds_for_a_quickbooks_company(app, web) -> None:  # type: ignore[no-untyped-def]
    """One consent, one company: the removed member's consent is revoked at Intuit, the
    company stays on its owner's consent and keeps syncing."""
    from jobs.tasks import enqueue_sync
    from tests.integration.conftest import connect

    owner = connect(app, web, "quickbooks")
    base, org = web.url, owner.org_id
    run_jobs(app)
    former = add_member(app, org, "former@example.com", "admin")
    _remove(owner.http, base, org, former)
    before, members = _connection(app, org), roles_in(app, org)
    answer = _connect_again(signed_in(base, "former@example.com"), base, "quickbooks")
    assert answer.status_code == 409 and EMAIL in answer.text
    assert roles_in(app, org) == members and _connection(app, org) == before
    with app.app_context():
        enqueue_sync(org)
    run_jobs(app)
    assert _last_sync_status(app, org) == "done"
