"""Dunwell's Xero connect flow against Xero's connections as the sandbox now keeps them: the
listing holds every tenant the user ever connected to the app, so a second consent attaches
only its own tenants, under its own auth event, and a re-consent moves what it names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import TokenSet
from tests.integration.conftest import EMAIL, create_user
from tests.sandbox.test_xero_openid_and_connections import event_of, sign_in
from tests.sandbox.test_xero_sandbox import Served

pytestmark = pytest.mark.db


def _listing(xero: Served, token: dict[str, Any]) -> list[dict[str, Any]]:
    import requests

    return list(requests.get(f"{xero.url}/connections", timeout=10, headers={
        "Authorization": f"Bearer {token['access_token']}"}).json())


def token_set(token: dict[str, Any]) -> TokenSet:
    return TokenSet(token["access_token"], token["refresh_token"],
                    datetime.now(UTC) + timedelta(seconds=int(token["expires_in"])),
                    " ".join(token["scope"]), token.get("id_token"))


@pytest.mark.parametrize("moves", [True, False], ids=["re-consent-moves", "re-consent-keeps"])
def test_each_consent_attaches_only_its_own_tenants_under_its_own_event(
        app, sandbox, clock, monkeypatch: pytest.MonkeyPatch, moves: bool) -> None:  # type: ignore[no-untyped-def]
    """Whichever Xero does to an already connected tenant on a re-consent (move it to the new
    auth event, or keep its old one and move only updatedDateUtc), the flow takes the
    consent's own tenants."""
    from app.connections.services import connect_xero
    from store.db import db
    from store.models import Connection, User

    state, server = sandbox
    state.config.reconsent_moves_auth_event = moves
    xero = Served(state, server.url, clock)
    first_tenant, second_tenant = xero.first, xero.second
    create_user(app)

    def connections() -> dict[str, tuple[int | None, str | None]]:
        rows = db.session.scalars(select(Connection)).all()
        return {c.tenant_id: (c.grant_id, c.grant.auth_event_id if c.grant else None)
                for c in rows}

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == EMAIL))
        first = sign_in(xero, [first_tenant], monkeypatch=monkeypatch)
        assert [o.name for o in connect_xero(user, token_set(first))] == [
            xero.box.tenant(first_tenant).name]
        after_first = connections()
        assert after_first[first_tenant][1] == event_of(first)

        clock.advance(seconds=30)
        second = sign_in(xero, [second_tenant], monkeypatch=monkeypatch)
        # The second consent's token lists both tenants, as Xero's does.
        assert {c["tenantId"] for c in _listing(xero, second)} == {first_tenant, second_tenant}
        attached = connect_xero(user, token_set(second))
        assert [o.name for o in attached] == [xero.box.tenant(second_tenant).name]
        now = connections()
        assert now[second_tenant][1] == event_of(second)
        assert now[first_tenant] == after_first[first_tenant]  # untouched by the second
        assert now[second_tenant][0] != now[first_tenant][0]

        # A re-consent naming both moves both to its grant and its auth event.
        clock.advance(seconds=30)
        again = sign_in(xero, [first_tenant, second_tenant], monkeypatch=monkeypatch)
        listed = {c["tenantId"]: c["authEventId"] for c in _listing(xero, again)}
        assert (listed[first_tenant] == event_of(again)) == moves
        assert {o.name for o in connect_xero(user, token_set(again))} == {
            xero.box.tenant(first_tenant).name, xero.box.tenant(second_tenant).name}
        moved = connections()
        assert moved[first_tenant][1] == moved[second_tenant][1] == event_of(again)
        assert moved[first_tenant][0] == moved[second_tenant][0]
