"""The webhook routes answered in front of Flask (app.webhooks.views.WebhookDispatcher): the same
answers and headers as the Flask view, the body-size limit however the body arrives, every other
request left to Flask, errors handled as Flask handles them, and a pooled PostgreSQL connection
the server closed sent once more."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest
import requests
from flask import request_started
from sqlalchemy import func, select, text
from werkzeug.test import Client
from werkzeug.wrappers import Response as WsgiResponse

from tests.conftest import backend

pytestmark = pytest.mark.db

XERO_KEY = "xero-webhook-key-for-tests"
INTUIT_VERIFIER = "intuit-verifier-for-tests"


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def xero_body(tenant_id: str, resource_id: str = "7b8a3c5e-0000-4000-8000-000000000001"
              ) -> bytes:
    return json.dumps({"events": [{
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource_id}",
        "resourceId": resource_id, "eventDateUtc": "2026-11-24T10:00:00.123",
        "eventType": "UPDATE", "eventCategory": "INVOICE", "tenantId": tenant_id,
        "tenantType": "ORGANISATION"}], "firstEventSequence": 1, "lastEventSequence": 1,
        "entropy": "QWERTYUIOPASDFGHJKLZ"}).encode()


INTENT_TO_RECEIVE = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                                "entropy": "ABCDEFGHIJKLMNOPQRST"}).encode()


@pytest.fixture
def hooked(app):  # type: ignore[no-untyped-def]
    app.config.update(XERO_WEBHOOK_KEY=XERO_KEY, QUICKBOOKS_WEBHOOK_VERIFIER=INTUIT_VERIFIER)
    return app


def stored_events(app) -> int:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import WebhookEvent

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(WebhookEvent)) or 0


def dispatcher(app):  # type: ignore[no-untyped-def]
    """The WebhookDispatcher in the app's WSGI stack (request ids and the probes sit in front
    of it)."""
    from app.webhooks.views import WebhookDispatcher

    layer = app.wsgi_app
    while not isinstance(layer, WebhookDispatcher):
        layer = layer.wsgi_app
    return layer


def through_flask(app) -> Client:  # type: ignore[no-untyped-def]
    """A client of Flask's own WSGI app, without the dispatcher in front."""
    return Client(dispatcher(app).wsgi_app, WsgiResponse)


def without_nonce(headers: dict[str, str]) -> dict[str, str]:
    csp = headers["Content-Security-Policy"]
    start = csp.index("'nonce-") + len("'nonce-")
    return {**headers, "Content-Security-Policy": csp[:start] + csp[csp.index("'", start):]}


def test_the_dispatcher_answers_as_the_flask_view_does_without_flask_request_machinery(
        hooked, caplog) -> None:  # type: ignore[no-untyped-def]
    from app.webhooks.views import MAX_BODY
    flask_requests: list[str] = []

    def count(sender, **extra) -> None:  # type: ignore[no-untyped-def]
        flask_requests.append("started")

    wrong = sign("not-our-key", INTENT_TO_RECEIVE)
    cases = {
        "intent to receive, signed": (INTENT_TO_RECEIVE, sign(XERO_KEY, INTENT_TO_RECEIVE)),
        "wrong signature": (INTENT_TO_RECEIVE, wrong),
        "not a payload": (b'{"events": 1}', sign(XERO_KEY, b'{"events": 1}')),
        "not JSON": (b"\xff\xfe", sign(XERO_KEY, b"\xff\xfe")),
        "too big": (b" " * (MAX_BODY + 1), wrong),
    }
    expected = {"intent to receive, signed": 200, "wrong signature": 401, "not a payload": 400,
                "not JSON": 400, "too big": 413}
    fast, slow = Client(dispatcher(hooked), WsgiResponse), through_flask(hooked)
    request_started.connect(count, hooked)
    try:
        for name, (body, signature) in cases.items():
            headers = {"x-xero-signature": signature, "Content-Type": "application/json"}
            flask_requests.clear()
            ours = fast.post("/webhooks/xero", data=body, headers=headers)
            assert flask_requests == [], name  # no request context, routing or handlers
            theirs = slow.post("/webhooks/xero", data=body, headers=headers)
            assert flask_requests == ["started"], name
            assert (ours.status_code, ours.data) == (theirs.status_code, theirs.data), name
            assert ours.status_code == expected[name], name
            assert without_nonce(dict(ours.headers)) == without_nonce(dict(theirs.headers)), name
            assert "Set-Cookie" not in ours.headers
            if ours.status_code in (200, 401, 413):
                assert ours.data == b""
            if ours.status_code == 400:
                assert ours.json["error"]
    finally:
        request_started.disconnect(count, hooked)
    # Each answer has its own CSP nonce, as Flask's do.
    nonces = {fast.post("/webhooks/xero", data=b"{}").headers["Content-Security-Policy"]
              for _ in range(3)}
    assert len(nonces) == 3
    # The same log lines, from the same logger.
    refusals = [r for r in caplog.records if r.name == "app.webhooks.views"
                and r.levelno == logging.WARNING]
    assert {r.getMessage() for r in refusals} >= {
        "xero webhook refused: signature missing or wrong",
        "xero webhook refused: body is not JSON"}
    assert stored_events(hooked) == 0


