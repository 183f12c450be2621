"""The stop-service webhook address is checked when it is saved, not only when it is called:
on the policy page and in the credit settings, an address on our own network, plain http, a
user name or password in it, or a host that does not resolve is refused with the reason, and
nothing is saved. (Public hosts are written as literal addresses: tests have no DNS.)"""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from sqlalchemy import select

from collect.outbound import OutboundRefused, check_url_to_save, refusal_to_save
from tests.integration.conftest import run_jobs
from tests.integration.test_web_pages import _settings_form

PUBLIC = "https://93.184.216.34/dunwell/stop"
REFUSED_IN_PRODUCTION = {
    "http://93.184.216.34/dunwell/stop": "must start with https://",
    "https://127.0.0.1:8443/hook": "is a loopback address (127.0.0.1)",
    "https://localhost/hook": "is a loopback address",
    "https://[::1]/hook": "is a loopback address (::1)",
    "https://10.1.2.3/hook": "is a private address (10.1.2.3)",
    "https://192.168.0.10/hook": "is a private address (192.168.0.10)",
    "https://169.254.169.254/latest/meta-data/": "is a link-local address (169.254.169.254)",
    "https://[fe80::1]/hook": "is a link-local address (fe80::1)",
    "https://240.0.0.1/hook": "(240.0.0.1)",
    "https://0.0.0.0/hook": "is an unspecified address (0.0.0.0)",
    "https://user:secret@93.184.216.34/hook": "must not carry a user name or password",
    "https://no-such-host.invalid/hook": "does not resolve",
    "ftp://93.184.216.34/hook": "must start with https:// or http://",
    "https:///hook": "has no host",
}


@pytest.mark.parametrize("url", sorted(REFUSED_IN_PRODUCTION))
def test_production_refuses_at_save_time(url: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        check_url_to_save(url, allow_loopback=False)
    assert REFUSED_IN_PRODUCTION[url] in str(refused.value)


def test_a_public_https_address_is_accepted_and_loopback_http_only_when_allowed() -> None:
    check_url_to_save(PUBLIC, allow_loopback=False)
    check_url_to_save("https://[2606:2800:220:1:248:1893:25c8:1946]/hook", allow_loopback=False)
    # The demo's and tests' receivers listen on 127.0.0.1 over plain http ...
    check_url_to_save("http://127.0.0.1:9/hook", allow_loopback=True)
    # ... which opens neither plain http to the world nor the private network.
    with pytest.raises(OutboundRefused, match="must start with https://"):
        check_url_to_save("http://93.184.216.34/hook", allow_loopback=True)
    with pytest.raises(OutboundRefused, match="is a private address"):
        check_url_to_save("https://10.0.0.1/hook", allow_loopback=True)
    app = Flask("save-check")
    app.config["OUTBOUND_ALLOW_LOOPBACK"] = False
    with app.app_context():
        assert refusal_to_save(PUBLIC) is None
        assert refusal_to_save("http://127.0.0.1:9/hook") == (
            "The webhook address 127.0.0.1 is a loopback address (127.0.0.1); "
            "only public addresses are called.")


def _policy(app, org_id: int) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import Policy

    with app.app_context():
        row = db.session.scalars(select(Policy).where(Policy.org_id == org_id)).one()
        found = row.version, json.loads(json.dumps(row.body))
        db.session.remove()
    return found


@pytest.mark.db
def test_the_policy_page_refuses_such_an_address_next_to_the_field_and_saves_nothing(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    app.config["OUTBOUND_ALLOW_LOOPBACK"] = False  # production mode
    run_jobs(app)
    base = f"{connected.web.url}/orgs/{connected.org_id}/settings"
    page = connected.http.get(base)
    data = _settings_form(page.text)
    before = _policy(app, connected.org_id)
    field = "escalation.stop_service.webhook_url"
    for url in ("http://93.184.216.34/stop", "https://169.254.169.254/latest/meta-data/",
                "https://127.0.0.1/hook", "https://admin:pw@93.184.216.34/stop",
                "https://no-such-host.invalid/stop"):
        refused = connected.http.post(base, data={
            **data, "escalation.stop_service.after_days": "45", field: url})
        assert refused.status_code == 422, url
        assert "Nothing was saved" in refused.text
        error = re.search(
            r'id="escalation-stop_service-webhook_url-error"[^>]*>([^<]+)<', refused.text)
        assert error and "The webhook address" in error.group(1), (url, refused.text[-2000:])
        assert 'aria-describedby="escalation-stop_service-webhook_url-error"' in refused.text
        assert _policy(app, connected.org_id) == before

    saved = connected.http.post(base, data={
        **data, "escalation.stop_service.after_days": "45", field: PUBLIC})
    assert saved.status_code == 200 and "Policy saved" in saved.text
    version, body = _policy(app, connected.org_id)
    assert version == before[0] + 1
    assert body["escalation"]["stop_service"] == {"after_days": 45, "webhook_url": PUBLIC}


@pytest.mark.db
def test_the_credit_settings_refuse_such_an_address_and_save_nothing(
        app, connected) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import CreditSettings

    app.config["OUTBOUND_ALLOW_LOOPBACK"] = False  # production mode
    org = str(connected.org_id)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["customers", "settings", org, "--webhook-url", PUBLIC])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["webhook_url"] == PUBLIC

    def stored() -> tuple[str | None, bool, int | None]:
        with app.app_context():
            row = db.session.scalars(select(CreditSettings).where(
                CreditSettings.org_id == connected.org_id)).one()
            found = row.stop_service_webhook_url, row.stop_service_on_hold, row.statement_day
            db.session.remove()
        return found

    before = stored()
    for url, reason in REFUSED_IN_PRODUCTION.items():
        # With other settings in the same command: none of them is saved either.
        refused = runner.invoke(args=["customers", "settings", org, "--statement-day", "12",
                                      "--stop-service-on-hold", "--webhook-url", url])
        assert refused.exit_code == 1, (url, refused.output)
        assert "--webhook-url: " in refused.output and reason in refused.output, url
        assert stored() == before, url
    cleared = runner.invoke(args=["customers", "settings", org, "--webhook-url", ""])
    assert cleared.exit_code == 0 and stored()[0] is None
