"""Removing a member: owners and admins may, after a confirmation page, with a CSRF token; the
last owner cannot be removed and only an owner removes an owner; each removal is in the
activity log. (What the removed person can still reach, nothing, is proved in
test_tenant_isolation.py.)"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL
from tests.security.people import add_member, roles_in, signed_in, user_id_of

pytestmark = pytest.mark.db

ADMIN, VIEWER, CO_OWNER = "admin@example.com", "viewer@example.com", "co-owner@example.com"


def _remove(http: requests.Session, base: str, org_id: int, user_id: int
            ) -> requests.Response:
    """Open the confirmation page (or fail on it) and press Remove."""
    page = http.get(f"{base}/orgs/{org_id}/members/{user_id}/remove")
    if page.status_code != 200:
        return page
    return http.post(f"{base}/orgs/{org_id}/members/{user_id}/remove",
                     data={"csrf_token": flows.csrf_token(page.text)})


def test_who_may_remove_whom(app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent

    base, org = connected.web.url, connected.org_id
    owner_id = user_id_of(app, EMAIL)
    admin_id = add_member(app, org, ADMIN, "admin")
    viewer_id = add_member(app, org, VIEWER, "viewer")
    admin, viewer = signed_in(base, ADMIN), signed_in(base, VIEWER)
    everyone = roles_in(app, org)

    # Without the CSRF token: refused, nobody removed.
    no_token = connected.http.post(f"{base}/orgs/{org}/members/{viewer_id}/remove")
    assert no_token.status_code == 400 and roles_in(app, org) == everyone
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
    assert roles_in(app, org) == everyone

    # The admin removes the viewer. It was the viewer's only organisation, so their session
    # ends too: the next request, even to their own list, is sent to sign in.
    done = _remove(admin, base, org, viewer_id)
    assert done.status_code == 200 and f"{VIEWER} no longer has access" in done.text
    for path in (f"/orgs/{org}", "/orgs"):
        gone = viewer.get(f"{base}{path}", allow_redirects=False)
        assert gone.status_code == 302 and "/signin" in gone.headers["Location"]
    # With a second owner, the first may leave; in no organisation now, they are signed out.
    co_owner_id = add_member(app, org, CO_OWNER, "owner")
    left = _remove(connected.http, base, org, owner_id)
    assert left.status_code == 200 and "/signin" in left.url
    assert roles_in(app, org) == {admin_id: "admin", co_owner_id: "owner"}
    with app.app_context():
        log = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.org_id == org, AuditEvent.kind == "member_removed")
            .order_by(AuditEvent.id)).all()
        db.session.remove()
    assert log == [f"{ADMIN} removed {VIEWER} (viewer)", f"{EMAIL} removed {EMAIL} (owner)"]
