"""Issue 21, point 1: an admin could make themselves owner and then demote the real owner.
Only an owner grants or takes away the owner role, nobody changes their own role, the last
owner stays, and the activity log names who changed whom."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import EMAIL
from tests.security.people import add_member, roles_in, signed_in, user_id_of

pytestmark = pytest.mark.db


def _set_role(http: requests.Session, base: str, org: int, user_id: int,
              role: str) -> requests.Response:
    page = http.get(f"{base}/orgs/{org}/members")
    return http.post(f"{base}/orgs/{org}/members/{user_id}/role",
                     data={"csrf_token": flows.csrf_token(page.text), "role": role})


def test_only_an_owner_grants_or_takes_away_owner_and_nobody_changes_their_own_role(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import AuditEvent

    base, org = connected.web.url, connected.org_id
    owner_id = user_id_of(app, EMAIL)
    admin_id = add_member(app, org, "admin@example.com", "admin")
    viewer_id = add_member(app, org, "viewer@example.com", "viewer")
    admin = signed_in(base, "admin@example.com")
    everyone = roles_in(app, org)

    # The probe: the admin makes themselves owner, then demotes the owner. Both refused.
    refused = _set_role(admin, base, org, admin_id, "owner")
    assert "You cannot change your own role" in refused.text
    refused = _set_role(admin, base, org, owner_id, "viewer")
    assert "Only an owner can grant or take away the owner role." in refused.text
    # Nor may the admin make someone else an owner (an accomplice).
    refused = _set_role(admin, base, org, viewer_id, "owner")
    assert "Only an owner can grant or take away the owner role." in refused.text
    # The sole owner cannot step down by changing their own role either.
    refused = _set_role(connected.http, base, org, owner_id, "admin")
    assert "You cannot change your own role" in refused.text
    assert roles_in(app, org) == everyone
    # The owner still exports and sees "Delete now".
    export = connected.http.get(f"{base}/orgs/{org}/connection/export")
    assert export.status_code == 200 and export.headers["Content-Type"] == "application/zip"

    # An admin still manages the roles below owner.
    done = _set_role(admin, base, org, viewer_id, "accountant")
    assert "viewer@example.com is now accountant." in done.text
    # The owner makes the admin a second owner; then the new owner may demote the first,
    # who is not the last any more.
    _set_role(connected.http, base, org, admin_id, "owner")
    assert roles_in(app, org)[admin_id] == "owner"
    _set_role(admin, base, org, owner_id, "admin")
    assert roles_in(app, org) == {owner_id: "admin", admin_id: "owner",
                                  viewer_id: "accountant"}
    # Now the last owner: nobody can take the role away (and they cannot themselves).
    refused = _set_role(connected.http, base, org, admin_id, "viewer")
    assert "Only an owner can grant or take away the owner role." in refused.text
    assert roles_in(app, org)[admin_id] == "owner"

    with app.app_context():
        log = db.session.scalars(select(AuditEvent.message).where(
            AuditEvent.org_id == org, AuditEvent.kind == "role_changed")
            .order_by(AuditEvent.id)).all()
        db.session.remove()
    assert log == ["admin@example.com changed viewer@example.com from viewer to accountant",
                   f"{EMAIL} changed admin@example.com from admin to owner",
                   f"admin@example.com changed {EMAIL} from owner to admin"]


def test_the_last_owner_cannot_be_demoted_even_by_the_rules_beneath_the_page(app) -> None:  # type: ignore[no-untyped-def]
    """The service itself refuses, whoever calls it (the CLI, a later page): a non-member
    cannot touch the owner role, and the owner cannot step down alone."""
    from app.organisations import members
    from store import clock
    from store.db import db
    from store.models import Membership, Organisation, User

    with app.app_context():
        org = Organisation(name="Solo Ltd", country="GB", timezone="UTC", base_currency="GBP")
        owner = User(email="solo@example.com", password_hash="x")
        other = User(email="other-owner@example.com", password_hash="x")
        db.session.add_all([org, owner, other])
        db.session.flush()
        db.session.add(Membership(user_id=owner.id, org_id=org.id, role="owner"))
        db.session.commit()
        with pytest.raises(members.InvitationRefused, match="Only an owner"):
            members.change_role(org, other, owner.id, "admin", clock.now())
        with pytest.raises(members.InvitationRefused, match="own role"):
            members.change_role(org, owner, owner.id, "admin", clock.now())
        with pytest.raises(members.InvitationRefused, match="Unknown role"):
            members.change_role(org, owner, owner.id, "superuser", clock.now())
        assert db.session.scalar(select(Membership.role).where(
            Membership.user_id == owner.id)) == "owner"
        db.session.remove()
