"""The owner's pages over real HTTP: settings, preview, dashboard, tasks, members, languages,
sign-up with the providers' identity, and the JSON API."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user, run_jobs

pytestmark = pytest.mark.db


def _policy_row(app, org_id):  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Policy

    with app.app_context():
        row = db.session.scalars(select(Policy).where(Policy.org_id == org_id)).one()
        return row.version, row.body


def _settings_form(html: str) -> dict[str, str]:
    """Every field of the policy form as the page fills it in."""
    form = next(f for f in flows.forms_of(html) if f["method"] == "post"
                and any(i.get("name") == "send_time" for i in f["inputs"]))
    data: dict[str, str] = {}
    for field in form["inputs"]:
        name = field.get("name")
        if not name:
            continue
        if (field.get("type") or "") == "checkbox":
            if "checked" in field:
                data[name] = "on"
            continue
        data[name] = field.get("value") or ""
    for name, value in re.findall(
            r'<select id="[^"]*" name="([^"]+)"[^>]*>.*?<option value="([^"]*)" selected',
            html, flags=re.S):
        data[name] = value
    return data


def test_policy_editor_refuses_bad_values_and_saves_good_ones(app, connected) -> None:  # type: ignore[no-untyped-def]
    run_jobs(app)
    base = f"{connected.web.url}/orgs/{connected.org_id}/settings"
    page = connected.http.get(base)
    assert page.status_code == 200 and "Reminder ladder" in page.text
    version, body = _policy_row(app, connected.org_id)
    data = _settings_form(page.text)
    assert data["reminder_steps.0.offset_days"] == "-3"
    assert data["reminder_steps.3.offset_days"] == "21"

    bad = dict(data, **{"reminder_steps.1.offset_days": "-7", "send_window_hours": "30",
                        "escalation.call_task.after_days": "soon"})
    refused = connected.http.post(base, data=bad)
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text
    assert ('id="reminder_steps-1-offset_days-error">Offset_days must be strictly increasing:'
            ' step 1 has -7 after -3 in step 0.') in refused.text.replace("\n", "") or \
        "strictly increasing" in refused.text
    assert 'id="send_window_hours-error">Must be at most 24.' in refused.text
    assert 'id="escalation-call_task-after_days-error">Enter a whole number.' in refused.text
    assert 'value="-7"' in refused.text  # what was typed stays in the field
    assert _policy_row(app, connected.org_id) == (version, body)

    good = dict(data, **{"reminder_steps.4.offset_days": "35", "reminder_steps.4.tone": "final",
                         "send_time": "08:30", "escalation.call_task.after_days": "28",
                         "escalation.call_task.assignee": "Sam",
                         "late_fees.0.id": "flat40", "late_fees.0.kind": "flat",
                         "late_fees.0.amount": "40.00"})
    saved = connected.http.post(base, data=good)
    assert saved.status_code == 200 and f"Policy saved (version {version + 1})" in saved.text
    new_version, new_body = _policy_row(app, connected.org_id)
    assert new_version == version + 1
    assert [s["offset_days"] for s in new_body["reminder_steps"]] == [-3, 0, 7, 21, 35]
    assert new_body["send_time"] == "08:30:00"
    assert new_body["escalation"]["call_task"] == {"after_days": 28, "assignee": "Sam"}
    assert new_body["late_fees"][0]["rule"]["amount"] == "40.00"


def test_the_policy_editor_names_the_problems_in_the_readers_language(app, connected) -> None:  # type: ignore[no-untyped-def]
    run_jobs(app)
    base = f"{connected.web.url}/orgs/{connected.org_id}/settings"
    page = connected.http.get(base)
    connected.http.post(f"{connected.web.url}/language", data={
        "csrf_token": flows.csrf_token(page.text), "language": "de"})
    data = _settings_form(connected.http.get(base).text)
    bad = dict(data, **{"send_window_hours": "30",
                        "escalation.call_task.after_days": "soon",
                        "payment_plans.offsets": "7, later"})
    for name in [k for k in bad if k.startswith("reminder_steps.")]:
        bad[name] = ""  # no step left
    refused = connected.http.post(base, data=bad)
    assert refused.status_code == 422
    assert "Nichts wurde gespeichert" in refused.text
    expected = {
        "send_window_hours": "Darf höchstens 24 sein.",
        "escalation-call_task-after_days": "Geben Sie eine ganze Zahl ein.",
        "payment_plans-offsets": "Geben Sie ganze Tageszahlen durch Kommas getrennt an.",
        "reminder_steps-0-offset_days": "Die Mahnstufen brauchen mindestens eine Stufe."}
    for field, german in expected.items():
        assert f'id="{field}-error">{german}</p>' in refused.text, field
    # The summary names each field as the page labels it, steps counted from 1.
    for field, label in {"reminder_steps-0-offset_days": "Schritt 1: Tage ab Fälligkeit",
                         "send_window_hours": "Versandfenster (Stunden)",
                         "escalation-call_task-after_days":
                             "Eskalation: Anruf nach (Tagen)"}.items():
        assert f'<a href="#{field}">{label}</a>' in refused.text, field


def test_preview_lists_every_action_of_the_next_90_days_and_writes_nothing(app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Action, Invoice

    run_jobs(app)
    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == connected.org_id, Invoice.status == "open")
            .order_by(Invoice.due_date.desc())).first()
        actions_before = db.session.query(Action).count()
        invoice_id, number = invoice.id, invoice.number
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/preview",
                              params={"invoice": invoice_id})
    assert page.status_code == 200
    assert f"Invoice {number}" in page.text
    reminders = re.findall(r"<strong>(?:Reminder \d+ of \d+|Repeat reminder)</strong>", page.text)
    assert 1 <= len(reminders) <= 4
    with app.app_context():
        assert db.session.query(Action).count() == actions_before
    other = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/preview",
                               params={"invoice": 999_999})
    assert other.status_code == 404


def test_dashboard_chart_tasks_and_invoice_timeline(app, connected) -> None:  # type: ignore[no-untyped-def]
    from app.dashboard.services import aging
    from store.db import db
    from store.models import AuditEvent, Invoice, Organisation, Task

    run_jobs(app)
    with app.app_context():
        org = db.session.get(Organisation, connected.org_id)
        rows = aging(org, connected_today(app))
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org.id, Invoice.status == "open")).first()
        db.session.add(Task(org_id=org.id, invoice_id=invoice.id, assignee="Sam",
                            title=f"Call about {invoice.number}"))
        db.session.commit()
        task_id = db.session.scalars(select(Task.id)).one()
    assert rows and sum(rows[0].buckets.values(), Decimal(0)) == rows[0].total
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/dashboard")
    assert page.status_code == 200
    assert page.text.count('<g class="bucket"') == 5
    assert 'data-bucket="90+"' in page.text
    done = connected.http.post(
        f"{connected.web.url}/orgs/{connected.org_id}/tasks/{task_id}/done",
        data={"csrf_token": flows.csrf_token(page.text), "note": "Promised to pay Friday"})
    assert done.status_code == 200 and "Task done" in done.text
    with app.app_context():
        assert db.session.get(Task, task_id).status == "done"
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.kind == "task_done")).one()
        assert {k: event.data[k] for k in ("task_id", "note")} == {
            "task_id": task_id, "note": "Promised to pay Friday"}
        invoice_id = event.invoice_id
    timeline = connected.http.get(
        f"{connected.web.url}/orgs/{connected.org_id}/invoices/{invoice_id}")
    assert timeline.status_code == 200 and "Promised to pay Friday" in timeline.text


def connected_today(app):  # type: ignore[no-untyped-def]
    return app.config["CLOCK"]().date()


def test_hebrew_pages_are_right_to_left_and_money_follows_the_language(app, connected) -> None:  # type: ignore[no-untyped-def]
    run_jobs(app)
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/dashboard")
    assert '<html lang="en" dir="ltr">' in page.text
    token = flows.csrf_token(page.text)
    connected.http.post(f"{connected.web.url}/language",
                        data={"csrf_token": token, "language": "he",
                              "next": f"/orgs/{connected.org_id}/dashboard"})
    hebrew = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/dashboard")
    assert '<html lang="he" dir="rtl">' in hebrew.text
    connected.http.post(f"{connected.web.url}/language",
                        data={"csrf_token": token, "language": "de"})
    german = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/dashboard")
    assert '<html lang="de" dir="ltr">' in german.text and "Forderungsalter" in german.text
    assert re.search(r"\d,\d\d\xa0£", german.text)  # 1.234,50 £: German writes money so


def test_sign_up_with_xero_makes_user_organisation_and_connection(app, web) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection, Membership, User, UserIdentity

    http = requests.Session()
    http.headers["Accept-Language"] = "nb-NO,nb;q=0.9,en;q=0.5"
    consent = http.get(f"{web.url}/launch/xero")
    assert consent.status_code == 200 and "<form" in consent.text
    landed = flows.answer_consent(http, consent, "allow")
    assert landed.status_code == 200, landed.text[:400]
    assert "/dashboard" in landed.url
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert user.email == "owner@example.com"
        assert user.language == "nb"  # the browser's, for what Dunwell emails them
        identity = db.session.scalars(select(UserIdentity)).one()
        assert (identity.provider, identity.subject) == ("xero",
                                                         "4a5c2b1e00004000800000000000000a")
        connection = db.session.scalars(select(Connection)).one()
        membership = db.session.scalars(select(Membership)).one()
        assert (membership.user_id, membership.org_id, membership.role) == (
            user.id, connection.org_id, "owner")
    # Signing in again with Xero finds the same person, whose language another browser
    # does not change.
    again = requests.Session()
    again.headers["Accept-Language"] = "de-DE,de;q=0.9"
    flows.answer_consent(again, again.get(f"{web.url}/signup/xero"), "allow")
    with app.app_context():
        assert db.session.query(User).count() == 1
        assert db.session.scalars(select(User.language)).one() == "nb"
        assert db.session.query(UserIdentity).count() == 1


def test_sign_in_with_intuit_reads_the_user_info(app, web) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Connection, User, UserIdentity

    http = requests.Session()
    http.headers["Accept-Language"] = "he-IL,he;q=0.9,en-US;q=0.8"
    consent = http.get(f"{web.url}/launch/intuit")
    landed = flows.answer_consent(http, consent, "allow")
    assert landed.status_code == 200, landed.text[:400]
    with app.app_context():
        identity = db.session.scalars(select(UserIdentity)).one()
        assert identity.provider == "intuit"
        assert db.session.scalars(select(Connection)).one().provider == "quickbooks"
        assert db.session.scalars(select(User.language)).one() == "he"


def test_an_existing_password_account_is_not_taken_over_by_an_email_claim(app, web) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Organisation

    create_user(app, "owner@example.com", PASSWORD)
    http = requests.Session()
    refused = flows.answer_consent(http, http.get(f"{web.url}/signup/xero"), "allow")
    assert refused.status_code == 403 and "sign in with its password first" in refused.text
    with app.app_context():
        assert db.session.query(Organisation).count() == 0


def _invite(connected, email: str, role: str) -> str:  # type: ignore[no-untyped-def]
    """The owner invites `email` from the members page; the invitation's link."""
    members = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/members")
    made = connected.http.post(
        f"{connected.web.url}/orgs/{connected.org_id}/members/invite",
        data={"csrf_token": flows.csrf_token(members.text), "email": email, "role": role})
    return re.search(r'id="invitation-link">([^<]+)<', made.text).group(1)


