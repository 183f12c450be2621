"""Mail that works on day one: the demo's mail catcher and mailbox page, and an organisation's
own SMTP server, saved only after a test through it reached the server; a refusal says why and
saves nothing; the password never shows in a page, a log line or an export."""

from __future__ import annotations

import io
import logging
import socket
import ssl
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from tests.integration import flows
from tests.integration.conftest import connect

pytestmark = pytest.mark.db

USER, PASSWORD = "accounts@harbour.example", "s3cret-Pa55word-never-shown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accept_only(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class Refusing:
    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        return "550 5.7.1 Relaying denied"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The demo's mail catcher, as `make demo` starts it: no authentication."""
    from app.demo import start_mail_catcher

    port = free_port()
    controller = start_mail_catcher(tmp_path / "relay", port)
    yield port, tmp_path / "relay"
    controller.stop()


def self_signed(folder: Path) -> ssl.SSLContext:
    """A certificate for 127.0.0.1, made here (smtplib's STARTTLS does not check it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A business's own mail server: STARTTLS, then a user name and password."""
    from app.demo import MailCatcher

    port = free_port()
    controller = Controller(MailCatcher(tmp_path / "own"), hostname="127.0.0.1", port=port,
                            authenticator=accept_only, auth_required=True,
                            tls_context=self_signed(tmp_path / "tls"))
    controller.start()
    yield port, tmp_path / "own"
    controller.stop()


@pytest.fixture
def refusing_server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port,
                            tls_context=self_signed(tmp_path / "tls-refusing"))
    controller.start()
    yield port
    controller.stop()


def test_send_a_test_in_the_demo_and_see_it_in_the_mailbox(app, web, catcher) -> None:  # type: ignore[no-untyped-def]
    port, folder = catcher
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False,
                      DEMO_MAILBOX=str(folder), MAIL_FROM="reminders@dunwell.demo")
    connected = connect(app, web, "xero", live=False)
    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}/setup"
    page = http.get(base)
    assert "Open the demo mailbox" in page.text
    sent = http.post(f"{base}/test", data={"csrf_token": flows.csrf_token(page.text)})
    assert sent.status_code == 200 and "A test was sent to owner@example.com only" in sent.text
    mailbox = http.get(f"{web.url}/demo/mailbox")
    assert mailbox.status_code == 200
    assert "[TEST]" in mailbox.text and "owner@example.com" in mailbox.text
    assert "No customer received it." in mailbox.text
    assert len(list(folder.glob("*.eml"))) == 1


def test_the_mailbox_page_is_the_demos_only(app, web) -> None:  # type: ignore[no-untyped-def]
    connected = connect(app, web, "xero", live=False)
    assert connected.http.get(f"{web.url}/demo/mailbox").status_code == 404


def test_an_own_smtp_server_is_saved_only_once_a_test_went_through_it(  # type: ignore[no-untyped-def]
        app, web, own_server, refusing_server, caplog) -> None:
    from app.connections.services import export_archive
    from store.db import db
    from store.models import AuditEvent, MailSender, Organisation

    caplog.set_level(logging.DEBUG)
    port, folder = own_server
    connected = connect(app, web, "xero", live=False)
    http, base = connected.http, f"{web.url}/orgs/{connected.org_id}/setup"
    csrf = flows.csrf_token(http.get(base).text)
    form = {"csrf_token": csrf, "transport": "smtp", "host": "127.0.0.1", "port": str(port),
            "security": "starttls", "username": USER, "password": "wrong-password",
            "from_email": "accounts@harbour.example", "from_name": "Harbour Coffee",
            "reply_to": ""}

    def refused(changes: dict[str, str], says: str) -> None:
        answer = http.post(f"{base}/sender", data={**form, **changes})
        assert answer.status_code == 422 and says in answer.text, says
        assert PASSWORD not in answer.text and "wrong-password" not in answer.text
        with app.app_context():
            assert db.session.scalar(select(MailSender)) is None

    refused({}, "The mail server refused the user name or password.")
    refused({"password": PASSWORD, "port": str(free_port())}, "could not be reached")
    refused({"password": PASSWORD, "host": "no-such-host.invalid"}, "could not be reached")
    refused({"password": PASSWORD, "security": "tls"}, "The secure connection to 127.0.0.1:")
    refused({"password": PASSWORD, "port": str(refusing_server), "username": ""},
            "refused to send the test message")
    refused({"password": PASSWORD, "port": "99999"}, "Give a port from 1 to 65535")
    refused({"password": PASSWORD, "host": "smtp example"}, "Give the mail server")
    refused({"password": PASSWORD, "from_email": "not an address"}, "Give an email address")
    refused({"password": PASSWORD, "security": "none"}, "Choose one of the offered options.")
    assert not folder.exists() or not list(folder.glob("*.eml"))

    saved = http.post(f"{base}/sender", data={**form, "password": PASSWORD})
    assert saved.status_code == 200 and "the sender is saved" in saved.text
    [test] = list(folder.glob("*.eml"))
    mail = test.read_text()
    assert "From: Harbour Coffee <accounts@harbour.example>" in mail
    assert "Reply-To: owner@example.com" in mail and "To: owner@example.com" in mail
    page = http.get(base).text
    assert "Verified on" in page and f"127.0.0.1:{port}" in page
    assert "A password is saved; leave this empty to keep it." in page

    # Send a test to me: through the organisation's own server now, the password kept.
    sent = http.post(f"{base}/test", data={"csrf_token": csrf})
    assert sent.status_code == 200 and len(list(folder.glob("*.eml"))) == 2

    with app.app_context():
        sender = db.session.scalar(select(MailSender))
        assert sender.verified_at is not None and sender.password_enc
        assert PASSWORD not in sender.password_enc
        logged = " ".join(e.message for e in db.session.scalars(select(AuditEvent)))
        org = db.session.get(Organisation, connected.org_id)
        archive = io.BytesIO()
        export_archive(org, archive)
    assert "sender" in logged and PASSWORD not in logged
    with zipfile.ZipFile(archive) as exported:
        assert all(PASSWORD.encode() not in exported.read(n) for n in exported.namelist())
    assert PASSWORD not in caplog.text and "wrong-password" not in caplog.text
    for page_path in ("", "/../settings", "/../../1"):
        assert PASSWORD not in http.get(base + page_path).text
