"""The role matrix (app/access.py) covers every route of the URL map and every operation of the
API description, and each route answers each role as the matrix says: a role the rule leaves
out gets 403 and changes nothing, one it names gets through, a stranger gets 404, an anonymous
visitor is sent to sign in. docs/security.md shows the same table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.integration import flows
from tests.integration.conftest import EMAIL, run_jobs
from tests.security.conftest import fingerprint
from tests.security.people import add_member, signed_in
from tests.security.routes import probes

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Run last, in this order, for a role that may: each ends something the others need.
LAST = ("members.remove", "connections.disconnect_org", "connections.delete_data_now",
        "auth.sign_out")
FORM = {"role": "viewer", "email": "x@example.com", "limit": "1", "action": "hold",
        "reason": "x", "language": "de", "tone": "friendly", "name": "x", "source": "x",
        "decision": "reject", "note": "x"}


def missing_rules(app: Flask) -> list[str]:
    from app.access import rule_for

    return sorted(f"{method} {rule.rule} ({rule.endpoint})"
                  for rule in app.url_map.iter_rules()
                  for method in (rule.methods or set()) & set(METHODS)
                  if rule_for(rule.endpoint, method) is None)


def _bare_app() -> Flask:
    from app import create_app

    return create_app({"SECRET_KEY": "matrix", "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_every_route_and_api_operation_has_a_rule_and_no_rule_is_left_over() -> None:
    from app.access import API_TOKEN, RULES, rule_for

    app = _bare_app()
    assert missing_rules(app) == []
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              for method in (rule.methods or set()) & set(METHODS)}
    declared = {(endpoint, method) for endpoint, by_method in RULES.items()
                for method in by_method}
    assert declared - routes == set(), "rules for routes that no longer exist"
    # Every operation of the API description is a route whose rule is the bearer token.
    spec = json.loads((ROOT / "app/api/openapi.json").read_text())
    adapter = app.url_map.bind("localhost")
    operations = [(method.upper(), "/api/v1" + path) for path, item in spec["paths"].items()
                  for method in item if method in {m.lower() for m in METHODS}]
    assert len(operations) >= 4
    for method, path in operations:
        endpoint, _args = adapter.match(path, method=method)
        assert rule_for(endpoint, method) == API_TOKEN, (method, path)


def test_a_route_without_a_rule_is_named_by_the_check_and_refused() -> None:
    app = _bare_app()
    app.add_url_rule("/orgs/<int:org_id>/new-thing", "new_thing", lambda org_id: "done",
                     methods=["GET", "POST"])
    assert missing_rules(app) == ["GET /orgs/<int:org_id>/new-thing (new_thing)",
                                  "POST /orgs/<int:org_id>/new-thing (new_thing)"]
    assert app.test_client().get("/orgs/1/new-thing").status_code == 403


def test_the_matrix_in_docs_is_the_one_in_the_code() -> None:
    from app.access import matrix_rows

    docs = (ROOT / "docs/security.md").read_text()
    for method, path, endpoint, who in matrix_rows(_bare_app()):
        assert f"| {method} | `{path}` | `{endpoint}` | {who} |" in docs, (method, path)



def _ids(app, org_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from store.db import db
    from store.models import Action, ApiToken, Contact, Document, Invitation, Invoice, Task

    with app.app_context():
        found = {}
        for name, model in (("contact_id", Contact), ("invoice_id", Invoice),
                            ("task_id", Task), ("document_id", Document),
                            ("token_id", ApiToken), ("action_id", Action),
                            ("invitation_id", Invitation)):
            found[name] = db.session.scalar(select(model.id).where(model.org_id == org_id)
                                            .order_by(model.id).limit(1)) or 1
        db.session.remove()
    return found


def _api_token(app, org_id: int, email: str) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from app.organisations.members import new_api_token
    from store import clock
    from store.db import db
    from store.models import Organisation, User

    with app.app_context():
        org = db.session.get(Organisation, org_id)
        user = db.session.scalar(select(User).where(User.email == email))
        secret = new_api_token(org, user, f"token of {email}", clock.now())
        db.session.remove()
    return secret


def _call(http: requests.Session, base: str, method: str, url: str,
          csrf: str | None) -> requests.Response:
    data = {**FORM, "csrf_token": csrf} if csrf and method != "GET" else None
    return http.request(method, base + url, data=data, allow_redirects=False)


def _to_sign_in(answer: requests.Response) -> bool:
    return answer.status_code == 302 and "/signin" in answer.headers.get("Location", "")


@pytest.mark.db
def test_every_route_by_every_role_as_the_matrix_says(app, connected) -> None:  # type: ignore[no-untyped-def]
    from app.access import ROLES, rule_for

    run_jobs(app)  # synced books, sent reminders: ids to fill every route with
    base, org = connected.web.url, connected.org_id
    sessions = {"owner": connected.http}
    for role in ROLES[1:]:
        add_member(app, org, f"{role}@example.com", role)
        sessions[role] = signed_in(base, f"{role}@example.com")
    victim = add_member(app, org, "victim@example.com", "viewer")
    add_member(app, org, "co-owner@example.com", "owner")
    from tests.integration.conftest import create_user

    create_user(app, "stranger@example.com")
    stranger = signed_in(base, "stranger@example.com")
    from app.organisations import members

    with app.test_request_context():  # an invitation's link is built from the request
        from store import clock
        from store.db import db
        from store.models import Organisation, User

        members.invite(db.session.get(Organisation, org),
                       db.session.get(User, 1), "invitee@example.com", "viewer", clock.now())
        db.session.remove()
    values = {"org_id": org, "user_id": victim, **_ids(app, org)}
    found = [p for p in probes(app, values, METHODS) if not p.rule.startswith("/static")]
    found.sort(key=lambda p: (p.endpoint in LAST, LAST.index(p.endpoint)
                              if p.endpoint in LAST else 0, p.rule, p.method))
    rules = {(p.endpoint, p.method): rule_for(p.endpoint, p.method) for p in found}
    assert None not in rules.values()
    member_probes = [p for p in found if rules[p.endpoint, p.method].audience == "member"]
    assert len(member_probes) >= 40

    wrong: list[str] = []
    # Anonymous: every member and signed-in route sends to sign in; the others do not.
    anonymous = requests.Session()
    for probe in found:
        rule = rules[probe.endpoint, probe.method]
        answer = _call(anonymous, base, probe.method, probe.url, None)
        if rule.audience in ("member", "signed_in") and probe.method == "GET" and \
                not _to_sign_in(answer):
            wrong.append(f"anonymous {probe.method} {probe.rule}: {answer.status_code}")
        if rule.audience == "anyone" and _to_sign_in(answer):
            wrong.append(f"anonymous {probe.method} {probe.rule} was sent to sign in")
        if rule.audience == "api_token" and answer.status_code != 401:
            wrong.append(f"anonymous {probe.method} {probe.rule}: {answer.status_code}")
    # A signed-in stranger: 404 on every route of the organisation, whatever the method.
    stranger_csrf = flows.csrf_token(stranger.get(f"{base}/orgs").text)
    before = fingerprint(app)
    for probe in member_probes:
        answer = _call(stranger, base, probe.method, probe.url, stranger_csrf)
        if answer.status_code != 404:
            wrong.append(f"stranger {probe.method} {probe.rule}: {answer.status_code}")
    assert fingerprint(app) == before
    # Each role: every refused route first (403, nothing changed), then every allowed one.
    for role in ("viewer", "accountant", "admin", "owner"):
        http = sessions[role]
        csrf = flows.csrf_token(http.get(f"{base}/orgs").text)
        refused = [p for p in member_probes if not rules[p.endpoint, p.method].allows(role)]
        before = fingerprint(app)
        for probe in refused:
            answer = _call(http, base, probe.method, probe.url, csrf)
            if answer.status_code != 403:
                wrong.append(f"{role} {probe.method} {probe.rule}: {answer.status_code}, "
                             "not 403")
        assert fingerprint(app) == before, f"a refused route changed something for {role}"
        for probe in found:
            rule = rules[probe.endpoint, probe.method]
            if rule.audience not in ("member", "signed_in") or (
                    rule.audience == "member" and not rule.allows(role)):
                continue
            answer = _call(http, base, probe.method, probe.url, csrf)
            if probe.endpoint == "auth.sign_out" and _to_sign_in(answer):
                continue  # let through: signed out, which the end of this test checks
            if answer.status_code in (401, 403) or answer.status_code >= 500 or \
                    _to_sign_in(answer):
                wrong.append(f"{role} {probe.method} {probe.rule}: {answer.status_code}, "
                             "not let through")
    assert wrong == [], "\n".join(wrong)
    for http in sessions.values():  # each signed out at the end
        assert _to_sign_in(http.get(f"{base}/orgs", allow_redirects=False))


@pytest.mark.db
def test_an_api_token_reads_every_operation_whoever_made_it(app, connected) -> None:  # type: ignore[no-untyped-def]
    spec = json.loads((ROOT / "app/api/openapi.json").read_text())
    paths = [path for path, item in spec["paths"].items() if "get" in item]
    base, org = connected.web.url, connected.org_id
    add_member(app, org, "admin@example.com", "admin")
    for email in (EMAIL, "admin@example.com"):
        token = _api_token(app, org, email)
        for path in paths:
            answer = requests.get(f"{base}/api/v1{path}",
                                  headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, (email, path, answer.text[:200])
            assert requests.get(f"{base}/api/v1{path}").status_code == 401