def test_the_size_limit_holds_for_chunked_bodies_too(hooked, web) -> None:  # type: ignore[no-untyped-def]
    """Without a Content-Length (chunked), the body is read up to the limit and no further."""
    from app.webhooks.views import MAX_BODY

    def chunks(body: bytes, size: int = 65536):  # type: ignore[no-untyped-def]
        for start in range(0, len(body), size):
            yield body[start:start + size]

    big = b" " * (MAX_BODY + 10)
    answer = requests.post(f"{web.url}/webhooks/xero", data=chunks(big),
                           headers={"x-xero-signature": sign(XERO_KEY, big)})
    assert (answer.status_code, answer.content) == (413, b"")
    small = INTENT_TO_RECEIVE
    answer = requests.post(f"{web.url}/webhooks/xero", data=chunks(small, 7),
                           headers={"x-xero-signature": sign(XERO_KEY, small)})
    assert (answer.status_code, answer.content) == (200, b"")
    answer = requests.post(f"{web.url}/webhooks/quickbooks", data=chunks(small, 7),
                           headers={"intuit-signature": sign(XERO_KEY, small)})
    assert (answer.status_code, answer.content) == (401, b"")  # the other provider's key


def test_every_other_request_is_left_to_flask(hooked) -> None:  # type: ignore[no-untyped-def]
    fast, slow = hooked.test_client(), through_flask(hooked)
    for method, path in (("GET", "/webhooks/xero"), ("PUT", "/webhooks/quickbooks"),
                         ("POST", "/webhooks/xero/"), ("POST", "/webhooks/sage"),
                         ("GET", "/signin")):
        ours = fast.open(path, method=method, data=b"{}")
        theirs = slow.open(path, method=method, data=b"{}")
        assert ours.status_code == theirs.status_code, (method, path)
        assert ours.mimetype == theirs.mimetype, (method, path)
    assert fast.get("/webhooks/xero").status_code == 405


def test_a_failure_while_storing_is_handled_as_flask_handles_errors(
        hooked, connected, caplog) -> None:  # type: ignore[no-untyped-def]
    """Redis unreachable after the event is stored: Flask's 500 page (or the exception, when the
    app propagates them), never a 200, so the provider sends it again."""
    hooked.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens there
    hooked.extensions.pop("dunwell_redis", None)
    body = xero_body(connected.tenant_id)
    headers = {"x-xero-signature": sign(XERO_KEY, body)}
    from redis.exceptions import ConnectionError as RedisConnectionError

    with pytest.raises(RedisConnectionError):  # TESTING: exceptions propagate, as in Flask
        hooked.test_client().post("/webhooks/xero", data=body, headers=headers)
    hooked.config["PROPAGATE_EXCEPTIONS"] = False
    caplog.clear()
    body = xero_body(connected.tenant_id, "7b8a3c5e-0000-4000-8000-000000000002")
    headers = {"x-xero-signature": sign(XERO_KEY, body)}
    answer = hooked.test_client().post("/webhooks/xero", data=body, headers=headers)
    assert answer.status_code == 500
    assert answer.mimetype == "text/html" and "500" in answer.get_data(as_text=True)
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert any(r.getMessage() == "Exception on /webhooks/xero [POST]" and r.exc_info
               for r in caplog.records)
    assert stored_events(hooked) == 2  # stored before Redis failed: a retry adds nothing


