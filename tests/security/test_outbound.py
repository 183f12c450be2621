"""The stop-service webhook reaches public addresses only, signed, within a timeout."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from werkzeug.wrappers import Request, Response

from collect import outbound
from collect.outbound import OutboundRefused, check_url, post_signed, refusal
from connectors.base import ConfigurationError, TransientError
from tests.conftest import LiveServer

REFUSED = {
    "127.0.0.1": "a loopback address",
    "127.8.9.10": "a loopback address",
    "::1": "a loopback address",
    "::ffff:127.0.0.1": "a loopback address",
    "64:ff9b::7f00:1": "a loopback address",
    "2002:7f00:1::": "a loopback address",
    "0.0.0.0": "an unspecified address",
    "::": "an unspecified address",
    "169.254.169.254": "a link-local address",
    "fe80::1": "a link-local address",
    "::ffff:169.254.169.254": "a link-local address",
    "224.0.0.1": "a multicast address",
    "ff02::1": "a multicast address",
    "10.0.0.1": "a private address",
    "172.16.5.4": "a private address",
    "192.168.1.1": "a private address",
    "::ffff:10.0.0.1": "a private address",
    "fc00::1": "a private address",
    "fd12:3456::1": "a private address",
    "100.64.0.1": "a non-public address",
    "240.0.0.1": "a private address",
}


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_special_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_loopback=False) == REFUSED[address]


def test_public_addresses_pass_and_loopback_only_when_allowed() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert refusal(ipaddress.ip_address(address), allow_loopback=False) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal(ipaddress.ip_address("::1"), allow_loopback=True) is None
    # The demo's flag opens loopback, never the private network or the metadata service.
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) == "a private address"
    assert refusal(ipaddress.ip_address("169.254.169.254"), allow_loopback=True) == \
        "a link-local address"


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:9/hook", "is a loopback address (127.0.0.1)"),
    ("http://10.0.0.1/hook", "is a private address (10.0.0.1)"),
    ("http://169.254.169.254/latest/meta-data/", "is a link-local address (169.254.169.254)"),
    ("http://[::1]:8080/hook", "is a loopback address (::1)"),
    ("http://[::ffff:127.0.0.1]/hook", "is a loopback address (::ffff:127.0.0.1)"),
    ("https://localhost/hook", "is a loopback address"),
    ("http://0.0.0.0:6379/", "is an unspecified address (0.0.0.0)"),
    ("ftp://example.com/hook", "must start with https:// or http://"),
    ("file:///etc/passwd", "must start with https:// or http://"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "must start with https:// or http://"),
    ("http:///hook", "has no host"),
    ("http://user:secret@example.com/hook", "must not carry a user name or password"),
    ("http://[::1/hook", "is not a URL"),
])
def test_urls_to_our_own_network_or_other_schemes_are_refused(url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused, match=reason.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")) as refused:
        check_url(url, allow_loopback=False)
    assert isinstance(refused.value, ConfigurationError)  # the owner must fix it: no retries


class Receiver:
    """A real HTTP receiver on 127.0.0.1 that records what it was sent."""

    def __init__(self, answer: Response | None = None, delay: float = 0.0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answer, self.delay = answer, delay
        self.server = LiveServer(self)

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        time.sleep(self.delay)
        answer = self.answer or Response("ok", status=200)
        return answer(environ, start_response)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.server.stop()


def _app(allow_loopback: bool) -> Flask:
    app = Flask("outbound-test")
    app.config.update(SECRET_KEY="test-secret-key", OUTBOUND_ALLOW_LOOPBACK=allow_loopback)
    return app


BODY = json.dumps({"event": "stop_service", "organisation_id": 7}).encode()


def test_a_signed_post_reaches_loopback_only_when_the_flag_allows_it(receivers) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()
    receivers.append(receiver)
    with _app(allow_loopback=False).app_context(), pytest.raises(
            OutboundRefused, match="loopback"):
        post_signed(f"{receiver.server.url}/hook", BODY, 7, "7:1:stop_service")
    assert receiver.received == []
    with _app(allow_loopback=True).app_context():
        assert post_signed(f"{receiver.server.url}/hook", BODY, 7, "7:1:stop_service") == 200
    [(headers, body)] = receiver.received
    assert body == BODY
    key = hmac.new(b"test-secret-key", b"webhook:7", hashlib.sha256).hexdigest()
    expected = hmac.new(key.encode(), BODY, hashlib.sha256).hexdigest()
    assert headers["Dunwell-Signature"] == f"sha256={expected}"
    assert headers["Dunwell-Delivery"] == "7:1:stop_service"
    # Another organisation's key signs differently: one receiver cannot forge another's.
    with _app(allow_loopback=True).app_context():
        assert outbound.signature(BODY, 8) != expected


def test_the_connection_itself_is_guarded_not_only_the_url(receivers) -> None:  # type: ignore[no-untyped-def]
    """Were DNS to answer differently at connect time, the address connected to is checked."""
    receiver = Receiver()
    receivers.append(receiver)
    with pytest.raises(OutboundRefused, match="loopback"):
        outbound.guarded_session(allow_loopback=False).get(receiver.server.url, timeout=2)
    assert receiver.received == []


def test_redirects_are_refused_not_followed(receivers) -> None:  # type: ignore[no-untyped-def]
    target = Receiver()
    redirecting = Receiver(Response("", status=307, headers={"Location": target.server.url}))
    metadata = Receiver(Response("", status=302, headers={
        "Location": "http://169.254.169.254/latest/meta-data/iam"}))
    receivers.extend([target, redirecting, metadata])
    with _app(allow_loopback=True).app_context():
        for source in (redirecting, metadata):
            with pytest.raises(OutboundRefused, match="answered a redirect"):
                post_signed(f"{source.server.url}/hook", BODY, 7, "k")
            assert len(source.received) == 1
    assert target.received == []


def test_slow_receivers_time_out_as_transient_and_errors_are_classified(  # type: ignore[no-untyped-def]
        receivers, monkeypatch) -> None:
    slow = Receiver(delay=2.0)
    refusing = Receiver(Response("no", status=403))
    busy = Receiver(Response("later", status=503))
    receivers.extend([slow, refusing, busy])
    monkeypatch.setattr(outbound, "TIMEOUT_SECONDS", (1, 0.3))
    with _app(allow_loopback=True).app_context():
        started = time.monotonic()
        with pytest.raises(TransientError, match="ReadTimeout"):
            post_signed(slow.server.url, BODY, 7, "k")
        assert time.monotonic() - started < 1.5
        with pytest.raises(ConfigurationError, match="answered 403"):
            post_signed(refusing.server.url, BODY, 7, "k")
        with pytest.raises(TransientError, match="answered 503"):
            post_signed(busy.server.url, BODY, 7, "k")


def test_proxies_from_the_environment_are_ignored(receivers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()
    receivers.append(receiver)
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "")
    with _app(allow_loopback=True).app_context():
        assert post_signed(receiver.server.url, BODY, 7, "k") == 200
    assert requests.Session().trust_env  # (the ordinary default, which the guard turns off)


@pytest.mark.db
@pytest.mark.parametrize("where", ["loopback", "metadata"])
def test_a_stop_service_signal_to_our_own_network_needs_the_owner_and_sends_nothing(
        app, connected, where) -> None:  # type: ignore[no-untyped-def]
    """The whole path: a credit hold plans a stop-service signal, the worker refuses the
    address in production mode, the action ends needing the owner, and nothing is sent."""
    from sqlalchemy import select

    from jobs.tasks import sync_org
    from store.db import db
    from store.models import Action, Contact, Invoice
    from tests.integration.conftest import run_jobs

    receiver = Receiver()
    try:
        url = {"loopback": f"{receiver.server.url}/hook",
               "metadata": "http://169.254.169.254/latest/meta-data/"}[where]
        app.config["OUTBOUND_ALLOW_LOOPBACK"] = False  # production mode
        org = str(connected.org_id)
        with app.app_context():
            sync_org(connected.org_id, plan_after=False)
            contact_id = db.session.scalars(select(Contact.id).join(
                Invoice, Invoice.contact_id == Contact.id).where(
                Contact.org_id == connected.org_id, Invoice.status == "open")
                .order_by(Contact.id)).first()
        runner = app.test_cli_runner()
        # Refused when it is typed in (tests/security/test_saved_webhook_urls.py) ...
        refused = runner.invoke(args=["customers", "settings", org, "--stop-service-on-hold",
                                      "--webhook-url", url])
        assert refused.exit_code == 1 and "--webhook-url: The webhook address" in refused.output
        assert runner.invoke(args=["customers", "settings", org,
                                   "--stop-service-on-hold"]).exit_code == 0
        # ... so it stands for an address saved before that check, or a name whose DNS
        # answer has changed since: the send-time check is the last guard.
        from store.models import CreditSettings

        with app.app_context():
            row = db.session.scalars(select(CreditSettings).where(
                CreditSettings.org_id == connected.org_id)).one()
            row.stop_service_webhook_url = url
            db.session.commit()
        held = runner.invoke(args=["customers", "hold", org, str(contact_id), "--reason",
                                   "cheque bounced"])
        assert held.exit_code == 0, held.output
        run_jobs(app)
        with app.app_context():
            [action] = db.session.scalars(select(Action).where(
                Action.kind == "stop_service")).all()
            assert action.status == "dead"
            expected = {"loopback": "is a loopback address (127.0.0.1)",
                        "metadata": "is a link-local address (169.254.169.254)"}[where]
            assert expected in action.error
            # The customer is still flagged in Dunwell: only the call out was refused.
            assert db.session.get(Contact, contact_id).stop_service is True
        assert receiver.received == []
    finally:
        receiver.server.stop()