def test_invitation_roles_and_viewer_cannot_edit(app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Membership, User

    run_jobs(app)
    link = _invite(connected, "Viewer@Example.com", "viewer")
    guest = requests.Session()
    page = guest.get(link)
    assert "You are invited as viewer, for viewer@example.com." in page.text
    joined = guest.post(link, data={"csrf_token": flows.csrf_token(page.text),
                                    "password": "a long enough password"})
    assert joined.status_code == 200 and "You joined" in joined.text
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "viewer@example.com")).one()
        role = db.session.scalars(select(Membership.role).where(
            Membership.user_id == user.id)).one()
    assert role == "viewer"
    assert guest.get(link).status_code == 404  # used once
    settings = guest.get(f"{connected.web.url}/orgs/{connected.org_id}/settings")
    assert settings.status_code == 200 and "Save policy" not in settings.text
    edit = guest.post(f"{connected.web.url}/orgs/{connected.org_id}/settings",
                      data={"csrf_token": flows.csrf_token(settings.text),
                            "reminder_steps.0.offset_days": "1"})
    assert edit.status_code == 403


def test_an_invited_member_gets_the_browsers_language_on_accepting(app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import User

    link = _invite(connected, "collector@example.com", "admin")
    guest = requests.Session()
    guest.headers["Accept-Language"] = "nb-NO,nb;q=0.9,en;q=0.5"
    page = guest.get(link)
    joined = guest.post(link, data={"csrf_token": flows.csrf_token(page.text),
                                    "password": "a long enough password"})
    assert joined.status_code == 200 and '<html lang="nb"' in joined.text
    with app.app_context():
        assert db.session.scalar(select(User.language).where(
            User.email == "collector@example.com")) == "nb"  # what Dunwell emails them in


def test_json_api_needs_its_organisation_token(app, connected) -> None:  # type: ignore[no-untyped-def]
    run_jobs(app)
    api = f"{connected.web.url}/api/v1"
    assert requests.get(f"{api}/aging").status_code == 401
    assert requests.get(f"{api}/aging", headers={"Authorization": "Bearer dw_nope"}
                        ).status_code == 401
    page = connected.http.get(f"{connected.web.url}/orgs/{connected.org_id}/members")
    made = connected.http.post(f"{connected.web.url}/orgs/{connected.org_id}/api-tokens",
                               data={"csrf_token": flows.csrf_token(page.text),
                                     "name": "Practice tool"})
    token = re.search(r'id="api-token">([^<]+)<', made.text).group(1)
    auth = {"Authorization": f"Bearer {token}"}
    org = requests.get(f"{api}/organisation", headers=auth).json()
    assert org["id"] == connected.org_id
    aging = requests.get(f"{api}/aging", headers=auth).json()
    assert set(aging["currencies"][0]["buckets"]) == {"current", "1-30", "31-60", "61-90",
                                                      "90+"}
    invoices = requests.get(f"{api}/invoices", params={"status": "open"}, headers=auth).json()
    assert invoices["invoices"] and {i["status"] for i in invoices["invoices"]} == {"open"}
    assert requests.get(f"{api}/invoices", params={"limit": "0"}, headers=auth
                        ).status_code == 400
    one = requests.get(f"{api}/invoices", params={"status": "open", "limit": "1"}, headers=auth)
    assert [i["id"] for i in one.json()["invoices"]] == [invoices["invoices"][0]["id"]]
    bad = requests.get(f"{api}/actions", params={"status": "sent"}, headers=auth)
    assert bad.status_code == 400 and "status must be one of" in bad.text
