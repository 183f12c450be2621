"""Removing a member: owners and admins may, after a confirmation page, with a CSRF token; the
last owner cannot be removed and only an owner removes an owner; each removal is in the
activity log. (What the removed person can still reach, nothing, is proved in
test_tenant_isolation.py.)"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user

pytestmark = pytest.mark.db

ADMIN, VIEWER, CO_OWNER = "admin@example.com", "viewer@example.com", "co-owner@example.com"


def _member(app, org_id: int, email: str, role: str) -> tuple[int, requests.Session]:  # type: ignore[no-untyped-def]
    from app.extensions import db
    from app.models import Membership, User

    create_user(app, email, PASSWORD)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        db.session.add(Membership(user_id=user_id, org_id=org_id, role=role))
        db.session.commit()
        db.session.remove()
    return user_id, requests.Session()


def _roles(app, org_id: int) -> dict[int, str]:  # type: ignore[no-untyped-def]
    from app.extensions import db
    from app.models import Membership

    with app.app_context():
        found = dict(db.session.execute(select(Membership.user_id, Membership.role).where(
            Membership.org_id == org_id)).tuples().all())
        db.session.remove()
    return found


def _remove(http: requests.Session, base: str, org_id: int, user_id: int
            ) -> requests.Response:
    """Open the confirmation page (or fail on it) and press Remove."""
    page = http.get(f"{base}/orgs/{org_id}/members/{user_id}/remove")
    if page.status_code != 200:
        return page
    return http.post(f"{base}/orgs/{org_id}/members/{user_id}/remove",
                     data={"csrf_token": flows.csrf_token(page.text)})


def test_who_may_remove_whom(app, connected) -> None:  # type: ignore[no-untyped-def]
    from app.extensions import db
    from app.models import AuditEvent, User

    base, org = connected.web.url, connected.org_id
    with app.app_context():
        owner_id = db.session.scalar(select(User.id).where(User.email == EMAIL))
        db.session.remove()
    admin_id, admin = _member(app, org, ADMIN, "admin")
    viewer_id, viewer = _member(app, org, VIEWER, "viewer")
    flows.sign_in(admin, base, ADMIN, PASSWORD)
    flows.sign_in(viewer, base, VIEWER, PASSWORD)
    everyone = _roles(app, org)

    # Without the CSRF token: refused, nobody removed.
    no_token = connected.http.post(f"{base}/orgs/{org}/members/{viewer_id}/remove")
    assert no_token.status_code == 400 and _roles(app, org) == everyone
    # A viewer manages no one: 403 on the page and on the button.
    assert viewer.get(f"{base}/orgs/{org}/members/{admin_id}/remove").status_code == 403
    csrf = flows.csrf_token(viewer.get(f"{base}/orgs/{org}/members").text)
    assert viewer.post(f"{base}/orgs/{org}/members/{admin_id}/remove",
                       data={"csrf_token": csrf}).status_code == 403
    # Someone who is not a member of this organisation is not found.
    assert _remove(connected.http, base, org, 999_999).status_code == 404
    # An admin cannot remove the owner; the owner cannot remove the last owner (themselves).
    refused = _remove(admin, base, org, owner_id)
    assert "Only an owner can remove an owner." in refused.text
    refused = _remove(connected.http, base, org, owner_id)
    assert "An organisation keeps at least one owner." in refused.text
    assert _roles(app, org) == everyone

    # The admin removes the viewer; the viewer's next request is 404.
    done = _remove(admin, base, org, viewer_id)
    assert done.status_code == 200 and f"{VIEWER} no longer has access" in done.text
    assert viewer.get(f"{base}/orgs/{org}").status_code == 404
    # With a second owner, the first may leave: they land on their list of organisations.
    co_owner_id, _ = _member(app, org, CO_OWNER, "owner")
    left = _remove(connected.http, base, org, owner_id)
    assert left.status_code == 200 and left.url.endswith("/orgs")
    assert _roles(app, org) == {admin_id: "admin", co_owner_id: "owner"}
    with app.app_context():
        log = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.org_id == org, AuditEvent.kind == "member_removed")
            .order_by(AuditEvent.id)).all()
        db.session.remove()
    assert log == [f"{ADMIN} removed {VIEWER} (viewer)", f"{EMAIL} removed {EMAIL} (owner)"]
