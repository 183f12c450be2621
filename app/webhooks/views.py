"""POST /webhooks/xero and /webhooks/quickbooks: `receive` is the endpoint, services.py does the
work.

No session, no CSRF token, no cookie: providers sign the raw body instead. Answers carry no
body except a short reason on a 400, as Xero's intent-to-receive check requires.

`WebhookDispatcher` sits in front of Flask (create_app mounts it) and answers these two routes
itself: a provider's POST needs none of Flask's request machinery (URL routing, the session
and the signed-in user, the language, the before- and after-request handlers), and at hundreds
of requests a second that machinery was most of the CPU a request cost. The Flask views below
stay for the URL map and for any WSGI stack without the dispatcher; both call `receive`.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, g, request

from app.health.requests import webhook_answered
from app.webhooks.services import FORMATS, SIGNATURE_HEADERS, signature_valid, store_events
from connectors.webhooks import PayloadError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_BODY = 1024 * 1024  # Xero and Intuit batches are far smaller


@dataclass(frozen=True)
class Answer:
    """What the endpoint answers: a status, and on a 400 the reason (sent as JSON)."""

    status: int
    reason: str | None = None

    def body(self) -> bytes:
        return b"" if self.reason is None else json.dumps({"error": self.reason}).encode()


def receive(provider: str, body: bytes, given_signature: str | None) -> Answer:
    """Verify, parse and store one delivery (in an app context); durable before it returns
    200. The body-size limit is the caller's, which knows how the body arrives."""
    if not signature_valid(provider, body, given_signature):
        log.warning("%s webhook refused: signature missing or wrong", provider)
        return Answer(401)
    try:
        events = FORMATS[provider].parse(json.loads(body))
    except (ValueError, RecursionError) as error:  # PayloadError and JSON errors alike
        reason = str(error) if isinstance(error, PayloadError) else "body is not JSON"
        log.warning("%s webhook refused: %s", provider, reason)
        return Answer(400, reason)
    if events:
        store_events(provider, events)
    return Answer(200)


def _flask_response(answer: Answer) -> Response:
    if answer.reason is None:
        return Response(status=answer.status)
    return Response(answer.body(), status=answer.status, mimetype="application/json")


def _receive(provider: str) -> Response:
    if (request.content_length or 0) > MAX_BODY:
        return Response(status=413)
    return _flask_response(receive(provider, request.get_data(cache=False),
                                   request.headers.get(SIGNATURE_HEADERS[provider])))


# POST /webhooks/<provider> for each provider, its endpoint named after it (webhooks.xero).
for _provider in FORMATS:
    blueprint.add_url_rule(f"/{_provider}", endpoint=_provider, methods=["POST"],
                           view_func=lambda provider=_provider: _receive(provider))

ROUTES = {f"/webhooks/{provider}": provider for provider in FORMATS}
# The signature headers as WSGI names them (x-xero-signature -> HTTP_X_XERO_SIGNATURE).
ENVIRON_SIGNATURE_KEYS = {provider: spec.environ_key for provider, spec in FORMATS.items()}
STATUS_LINES = {200: "200 OK", 400: "400 BAD REQUEST", 401: "401 UNAUTHORIZED",
                413: "413 REQUEST ENTITY TOO LARGE"}


class WebhookDispatcher:
    """WSGI middleware: POST to exactly /webhooks/xero or /webhooks/quickbooks is answered here
    from the raw body, inside an app context only; any other request goes to Flask unchanged.

    The answers' headers are those Flask's after-request handlers give the same answer to a
    caller without a session (security headers, `Cache-Control: no-store`, `Vary: Cookie`):
    taken once per scheme and body kind from Flask itself, with a fresh CSP nonce per answer,
    so the two paths cannot drift apart. An error while storing goes to Flask's own handling
    (logged, the 500 page, or raised when the app propagates exceptions)."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._headers: dict[tuple[str, bool], tuple[list[tuple[str, str]], str]] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        provider = ROUTES.get(environ.get("PATH_INFO", ""))
        if provider is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        body = _read_body(environ)
        if body is None:
            return self._answer(environ, start_response, Answer(413))
        with self.app.app_context():
            try:
                answer = receive(provider, body, environ.get(ENVIRON_SIGNATURE_KEYS[provider]))
            except Exception as error:
                with self.app.request_context(environ):
                    failed = self.app.handle_exception(error)  # logs; re-raises when testing
                return failed(environ, start_response)
        return self._answer(environ, start_response, answer)

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse,
                answer: Answer) -> Iterable[bytes]:
        webhook_answered(environ, ROUTES[environ["PATH_INFO"]], answer.status)
        body = answer.body()
        headers, nonce = self._template(str(environ.get("wsgi.url_scheme", "http")),
                                        answer.reason is not None)
        fresh = secrets.token_urlsafe(18)
        start_response(STATUS_LINES[answer.status], [
            *((name, value.replace(nonce, fresh)) if name == "Content-Security-Policy"
              else (name, value) for name, value in headers),
            ("Content-Length", str(len(body)))])
        return [body]

    def _template(self, scheme: str, json_body: bool) -> tuple[list[tuple[str, str]], str]:
        """Flask's headers for such an answer to an anonymous caller, and the nonce in them."""
        key = (scheme, json_body)
        if key not in self._headers:
            with self.app.test_request_context(next(iter(ROUTES)), method="POST",
                                               base_url=f"{scheme}://localhost"):
                response = self.app.process_response(
                    Response(b"{}", mimetype="application/json") if json_body
                    else Response())
                nonce = str(g.get("csp_nonce", "")) or "\0"
            self._headers[key] = ([(name, value) for name, value in response.headers.items()
                                   if name != "Content-Length"], nonce)
        return self._headers[key]


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY. Like werkzeug: without a
    Content-Length the body is read only if the server says the stream ends (chunked)."""
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        length = -1  # absent or not a number: as if absent
    if length > MAX_BODY:
        return None
    if length >= 0:
        chunks, left = [], length
        while left > 0:
            chunk = stream.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    if not environ.get("wsgi.input_terminated"):
        return b""
    chunks, size = [], 0
    while size <= MAX_BODY:
        chunk = stream.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > MAX_BODY else b"".join(chunks)
