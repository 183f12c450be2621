"""The browser-facing defences: security headers, a per-request CSP nonce, no caching of signed-in
pages, and a limit on failed sign-ins.

Why each exists: the headers keep another site from framing our pages (clickjacking), from
running script in them (only our own files and nonce-carrying code run), and keep a shared
computer's cache from holding someone's books; the sign-in limit makes guessing passwords
slow (ten failures a minute per address and per email, then 429 until the minute is over).
CSRF itself is Flask-WTF's CSRFProtect (app/extensions.py), exempting only the signed provider
webhooks and the token-authenticated JSON API.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, render_template, request
from flask_login import current_user
from redis.exceptions import RedisError
from werkzeug.wrappers import Response

from app.access import init_access
from collect.providers import redis_client

log = logging.getLogger(__name__)

SIGN_IN_ENDPOINT = "auth.sign_in"
FAILED_SIGN_INS_ALLOWED = 10  # per minute, per address and per email; the 11th gets 429
FAILED_SIGN_IN_WINDOW_SECONDS = 60
HSTS = "max-age=31536000; includeSubDomains"
# Where the connect buttons' form posts are redirected to (Chrome applies form-action to them).
INTUIT_AUTHORIZE_ORIGIN = "https://appcenter.intuit.com"
# Where the portal's Pay by card post is redirected to: Stripe's hosted Checkout page (or, with
# STRIPE_API_BASE set, the emulator that serves both the API and the page).
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def init_security(app: Flask) -> None:
    """Register the headers, the nonce and the sign-in limit on the app."""
    app.config.setdefault("SECURITY_HSTS", str(app.config.get("BASE_URL", "")).startswith(
        "https://"))
    app.config.setdefault("SIGN_IN_RATE_LIMIT", True)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    for name in (*LOGGERS_WITH_PATHS, app.logger.name):
        logging.getLogger(name).addFilter(REDACT_SECRETS)  # the same filter once per logger
    app.before_request(_refuse_ids_beyond_64_bits)
    init_access(app)  # the role matrix, checked before every view
    app.before_request(_refuse_after_too_many_failed_sign_ins)
    app.after_request(_count_failed_sign_in)
    app.after_request(_security_headers)


_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
BIGGEST_ID = 2**63 - 1  # the widest id column (BIGINT); larger ones name nothing


def _refuse_ids_beyond_64_bits() -> None:
    """An id in the URL that no column can hold is 404, not an OverflowError in the driver."""
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not -BIGGEST_ID <= value <= BIGGEST_ID:
            abort(404)


# Paths whose last part is a secret (a customer's portal link: all after /portal/), and
# callbacks whose query holds an OAuth code.
_SECRET_IN_PATH = re.compile(r"(/(?:invitations|password-reset|portal)/)[^\s?\"']+")
_SECRET_IN_QUERY = re.compile(
    r"(/(?:connect/xero|connect/quickbooks|signup/xero|signin/intuit)/callback\?)[^\s\"']+")
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """An invitation, reset or portal link's secret, and an OAuth callback's query, as
    [redacted]."""
    return _SECRET_IN_QUERY.sub(r"\1" + REDACTED, _SECRET_IN_PATH.sub(r"\1" + REDACTED, text))


class RedactSecrets(logging.Filter):
    """Rewrites a record whose text names a secret URL (the access logs print every path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


REDACT_SECRETS = RedactSecrets()
# The development server's and gunicorn's access logs, and Flask's "Exception on <path>".
LOGGERS_WITH_PATHS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def same_origin_path(target: str, default: str) -> str:
    """`target` if a browser would read it as a path on this site, else `default`.

    Browsers (the WHATWG URL parser) strip control characters and spaces at both ends, drop
    tabs and newlines anywhere and read a backslash as a slash, so `/%09/evil.example/` is
    `//evil.example/` to them: the check runs on what they will read, and that is what is
    returned. Any other control character: `default`."""
    cleaned = "".join(c for c in target.strip(_C0_AND_SPACE) if c not in "\t\n\r")
    cleaned = cleaned.replace("\\", "/")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in cleaned):
        return default
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return default
    parts = urlsplit(cleaned)
    return cleaned if not parts.scheme and not parts.netloc else default


