"""The settings page's credit-control editor through the Flask test client: deposits with
milestones, terms on hold, the new-customer variant and the default credit limit saved as the
policy's next version (the very policy the command line writes), refused field by field in the
reader's language with nothing saved, and refused to a viewer; and the header and organisation
links each member is shown."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import PASSWORD, create_user

pytestmark = pytest.mark.db

OWNER = "owner@example.com"

VALID = {
    "default_credit_limit": "5000",
    "statement_day": "24",
    "statement_time": "10:30",
    "stop_service_on_hold": "on",
    "stop_service_webhook_url": "http://127.0.0.1:8123/stop",
    "deposits.threshold": "2500.00",
    "deposits.currency": "gbp",
    "deposits.schedule": "30/30/40",
    "deposits.due_days": "0/30/60",
    "deposits.reminder_offsets": "-3, 0, 7",
    "deposits.channel": "note",
    "terms_on_hold.on": "on",
    "terms_on_hold.due_in_days": "3",
    "terms_on_hold.when": "on_hold",
    "new_customer_policy.paid_on_time": "2",
    "new_customer_policy.policy": json.dumps(
        {"reminder_steps": [{"offset_days": 0, "tone": "firm"},
                            {"offset_days": 3, "tone": "final"}]}),
}
# The same sections as the command line takes them.
CLI_SECTIONS = {
    "--deposits": {"threshold": "2500.00", "currency": "GBP", "channel": "note",
                   "reminder_offsets": [-3, 0, 7],
                   "schedule": [{"percent": "30"}, {"percent": "30", "due_offset_days": 30},
                                {"percent": "40", "due_offset_days": 60}]},
    "--terms-on-hold": {"due_in_days": 3, "when": "on_hold"},
    "--new-customer": {"paid_on_time": 2, "policy": {"reminder_steps": [
        {"offset_days": 0, "tone": "firm"}, {"offset_days": 3, "tone": "final"}]}},
}


def _org(app, name: str, members: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    """An organisation with the given members (email: role), each user made if new."""
    from store.db import db
    from store.models import Membership, Organisation, User

    for email in members:
        with app.app_context():
            known = db.session.scalar(select(User.id).where(User.email == email))
        if known is None:
            create_user(app, email, PASSWORD)
    with app.app_context():
        org = Organisation(name=name, country="GB", timezone="Europe/London",
                           base_currency="GBP")
        db.session.add(org)
        db.session.flush()
        for email, role in members.items():
            user_id = db.session.scalar(select(User.id).where(User.email == email))
            db.session.add(Membership(user_id=user_id, org_id=org.id, role=role))
        db.session.commit()
        return org.id


def _client(app, email: str = OWNER):  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/signin")
    answer = client.post("/signin", data={"csrf_token": flows.csrf_token(page.text),
                                          "email": email, "password": PASSWORD})
    assert answer.status_code == 302, answer.text[:300]
    return client


def _post(client, org_id: int, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    token = flows.csrf_token(client.get(f"/orgs/{org_id}/settings").text)
    return client.post(f"/orgs/{org_id}/settings/credit", data={"csrf_token": token, **fields})


def _stored(app, org_id: int) -> tuple[dict[str, Any], int, Decimal | None, int, Any]:
    """The policy body and version, the default credit limit, policy_saved events, and the
    statement and stop-service settings."""
    from store.db import db
    from store.models import AuditEvent, CreditSettings
    from store.models import Policy as PolicyRow

    with app.app_context():
        row = db.session.scalar(select(PolicyRow).where(PolicyRow.org_id == org_id))
        limit = db.session.scalar(select(CreditSettings.default_credit_limit).where(
            CreditSettings.org_id == org_id))
        settings = db.session.execute(select(
            CreditSettings.statement_day, CreditSettings.statement_time,
            CreditSettings.stop_service_on_hold, CreditSettings.stop_service_webhook_url).where(
            CreditSettings.org_id == org_id)).one_or_none()
        saved = len(db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org_id, AuditEvent.kind == "policy_saved")).all())
        return (dict(row.body) if row else {}, row.version if row else 0, limit, saved,
                tuple(settings) if settings else None)


def _field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(name.replace(".", "-"))}-error">'
                      r"([^<]*)</p>", page)
    assert found, f"no error shown next to {name}"
    return html.unescape(found.group(1))


def _value(page: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert found, f"no field {name}"
    return html.unescape(found.group(1))


def test_owner_saves_every_credit_section_as_the_command_line_would(app) -> None:  # type: ignore[no-untyped-def]
    from rules import policy_from_json

    org_id = _org(app, "Harbour Coffee", {OWNER: "owner"})
    cli_org = _org(app, "Alder Joinery", {OWNER: "owner"})
    client = _client(app)
    page = client.get(f"/orgs/{org_id}/settings")
    assert page.status_code == 200
    assert 'id="credit-form"' in page.text and _value(page.text, "deposits.currency") == "GBP"
    form = page.text[page.text.index('id="credit-form"'):]
    form = form[:form.index("</form>")]
    fields = re.findall(r'<(?:input|select|textarea) (?:type="(?!hidden)[^"]*" )?id="([^"]+)"',
                        form)
    assert len(fields) >= 11 and "terms_on_hold-when" in fields
    assert all(f'<label for="{field}"' in form or f'for="{field}"' in form
               for field in fields)  # every field is labelled
    assert _stored(app, org_id) == ({}, 0, None, 0, None)  # looking saves nothing

    saved = _post(client, org_id, VALID)
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith(f"/orgs/{org_id}/settings#credit")
    body, version, limit, events, settings = _stored(app, org_id)
    assert (limit, events) == (Decimal("5000.00"), 1)
    assert settings == (24, "10:30", True, "http://127.0.0.1:8123/stop")
    policy = policy_from_json(body)
    assert policy.deposits is not None and policy.terms_on_hold is not None
    assert [(m.percent, m.due_offset_days) for m in policy.deposits.schedule] == [
        (Decimal(30), 0), (Decimal(30), 30), (Decimal(40), 60)]
    assert (policy.deposits.threshold, policy.deposits.currency, policy.deposits.channel,
            policy.deposits.reminder_offsets) == (Decimal("2500.00"), "GBP", "note", (-3, 0, 7))
    assert (policy.terms_on_hold.due_in_days, policy.terms_on_hold.when) == (3, "on_hold")
    assert policy.new_customer_policy is not None
    assert policy.new_customer_policy.paid_on_time == 2

    # The command line writes the very same policy, as the next version, in the activity log.
    runner = app.test_cli_runner()
    made = runner.invoke(args=["customers", "credit-policy", str(cli_org), *[
        part for option, section in CLI_SECTIONS.items()
        for part in (option, json.dumps(section))]])
    assert made.exit_code == 0, made.output
    made = runner.invoke(args=["customers", "settings", str(cli_org), "--statement-day", "24",
                               "--statement-time", "10:30", "--stop-service-on-hold",
                               "--webhook-url", "http://127.0.0.1:8123/stop"])
    assert made.exit_code == 0, made.output
    cli_body, cli_version, _cli_limit, cli_events, cli_settings = _stored(app, cli_org)
    assert cli_settings == settings
    assert policy_from_json(cli_body) == policy
    assert cli_body == body
    assert (cli_version, cli_events) == (version, 1)

    # The page shows what was saved; saving it unchanged makes no new version.
    shown = client.get(f"/orgs/{org_id}/settings").text
    assert (_value(shown, "deposits.schedule"), _value(shown, "deposits.due_days"),
            _value(shown, "default_credit_limit")) == ("30/30/40", "0/30/60", "5000.00")
    assert 'name="terms_on_hold.on" checked' in shown
    again = _post(client, org_id, {**VALID, "deposits.currency": "GBP"})
    assert again.status_code == 302
    assert _stored(app, org_id)[1:] == (version, Decimal("5000.00"), 1, settings)

    # Empty fields turn the sections off (and clear the default limit).
    off = _post(client, org_id, {"deposits.currency": "GBP", "deposits.schedule": "30/70"})
    assert off.status_code == 302
    body, _version, limit, _events, settings = _stored(app, org_id)
    assert (limit, settings) == (None, (None, "09:00", False, None))
    assert not {"deposits", "terms_on_hold", "new_customer_policy"} & set(body)


@pytest.mark.parametrize(("fields", "name", "expected"), [
    ({"deposits.schedule": "30/30"}, "deposits.schedule",
     "The milestones must add up to 100 %, not 60 %."),
    ({"deposits.currency": "pounds"}, "deposits.currency",
     "Give a three-letter currency code, such as GBP."),
    ({"deposits.threshold": "-1"}, "deposits.threshold", "Must be more than 0."),
    ({"deposits.reminder_offsets": "3, 0"}, "deposits.reminder_offsets",
     "Each reminder must come after the one before it."),
    ({"deposits.due_days": "0/30"}, "deposits.due_days",
     "Give one number of days for each milestone (3)."),
    ({"terms_on_hold.due_in_days": "90"}, "terms_on_hold.due_in_days", "Must be at most 60."),
    ({"terms_on_hold.when": "always"}, "terms_on_hold.when",
     "Choose one of the offered options."),
    ({"new_customer_policy.policy": "{"}, "new_customer_policy.policy",
     "This is not valid JSON (line 1, column 2)."),
    ({"new_customer_policy.paid_on_time": "0"}, "new_customer_policy.paid_on_time",
     "Must be at least 1."),
    ({"default_credit_limit": "12.345"}, "default_credit_limit",
     "A credit limit has at most two decimal places."),
    ({"statement_day": "31"}, "statement_day", "Choose a day from 1 to 28: every month has it."),
    ({"statement_time": "25:00"}, "statement_time", "Give a time as HH:MM."),
    ({"stop_service_webhook_url": "http://10.1.2.3/stop"}, "stop_service_webhook_url",
     "The webhook address"),
])
def test_a_bad_field_is_shown_beside_it_and_nothing_is_saved(app, fields, name, expected) -> None:  # type: ignore[no-untyped-def]
    org_id = _org(app, "Harbour Coffee", {OWNER: "owner"})
    client = _client(app)
    assert _post(client, org_id, VALID).status_code == 302
    before = _stored(app, org_id)
    assert before[1:4] == (before[1], Decimal("5000.00"), 1)
    refused = _post(client, org_id, {**VALID, **fields, "default_credit_limit": "7000"}
                    if name != "default_credit_limit" else {**VALID, **fields})
    assert refused.status_code == 422
    assert _field_error(refused.text, name).startswith(expected)
    assert _stored(app, org_id) == before
    # The owner's entries are kept for correcting, and the policy form above is untouched.
    assert _value(refused.text, "deposits.schedule") == {**VALID, **fields}["deposits.schedule"]
    assert _value(refused.text, "reminder_steps.0.offset_days") == "-3"


def test_a_policys_own_statement_day_is_shown_and_saved_by_the_one_field(app) -> None:  # type: ignore[no-untyped-def]
    """A policy that names its own statement day (its statement-invoice fees fall due on it):
    the page's one statement-day field shows that day, not the statements', and saving the
    form sets it (and the statements' day with it); a day out of range saves nothing."""
    from store.db import db
    from store.models import Policy as PolicyRow

    org_id = _org(app, "Harbour Coffee", {OWNER: "owner"})
    client = _client(app)
    assert _post(client, org_id, {**VALID, "statement_day": "3"}).status_code == 302
    with app.app_context():
        row = db.session.scalar(select(PolicyRow).where(PolicyRow.org_id == org_id))
        row.body = {**row.body, "statement_day": 15}
        db.session.commit()
    assert _value(client.get(f"/orgs/{org_id}/settings").text, "statement_day") == "15"

    assert _post(client, org_id, {**VALID, "statement_day": "20"}).status_code == 302
    body, _version, _limit, _events, settings = _stored(app, org_id)
    assert (body["statement_day"], settings[0]) == (20, 20)
    assert _value(client.get(f"/orgs/{org_id}/settings").text, "statement_day") == "20"

    before = _stored(app, org_id)
    refused = _post(client, org_id, {**VALID, "statement_day": "31"})
    assert refused.status_code == 422
    assert _field_error(refused.text, "statement_day").startswith("Choose a day from 1 to 28")
    assert _stored(app, org_id) == before

    # Emptied: no statements, and the policy's fees fall back to the 1st as for a new policy.
    assert _post(client, org_id, {**VALID, "statement_day": ""}).status_code == 302
    body, _version, _limit, _events, settings = _stored(app, org_id)
    assert (body.get("statement_day"), settings[0]) == (None, None)


def test_a_variant_that_is_no_policy_is_refused_whole(app) -> None:  # type: ignore[no-untyped-def]
    org_id = _org(app, "Harbour Coffee", {OWNER: "owner"})
    client = _client(app)
    assert _post(client, org_id, VALID).status_code == 302
    before = _stored(app, org_id)
    for variant, expected in [
            ({"version": 2}, "the new-customer variant cannot set version"),
            ({"reminder_steps": [{"offset_days": 5}, {"offset_days": 1}]},
             "offset_days must be strictly increasing"),
            (["reminder_steps"], "Give a JSON object of policy sections.")]:
        refused = _post(client, org_id, {**VALID,
                                         "new_customer_policy.policy": json.dumps(variant)})
        assert refused.status_code == 422
        assert expected in _field_error(refused.text, "new_customer_policy.policy")
        assert _stored(app, org_id) == before


def test_errors_are_in_the_readers_language(app) -> None:  # type: ignore[no-untyped-def]
    org_id = _org(app, "Harbour Coffee", {OWNER: "owner"})
    client = _client(app)
    page = client.get(f"/orgs/{org_id}/settings")
    client.post("/language", data={"csrf_token": flows.csrf_token(page.text), "language": "de",
                                   "next": f"/orgs/{org_id}/settings"})
    assert _post(client, org_id, VALID).status_code == 302
    before = _stored(app, org_id)
    refused = _post(client, org_id, {**VALID, "deposits.schedule": "30/30",
                                     "terms_on_hold.due_in_days": "x"})
    assert refused.status_code == 422
    assert _field_error(refused.text, "deposits.schedule") == \
        "Die Meilensteine müssen zusammen 100 % ergeben, nicht 60 %."
    assert _field_error(refused.text, "terms_on_hold.due_in_days") == \
        "Geben Sie eine ganze Zahl ein."
    assert '<h2 id="credit-title">Kreditkontrolle</h2>' in refused.text
    assert _stored(app, org_id) == before


def test_only_editors_may_save_credit_control(app) -> None:  # type: ignore[no-untyped-def]
    org_id = _org(app, "Harbour Coffee", {OWNER: "owner", "viewer@example.com": "viewer"})
    outsider_org = _org(app, "Someone Else Ltd", {"other@example.com": "owner"})
    assert _post(_client(app), org_id, VALID).status_code == 302
    viewer = _client(app, "viewer@example.com")
    page = viewer.get(f"/orgs/{org_id}/settings")
    assert page.status_code == 200
    assert _value(page.text, "deposits.threshold") == "2500.00"
    assert "Save credit control" not in page.text
    assert re.search(r'name="deposits.threshold" value="[^"]*"\s+disabled', page.text)
    before = _stored(app, org_id)
    refused = viewer.post(f"/orgs/{org_id}/settings/credit",
                          data={"csrf_token": flows.csrf_token(page.text), **VALID})
    assert refused.status_code == 403
    assert _stored(app, org_id) == before
    # Someone else's book does not exist for them.
    hidden = viewer.post(f"/orgs/{outsider_org}/settings/credit",
                         data={"csrf_token": flows.csrf_token(page.text), **VALID})
    assert hidden.status_code == 404
    # Without the CSRF token, nothing either.
    owner = _client(app)
    assert owner.post(f"/orgs/{org_id}/settings/credit", data=VALID).status_code == 400
    assert _stored(app, org_id) == before


def _links(page: str) -> dict[str, str]:
    """The header's and organisation navigation's links: text -> address."""
    navs = re.findall(r"<nav[^>]*>(.*?)</nav>", page, re.S)
    return {re.sub(r"<[^>]+>", "", text).strip(): href for nav in navs
            for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', nav, re.S)}


def test_header_and_organisation_links_follow_each_pages_own_access_rule(app) -> None:  # type: ignore[no-untyped-def]
    from collect.approvals import AWAITING_APPROVAL
    from store.db import db
    from store.models import Action

    org_id = _org(app, "Harbour Coffee", {OWNER: "owner",
                                          "accountant@example.com": "accountant"})
    # The owner of one book has no practice view: no link to it.
    owner = _client(app)
    links = _links(owner.get(f"/orgs/{org_id}/dashboard").text)
    assert "Practice" not in links
    assert links["Approvals"] == f"/orgs/{org_id}/settings/approvals"
    assert owner.get(links["Approvals"]).status_code == 200
    # An accountant has one, and it opens.
    accountant = _client(app, "accountant@example.com")
    links = _links(accountant.get("/orgs").text)
    assert links["Practice"] == "/practice"
    assert accountant.get("/practice").status_code == 200
    # Actions waiting for approval are counted beside the link.
    with app.app_context():
        for n in range(2):
            db.session.add(Action(org_id=org_id, key=f"{org_id}:wait:{n}", kind="reminder",
                                  scheduled_for=datetime(2026, 11, 24, 9, tzinfo=UTC),
                                  status=AWAITING_APPROVAL, reason="Reminder"))
        db.session.commit()
    page = owner.get(f"/orgs/{org_id}/settings").text
    assert '<span class="badge" aria-hidden="true">2</span>' in page
    assert "2 actions wait for your approval" in page