@pytest.mark.skipif(backend() != "postgresql", reason="the endpoint's own PostgreSQL pool")
def test_a_connection_the_database_closed_is_dropped_and_the_event_sent_again(
        hooked, connected, caplog) -> None:  # type: ignore[no-untyped-def]
    from app.webhooks.services import _webhook_engine
    from store.db import db

    client = hooked.test_client()
    first = xero_body(connected.tenant_id)
    assert client.post("/webhooks/xero", data=first,
                       headers={"x-xero-signature": sign(XERO_KEY, first)}).status_code == 200
    with hooked.app_context():
        pool = _webhook_engine().pool
        assert pool.checkedin() >= 1  # the endpoint's connection waits in its pool
        with db.engine.connect() as conn:  # the server ends every other session
            ended = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert ended >= 1
    caplog.clear()
    caplog.set_level(logging.INFO, logger="app.webhooks.services")
    second = xero_body(connected.tenant_id, "7b8a3c5e-0000-4000-8000-000000000002")
    answer = client.post("/webhooks/xero", data=second,
                         headers={"x-xero-signature": sign(XERO_KEY, second)})
    assert answer.status_code == 200
    assert stored_events(hooked) == 2
    assert any("the database closed the connection; sending again" in r.getMessage()
               for r in caplog.records)


def _gunicorn_settings():  # type: ignore[no-untyped-def]
    """gunicorn.conf.py as gunicorn loads it, leaving this process's environment as it was:
    the file names a metrics directory for its workers, and /metrics in this process would
    read that directory from then on instead of its own counters (a later test of the same
    worker saw none of its requests counted)."""
    import importlib.util
    import os
    import shutil
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    try:
        spec.loader.exec_module(module)
    finally:
        made = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if before is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            if made:
                shutil.rmtree(made, ignore_errors=True)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = before
    return module


def test_each_web_worker_opens_the_endpoint_connections_before_its_first_request(
        hooked, redis_url) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from redis import Redis

    from app.webhooks.services import _webhook_engine
    from collect.providers import redis_client
    from store.db import db

    def sessions() -> int:
        with hooked.app_context(), db.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            ).scalar_one())

    redis = Redis.from_url(redis_url)
    sessions_before = sessions() if backend() == "postgresql" else 0
    worker = SimpleNamespace(wsgi=hooked, cfg=SimpleNamespace(threads=3))
    _gunicorn_settings().post_worker_init(worker)
    with hooked.app_context():
        assert _webhook_engine().pool.checkedin() == 3  # open, idle, ready for requests
        idle = redis_client().connection_pool._available_connections
        ports = {connection._sock.getsockname()[1] for connection in idle
                 if connection._sock is not None}
    # Three connections in the pool, each one the Redis server has as a client. (By their
    # ports, not the server's client count: this test worker's Redis serves the tests before
    # it too, whose clients may come and go while this one runs.)
    assert len(ports) == 3
    assert ports <= {int(client["addr"].rsplit(":", 1)[1]) for client in redis.client_list()}
    if backend() == "postgresql":
        assert sessions() - sessions_before == 3
    redis.close()


def test_a_worker_that_cannot_open_them_logs_it_and_serves(
        hooked, connected, caplog) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from redis import Redis

    caplog.set_level(logging.INFO, logger="app.webhooks.services")
    working = hooked.extensions["dunwell_redis"] if "dunwell_redis" in hooked.extensions else None
    hooked.extensions["dunwell_redis"] = Redis.from_url("redis://127.0.0.1:1/0")  # nothing there
    _gunicorn_settings().post_worker_init(SimpleNamespace(wsgi=hooked,
                                                          cfg=SimpleNamespace(threads=2)))
    assert any(r.levelname == "WARNING" and "could not open its database and Redis "
               "connections at start (ConnectionError" in r.getMessage()
               and "requests will open them" in r.getMessage() for r in caplog.records)
    if working is None:
        del hooked.extensions["dunwell_redis"]
    else:
        hooked.extensions["dunwell_redis"] = working
    body = xero_body(connected.tenant_id)
    answer = hooked.test_client().post("/webhooks/xero", data=body,
                                       headers={"x-xero-signature": sign(XERO_KEY, body)})
    assert answer.status_code == 200
    assert stored_events(hooked) == 1