def csp_nonce() -> str:
    """This response's nonce: `<script nonce="{{ csp_nonce() }}">` is the only inline code
    the Content-Security-Policy lets run."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(nonce: str) -> str:
    config = current_app.config
    form_targets = {"'self'", INTUIT_AUTHORIZE_ORIGIN, STRIPE_CHECKOUT_ORIGIN}
    for key in ("XERO_AUTHORIZE_URL", "QUICKBOOKS_DISCOVERY_URL", "STRIPE_API_BASE"):
        origin = _origin(str(config.get(key) or ""))
        if origin:
            form_targets.add(origin)
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action " + " ".join(sorted(form_targets)),
    ))


def _security_headers(response: Response) -> Response:
    headers = response.headers
    # A response that sets its own policy keeps it: a customer's file is served under
    # "default-src 'none'; sandbox", stricter than the pages' (app/portal/collector.py).
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if current_app.config["SECURITY_HSTS"] or request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    if current_user.is_authenticated or response.mimetype in ("text/html", "application/json"):
        # Signed-in answers (pages, JSON, PDFs) hold someone's books, and no page or JSON
        # answer is worth caching: never kept in a cache.
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return response


def count_in_window(keys: list[str], seconds: int) -> list[int]:
    """Add one to each counter and return the counts; a counter starts its window of `seconds`
    at its first count. SET NX EX then INCR (which keeps the expiry) in one MULTI/EXEC, as
    Redis 6.2 has no EXPIRE ... NX. Raises RedisError."""

    pipe = redis_client().pipeline()
    for key in keys:
        pipe.set(key, 0, ex=seconds, nx=True)
        pipe.incr(key)
    return [int(count) for count in pipe.execute()[1::2]]


# -- failed sign-ins ------------------------------------------------------------------------


def _sign_in_keys() -> list[str]:
    """One counter per address and one per email (hashed: Redis holds no one's address)."""
    email = (request.form.get("email") or "").strip().lower()
    keys = [f"signin-failures:ip:{request.remote_addr or 'unknown'}"]
    if email:
        keys.append("signin-failures:email:"
                    + hashlib.sha256(email.encode()).hexdigest()[:32])
    return keys


def _is_sign_in_post() -> bool:
    return (request.method == "POST" and request.endpoint == SIGN_IN_ENDPOINT
            and bool(current_app.config["SIGN_IN_RATE_LIMIT"]))


def _refuse_after_too_many_failed_sign_ins() -> Any:
    if not _is_sign_in_post():
        return None

    try:
        counts = redis_client().mget(_sign_in_keys())
    except RedisError:
        log.warning("sign-in limit not checked: Redis unavailable")
        return None
    if any(int(count or 0) >= FAILED_SIGN_INS_ALLOWED for count in counts):
        g.sign_in_refused = True
        log.warning("sign-in refused: too many failed attempts from one address or email")
        body = render_template("error.html", code=429, message=(
            "Too many failed sign-ins. Please wait a minute and try again."))
        return Response(body, status=429, mimetype="text/html",
                        headers={"Retry-After": str(FAILED_SIGN_IN_WINDOW_SECONDS)})
    return None


def _count_failed_sign_in(response: Response) -> Response:
    """A sign-in post that does not redirect onward has failed (wrong password, bad form)."""
    if not _is_sign_in_post() or g.get("sign_in_refused"):
        return response

    keys = _sign_in_keys()
    try:
        if response.status_code in (301, 302, 303):
            if len(keys) > 1:
                redis_client().delete(keys[1])  # the right password clears the email's count
            return response
        count_in_window(keys, FAILED_SIGN_IN_WINDOW_SECONDS)
    except RedisError:
        log.warning("failed sign-in not counted: Redis unavailable")
    return response
