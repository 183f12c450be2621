"""The observability package on its own: scrubbing, log lines, context ids, bounded labels,
metrics added up across processes, and error reports that leave without secrets (sent to a
receiver on 127.0.0.1 that this test starts)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from observability import context
from observability.logs import JsonFormatter, TextFormatter, configure_logging
from observability.metrics import label, status_label
from observability.scrub import REDACTED, scrub_text, scrub_value

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(("text", "expected"), [
    ("mail to ada@example.com failed", "mail to [email] failed"),
    (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {REDACTED}"),
    (f"token answer {TOKEN} kept", f"token answer {REDACTED} kept"),
    ("GET /callback?code=abc123&state=xyz", f"GET /callback?code={REDACTED}&state=xyz"),
    ("grant_type=refresh_token&refresh_token=r-123-456",
     f"grant_type=refresh_token&refresh_token={REDACTED}"),
    ('{"access_token": "a-1", "expires_in": 1800}',
     f'{{"access_token": "{REDACTED}", "expires_in": 1800}}'),
    # Not secrets: left as they are.
    *((kept, kept) for kept in ("Xero invoices: answered 429 (error code: 401)",
                                "org 1 invoice 2 action 1:2:reminder:0: done")),
])
def test_free_text_loses_secrets_and_addresses_by_their_shape(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_fields_lose_their_values_by_name_and_keep_ids() -> None:
    given = {"password": "hunter2hunter2", "refresh_token": "r-1", "email": "ada@example.com",
             "body": "Dear Ada", "org_id": 7, "tenant_id": "t-1", "session_id": "s-1",
             "nested": {"client_secret": "s", "count": 3, "note": "to bob@example.com"},
             "headers": [{"Authorization": "Bearer abcdefghijkl"}]}
    assert scrub_value("extra", given) == {
        "password": REDACTED, "refresh_token": REDACTED, "email": REDACTED, "body": REDACTED,
        "org_id": 7, "tenant_id": "t-1", "session_id": "s-1",
        "nested": {"client_secret": REDACTED, "count": 3, "note": "to [email]"},
        "headers": [{"Authorization": REDACTED}]}


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "jobs.tasks", "levelno": logging.WARNING,
                                  "levelname": "WARNING", "msg": message, "args": args})
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_a_json_line_carries_the_bound_ids_and_scrubbed_extras() -> None:
    try:
        raise ValueError("refused for ada@example.com")
    except ValueError:
        failure = record("org %s: sync failed for %s", 3, "ada@example.com",
                         tenant_id="t-9", access_token="a-secret-token")
        failure.exc_info = sys.exc_info()
    with context.bound(request_id="req-00000001", org_id=3):
        with context.bound(job_id="sync-org-3"):
            line = JsonFormatter().format(failure)
        outside = JsonFormatter().format(record("plain"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "org 3: sync failed for [email]"
    assert (parsed["level"], parsed["logger"]) == ("WARNING", "jobs.tasks")
    assert (parsed["request_id"], parsed["org_id"], parsed["job_id"]) == (
        "req-00000001", 3, "sync-org-3")
    assert (parsed["tenant_id"], parsed["access_token"]) == ("t-9", REDACTED)
    assert "ValueError: refused for [email]" in parsed["exception"]
    assert "job_id" not in json.loads(outside)  # the inner block's id ended with it


def test_a_text_line_is_readable_and_scrubbed_too() -> None:
    formatter = TextFormatter()
    with context.bound(org_id=4, action_id=12):
        line = formatter.format(record("emailed %s", "bob@example.com"))
    assert line.endswith("WARNING jobs.tasks: emailed [email] [org_id=4 action_id=12]")


def test_configure_logging_replaces_its_own_handler_only() -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    try:
        configure_logging("json", "INFO", stream=first)
        configure_logging("text", "INFO", stream=second)
        logging.getLogger("dunwell.test").info("hello %s", "there")
        assert first.getvalue() == ""
        assert "INFO dunwell.test: hello there" in second.getvalue()
        assert other in root.handlers
        with pytest.raises(ValueError, match="LOG_FORMAT"):
            configure_logging("xml")
    finally:
        root.removeHandler(other)
        configure_logging("json", "INFO")


def test_ids_are_known_names_and_a_request_id_is_checked() -> None:
    with pytest.raises(ValueError, match="customer_email"):
        with context.bound(customer_email="x"):
            pass
    assert context.request_id_from("lb-8f14e45fceea167a") == "lb-8f14e45fceea167a"
    for given in (None, "", "short", "has space in it", "x" * 65, "line\nbreak-0000"):
        made = context.request_id_from(given)
        assert made != given and len(made) == 32


def test_labels_are_bounded() -> None:
    assert label("Reminder") == "reminder"
    assert label("late-fee") == "late_fee"
    assert label("Invoice 7b8a3c5e-0000") == "other"
    assert label("invoice_123") == "other"
    assert label("x" * 41) == "other"
    assert label(None) == "other"
    assert [status_label(s) for s in (200, "429", None, "error", 42)] == [
        "200", "429", "error", "error", "error"]


WRITE = """
from observability.metrics import observe_webhook
observe_webhook("xero", 200)
observe_webhook("xero", 200)
"""
READ = """
from observability.metrics import exposition
print(exposition()[0].decode())
"""


def test_metrics_of_several_processes_are_added_up_in_multiprocess_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WRITE], env=env, cwd=ROOT, check=True)
    scraped = subprocess.run([sys.executable, "-c", READ], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    assert 'dunwell_webhook_deliveries_total{provider="xero",status="200"} 4.0' in scraped


class Receiver(BaseHTTPRequestHandler):
    """Sentry's envelope endpoint, on 127.0.0.1: keeps what it is sent."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Receiver.bodies.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://public@127.0.0.1:{server.server_port}/1"
    server.shutdown()


def test_an_error_report_leaves_without_secrets_and_with_the_ids(receiver: str) -> None:
    sentry_sdk = pytest.importorskip("sentry_sdk")
    from flask import Flask

    from observability.errors import init_error_reports

    app = Flask("reports")

    @app.post("/fail")
    def fail() -> str:
        password = "-".join(("correct", "horse", "battery"))  # a local: frame variables stay
        assert password
        raise RuntimeError(f"refresh for ada@example.com refused: Bearer {TOKEN}")

    assert init_error_reports("", "test") is False
    try:
        assert init_error_reports(receiver, "test") is True
        client = app.test_client()
        with context.bound(request_id="req-00000042", org_id=5):
            failed = client.post("/fail?code=oauth-code-1", data={"password": "hunter2hunter2"},
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Cookie": "session=s3cr3t-session"})
            assert failed.status_code == 500
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.init()  # no DSN: nothing more is sent
    sent = b"".join(Receiver.bodies).decode()
    assert "RuntimeError" in sent, "the report reached the receiver"
    for secret in ("ada@example.com", TOKEN, "correct-horse-battery", "hunter2hunter2",
                   "oauth-code-1", "s3cr3t-session"):
        assert secret not in sent, secret
    event = next(json.loads(line) for line in sent.splitlines()
                 if line.startswith("{") and '"exception"' in line)
    assert event["tags"]["request_id"] == "req-00000042" and event["tags"]["org_id"] == "5"
