"""GET /healthz, /readyz and /metrics, answered in front of Flask (create_app mounts this).

A probe needs none of Flask's request machinery (the session, the signed-in user, the role
matrix, the language) and must not depend on it: /healthz answers while the process can answer
anything, even when the database is gone. Answers reveal nothing beyond themselves: /healthz
and /readyz name what failed and nothing else; /metrics answers only a caller with the bearer
token in METRICS_TOKEN (without one set, /metrics is not served: 404).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Flask

from app.health.checks import readiness
from app.health.collector import ScrapeCollector
from observability.metrics import exposition

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADERS = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
STATUS_LINES = {200: "200 OK", 404: "404 NOT FOUND", 405: "405 METHOD NOT ALLOWED",
                503: "503 SERVICE UNAVAILABLE"}


def _json(status: int, document: dict[str, object]) -> tuple[int, bytes, str]:
    return status, json.dumps(document).encode(), "application/json"


class ProbeDispatcher:
    """WSGI middleware: the three probe paths answered here, everything else passed on."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.routes: dict[str, Callable[[WSGIEnvironment], tuple[int, bytes, str]]] = {
            "/healthz": self.healthz, "/readyz": self.readyz, "/metrics": self.metrics}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        route = self.routes.get(environ.get("PATH_INFO", ""))
        if route is None:
            return self.wsgi_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            status, body, kind = _json(405, {"error": "method not allowed"})
        else:
            status, body, kind = route(environ)
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""
        start_response(STATUS_LINES[status], [*HEADERS, ("Content-Type", kind),
                                              ("Content-Length", str(len(body)))])
        return [body]

    def healthz(self, environ: WSGIEnvironment) -> tuple[int, bytes, str]:
        return _json(200, {"status": "ok"})

    def readyz(self, environ: WSGIEnvironment) -> tuple[int, bytes, str]:
        with self.app.app_context():
            result = readiness()
        if result.ready:
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "unavailable", "failed": list(result.failed)})

    def metrics(self, environ: WSGIEnvironment) -> tuple[int, bytes, str]:
        token = str(self.app.config.get("METRICS_TOKEN") or "")
        given = str(environ.get("HTTP_AUTHORIZATION", ""))
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _json(404, {"error": "not found"})
        with self.app.app_context():
            body, kind = exposition(ScrapeCollector())
        return 200, body, kind
