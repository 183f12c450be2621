"""People in an organisation, for the security tests: members with a role, signed in over HTTP."""

from __future__ import annotations

import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user


def add_member(app, org_id: int, email: str, role: str) -> int:  # type: ignore[no-untyped-def]
    """A new password user who is a member of the organisation with `role`; their id."""
    from store.db import db
    from store.models import Membership, User

    create_user(app, email, PASSWORD)
    with app.app_context():
        user_id = int(db.session.scalar(select(User.id).where(User.email == email)))
        db.session.add(Membership(user_id=user_id, org_id=org_id, role=role))
        db.session.commit()
        db.session.remove()
    return user_id


def signed_in(base: str, email: str, password: str = PASSWORD) -> requests.Session:
    http = requests.Session()
    answer = flows.sign_in(http, base, email, password)
    assert answer.status_code == 200 and "/signin" not in answer.url, answer.url
    return http


def user_id_of(app, email: str) -> int:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import User

    with app.app_context():
        found = int(db.session.scalar(select(User.id).where(User.email == email)))
        db.session.remove()
    return found


def roles_in(app, org_id: int) -> dict[int, str]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Membership

    with app.app_context():
        found = {user_id: role for user_id, role in db.session.execute(
            select(Membership.user_id, Membership.role).where(Membership.org_id == org_id))}
        db.session.remove()
    return found
