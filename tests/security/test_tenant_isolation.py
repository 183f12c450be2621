"""Tenants are isolated: a member of organisation A who calls any route with the ids of
organisation B's objects gets 404, and B's data is unchanged. The routes come from the app's
URL map, so a route added later is probed without anyone listing it here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import select, text

from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD, create_user, run_jobs
from tests.security.routes import STATE_CHANGING, Probe, probes

pytestmark = pytest.mark.db

ATTACKER = "attacker@example.com"
ACCOUNTANT = "accountant@example.com"
FORM = {"note": "x", "role": "owner", "email": "x@example.com", "limit": "1", "action": "hold",
        "reason": "x", "language": "de", "kind": "business", "name": "x", "source": "x",
        "tone": "friendly", "reminder_steps.0.offset_days": "1"}


@dataclass
class Books:
    a: int
    b: int
    values_b: dict[str, int]
    a_api_token: str
    b_owner: int


def _tenant_rows(app, org_id: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A hash per table of one organisation's rows (and of the tables no organisation owns)."""
    from store.db import db

    hashes = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            query = f'SELECT * FROM "{table.name}"'
            if "org_id" in table.c:
                query += f" WHERE org_id = {int(org_id)}"
            rows = sorted(str(tuple(r)) for r in db.session.execute(text(query)))
            hashes[table.name] = f"{len(rows)}:" + hashlib.sha256(
                "\n".join(rows).encode()).hexdigest()
        db.session.remove()
    return hashes


def _books(app, connected) -> Books:  # type: ignore[no-untyped-def]
    """B: the connected Xero organisation with synced books, sent reminders, a task, a
    document and an API token. A: an organisation of the attacker's own."""
    from app.organisations.members import new_api_token
    from store import clock
    from store.db import db
    from store.models import (
        Action,
        Contact,
        Document,
        Invoice,
        Membership,
        Organisation,
        Task,
        User,
    )

    run_jobs(app)
    create_user(app, ATTACKER, PASSWORD)
    with app.test_request_context():  # an invitation's link is built from the request
        b = db.session.get(Organisation, connected.org_id)
        owner = db.session.scalar(select(User).where(User.email == EMAIL))
        attacker = db.session.scalar(select(User).where(User.email == ATTACKER))
        a = Organisation(name="Attacker Ltd", country="GB", timezone="Europe/London",
                         base_currency="GBP")
        db.session.add(a)
        db.session.flush()
        db.session.add(Membership(user_id=attacker.id, org_id=a.id, role="owner"))
        invoice = db.session.scalars(select(Invoice).where(Invoice.org_id == b.id)
                                     .order_by(Invoice.id)).first()
        task = Task(org_id=b.id, invoice_id=invoice.id, assignee="Sam", title="Call B")
        document = Document(org_id=b.id, invoice_id=invoice.id, kind="demand_letter_pdf",
                            filename="b.pdf", content_type="application/pdf",
                            content=b"%PDF-1.7 B's letter")
        db.session.add_all([task, document])
        db.session.commit()
        new_api_token(b, owner, "B's reporting", clock.now())
        from app.organisations.members import invite

        invite(b, owner, "invitee-of-b@example.com", "viewer", clock.now())
        a_token = new_api_token(a, attacker, "A's reporting", clock.now())
        from store.models import ApiToken, Invitation

        values_b = {
            "org_id": b.id,
            "contact_id": db.session.scalar(select(Contact.id).where(Contact.org_id == b.id)
                                            .order_by(Contact.id).limit(1)),
            "invoice_id": invoice.id,
            "task_id": task.id,
            "document_id": document.id,
            "token_id": db.session.scalar(select(ApiToken.id).where(ApiToken.org_id == b.id)),
            "user_id": owner.id,
            "invitation_id": db.session.scalar(select(Invitation.id).where(
                Invitation.org_id == b.id)),
            "action_id": db.session.scalar(select(Action.id).where(Action.org_id == b.id)
                                           .order_by(Action.id).limit(1)),
        }
        assert all(values_b.values()), values_b
        books = Books(a=a.id, b=b.id, values_b=values_b, a_api_token=a_token,
                      b_owner=owner.id)
        db.session.remove()
    return books


