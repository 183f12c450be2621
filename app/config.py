"""Settings from the environment, with defaults that are safe on a newcomer's machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("DUNWELL_INSTANCE_DIR", Path.cwd() / "instance"))

XERO_SCOPES = (
    "openid profile email offline_access accounting.transactions accounting.contacts "
    "accounting.settings.read"
)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Config:
    """Production-shaped defaults; every value can be set by an environment variable."""

    SECRET_KEY = _env("SECRET_KEY", "")
    SQLALCHEMY_DATABASE_URI = _env(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'dunwell.sqlite3'}"
    )
    # Pooled connections are checked before use when idle (store.db.ping_when_idle).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
    # MultiFernet keys, comma separated, newest first (rotation: prepend a new key).
    TOKEN_ENCRYPTION_KEYS = _env("TOKEN_ENCRYPTION_KEYS", "")
    BASE_URL = _env("BASE_URL", "http://127.0.0.1:5000")

    XERO_CLIENT_ID = _env("XERO_CLIENT_ID", "")
    XERO_CLIENT_SECRET = _env("XERO_CLIENT_SECRET", "")
    XERO_SCOPES = _env("XERO_SCOPES", XERO_SCOPES)
    XERO_AUTHORIZE_URL = _env(
        "XERO_AUTHORIZE_URL", "https://login.xero.com/identity/connect/authorize"
    )
    XERO_TOKEN_URL = _env("XERO_TOKEN_URL", "https://identity.xero.com/connect/token")
    XERO_REVOKE_URL = _env("XERO_REVOKE_URL", "https://identity.xero.com/connect/revocation")
    XERO_API_URL = _env("XERO_API_URL", "https://api.xero.com/api.xro/2.0")
    XERO_CONNECTIONS_URL = _env("XERO_CONNECTIONS_URL", "https://api.xero.com/connections")
    # Xero's per-tenant limits are 60 a minute and 5,000 a day; we stay a little under.
    XERO_CALLS_PER_MINUTE = int(_env("XERO_CALLS_PER_MINUTE", "55"))
    XERO_CALLS_PER_DAY = int(_env("XERO_CALLS_PER_DAY", "4800"))
    XERO_CALLS_IN_FLIGHT = int(_env("XERO_CALLS_IN_FLIGHT", "5"))
    XERO_APP_CALLS_PER_MINUTE = int(_env("XERO_APP_CALLS_PER_MINUTE", "9500"))

    QUICKBOOKS_CLIENT_ID = _env("QUICKBOOKS_CLIENT_ID", "")
    QUICKBOOKS_CLIENT_SECRET = _env("QUICKBOOKS_CLIENT_SECRET", "")
    # Intuit publishes every OAuth endpoint in this document; intuitlib reads it.
    QUICKBOOKS_DISCOVERY_URL = _env(
        "QUICKBOOKS_DISCOVERY_URL",
        "https://developer.api.intuit.com/.well-known/openid_configuration")
    QUICKBOOKS_API_URL = _env("QUICKBOOKS_API_URL", "https://quickbooks.api.intuit.com/v3")
    QUICKBOOKS_MINOR_VERSION = int(_env("QUICKBOOKS_MINOR_VERSION", "75"))
    # QuickBooks allows 500 calls a minute and 10 at once per company; we stay a little under.
    QUICKBOOKS_CALLS_PER_MINUTE = int(_env("QUICKBOOKS_CALLS_PER_MINUTE", "450"))
    QUICKBOOKS_CALLS_IN_FLIGHT = int(_env("QUICKBOOKS_CALLS_IN_FLIGHT", "10"))
    QUICKBOOKS_CALLS_PER_DAY = int(_env("QUICKBOOKS_CALLS_PER_DAY", "500000"))  # no daily cap

    # Dunwell's own email (the dunwell_email channel, final demands). Empty host: not sent.
    SMTP_HOST = _env("SMTP_HOST", "")
    SMTP_PORT = int(_env("SMTP_PORT", "587"))
    SMTP_STARTTLS = _env("SMTP_STARTTLS", "true") == "true"
    SMTP_USERNAME = _env("SMTP_USERNAME", "")
    SMTP_PASSWORD = _env("SMTP_PASSWORD", "")
    MAIL_FROM = _env("MAIL_FROM", "reminders@dunwell.invalid")
    # Texts (the sms channel): the server-wide Twilio account, used by organisations that
    # turned texts on without an account of their own; TWILIO_API_URL points elsewhere than
    # Twilio (the demo's and tests' emulator). Empty: only organisations' own accounts.
    TWILIO_ACCOUNT_SID = _env("TWILIO_ACCOUNT_SID", "")
    TWILIO_AUTH_TOKEN = _env("TWILIO_AUTH_TOKEN", "")
    TWILIO_FROM = _env("TWILIO_FROM", "")
    TWILIO_API_URL = _env("TWILIO_API_URL", "")
    # Card payments in the portal go through each organisation's own Stripe account; this
    # points the stripe package elsewhere than api.stripe.com (the demo's and tests' emulator).
    STRIPE_API_BASE = _env("STRIPE_API_BASE", "")
    # The demo's mail catcher keeps every message here; its mailbox page is on only when set.
    DEMO_MAILBOX = _env("DUNWELL_DEMO_MAILBOX", "")
    # Signs stop-service webhooks (HMAC-SHA256); by default derived from SECRET_KEY per org.
    WEBHOOK_SIGNING_KEY = _env("WEBHOOK_SIGNING_KEY", "")
    # Verify the providers' webhooks (HMAC-SHA256 of the raw body); empty: every one refused.
    XERO_WEBHOOK_KEY = _env("XERO_WEBHOOK_KEY", "")
    QUICKBOOKS_WEBHOOK_VERIFIER = _env("QUICKBOOKS_WEBHOOK_VERIFIER", "")
    # Owner-configured webhooks may reach 127.0.0.1/::1 (demo, tests); never private ranges.
    OUTBOUND_ALLOW_LOOPBACK = _env("OUTBOUND_ALLOW_LOOPBACK", "false") == "true"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env("SESSION_COOKIE_SECURE", "true") == "true"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # A form's CSRF token works for this many seconds (a page left open longer asks again).
    WTF_CSRF_TIME_LIMIT = int(_env("CSRF_TOKEN_SECONDS", str(4 * 3600)))
    # A signed-in session (its row in user_sessions) lasts at most this long.
    PERMANENT_SESSION_LIFETIME = int(_env("SESSION_SECONDS", str(7 * 24 * 3600)))
    # JSON merged into the default policy of a newly connected organisation (the demo sends
    # at any hour on any day so that it can be watched working).
    DEFAULT_POLICY = json.loads(_env("DUNWELL_DEFAULT_POLICY", "{}"))
    # Tests and the demo replace the clock; production reads the real one.
    CLOCK = None
    # RQ jobs run in the worker; tests may set this to run them inline.
    RQ_QUEUE = _env("RQ_QUEUE", "dunwell")