def _call(http: requests.Session, base: str, probe: Probe, csrf: str,
          bearer: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    if probe.method == "GET":
        return http.get(base + probe.url, headers=headers, allow_redirects=False).status_code
    return http.request(probe.method, base + probe.url, headers=headers,
                        data={**FORM, "csrf_token": csrf}, allow_redirects=False).status_code


def _all_methods() -> set[str]:
    return {"GET", *STATE_CHANGING}


def test_every_route_with_another_organisations_ids_is_404_and_changes_nothing(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    books = _books(app, connected)
    attacker = requests.Session()
    flows.sign_in(attacker, connected.web.url, ATTACKER, PASSWORD)
    csrf = flows.csrf_token(attacker.get(f"{connected.web.url}/orgs").text)
    # B's own owner sees B's pages: the ids are real, so a 404 below is the isolation.
    assert connected.http.get(
        f"{connected.web.url}/orgs/{books.b}/invoices/{books.values_b['invoice_id']}"
    ).status_code == 200

    # 1. Everything of B's, B's organisation id included.
    as_b = probes(app, books.values_b, _all_methods(), skip_without_tenant_parameters=True)
    # 2. The attacker's own organisation id with B's objects: the objects must be looked up
    #    within the organisation, not only the organisation checked.
    mixed_values = {**books.values_b, "org_id": books.a}
    mixed = [p for p in probes(app, mixed_values, _all_methods(),
                               skip_without_tenant_parameters=True)
             if set(_arguments(app, p.rule)) - {"org_id"}]
    assert len(as_b) >= 24 and len(mixed) >= 9
    before = _tenant_rows(app, books.b)
    answers: dict[str, int] = {}
    for label, found in (("B", as_b), ("A+B", mixed)):
        for probe in found:
            bearer = books.a_api_token if probe.rule.startswith("/api/") else None
            answers[f"{label} {probe.method} {probe.url}"] = _call(
                attacker, connected.web.url, probe, csrf, bearer)
    assert {k: v for k, v in answers.items() if v != 404} == {}
    assert _tenant_rows(app, books.b) == before

    # The JSON API is scoped by its token: A's token never shows B's rows.
    for path in ("/api/v1/invoices", "/api/v1/actions", "/api/v1/organisation",
                 "/api/v1/aging"):
        answer = requests.get(f"{connected.web.url}{path}",
                              headers={"Authorization": f"Bearer {books.a_api_token}"})
        assert answer.status_code == 200, path
        assert "Harbour Coffee" not in answer.text, path
        assert answer.json().get("invoices", []) == [] and answer.json().get(
            "actions", []) == [], path


def _arguments(app, rule_text: str) -> set[str]:  # type: ignore[no-untyped-def]
    return next(set(r.arguments) for r in app.url_map.iter_rules() if r.rule == rule_text)


def test_an_accountant_removed_from_an_organisation_gets_404_everywhere_in_it(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    """The practice removes the accountant with the members page's Remove button; the
    accountant's session, already signed in, then gets 404 on every page and action of that
    organisation, and the API token they made for it stops working."""
    from app.organisations.members import new_api_token
    from store import clock as app_clock
    from store.db import db
    from store.models import ApiToken, AuditEvent, Membership, Organisation, User

    books = _books(app, connected)
    create_user(app, ACCOUNTANT, PASSWORD)
    with app.app_context():
        accountant = db.session.scalar(select(User).where(User.email == ACCOUNTANT))
        accountant_id = accountant.id
        db.session.add(Membership(user_id=accountant_id, org_id=books.b, role="accountant"))
        # Another client's books: still a member somewhere, so still signed in after the
        # removal (losing the last membership ends every session: test_member_removal.py).
        db.session.add(Membership(user_id=accountant_id, org_id=books.a, role="accountant"))
        db.session.commit()
        # A token the accountant made for their reporting (tokens outlive role changes).
        token = new_api_token(db.session.get(Organisation, books.b), accountant, "Practice",
                              app_clock.now())
        db.session.remove()
    http = requests.Session()
    flows.sign_in(http, connected.web.url, ACCOUNTANT, PASSWORD)
    base = connected.web.url
    bearer = {"Authorization": f"Bearer {token}"}
    assert http.get(f"{base}/orgs/{books.b}").status_code == 200
    assert "Harbour Coffee" in http.get(f"{base}/practice").text
    assert requests.get(f"{base}/api/v1/invoices", headers=bearer).json()["invoices"]
    pages = [p for p in probes(app, books.values_b, {"GET"},
                               skip_without_tenant_parameters=True)
             if not p.rule.startswith("/api/")]
    seen = {p.url: http.get(base + p.url, allow_redirects=False).status_code for p in pages}
    assert seen[f"/orgs/{books.b}/dashboard"] == 200  # a member sees the books...

    # ... until the practice's owner presses Remove on the members page and confirms.
    owner = connected.http
    members_page = owner.get(f"{base}/orgs/{books.b}/members")
    link = f"/orgs/{books.b}/members/{accountant_id}/remove"
    assert f'href="{link}"' in members_page.text
    confirm = owner.get(base + link)
    assert confirm.status_code == 200 and ACCOUNTANT in confirm.text
    removed = owner.post(base + link, data={"csrf_token": flows.csrf_token(confirm.text)},
                         allow_redirects=False)
    assert removed.status_code == 302, removed.text[:300]
    after = owner.get(f"{base}/orgs/{books.b}/members").text
    assert f"{ACCOUNTANT} no longer has access" in after and link not in after
    with app.app_context():
        assert db.session.scalar(select(Membership).where(
            Membership.user_id == accountant_id, Membership.org_id == books.b)) is None
        assert db.session.scalar(select(ApiToken.revoked_at).where(
            ApiToken.org_id == books.b, ApiToken.created_by == accountant_id)) is not None
        [event] = db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == books.b, AuditEvent.kind == "member_removed")).all()
        assert ACCOUNTANT in event.message and EMAIL in event.message
        db.session.remove()

    # The accountant's session, signed in before the removal, and their token.
    csrf = flows.csrf_token(http.get(f"{base}/orgs").text)
    before = _tenant_rows(app, books.b)
    every = probes(app, books.values_b, _all_methods(), skip_without_tenant_parameters=True)
    after_removal = {f"{p.method} {p.url}": _call(http, base, p, csrf)
                     for p in every if not p.rule.startswith("/api/")}
    assert len(after_removal) >= 24
    assert {k: v for k, v in after_removal.items() if v != 404} == {}
    api = [p for p in probes(app, books.values_b, _all_methods()) if p.rule.startswith("/api/")
           and p.rule != "/api/v1/openapi.json"]
    assert len(api) >= 4
    api_answers = {f"{p.method} {p.url}": _call(requests.Session(), base, p, csrf, token)
                   for p in api}
    assert {k: v for k, v in api_answers.items() if v != 401} == {}
    assert _tenant_rows(app, books.b) == before
    practice = http.get(f"{base}/practice")
    assert practice.status_code == 200 and "Harbour Coffee" not in practice.text


def test_a_route_with_a_parameter_nobody_knows_fails_loudly_rather_than_being_skipped() -> None:
    from flask import Flask

    from tests.security.routes import UnfilledRoutes

    app = Flask("routes-test")
    app.add_url_rule("/orgs/<int:org_id>/exports/<int:export_id>", "exports.show",
                     lambda org_id, export_id: "")
    app.add_url_rule("/orgs/<int:org_id>", "organisations.show", lambda org_id: "")
    with pytest.raises(UnfilledRoutes, match=r"/orgs/<int:org_id>/exports/<int:export_id> "
                                             r"\(exports.show\): export_id"):
        probes(app, {"org_id": 2}, {"GET"})
    [only] = probes(app, {"org_id": 2, "export_id": 9}, {"GET"},
                    skip_without_tenant_parameters=True)[:1]
    assert only.url in ("/orgs/2", "/orgs/2/exports/9")
