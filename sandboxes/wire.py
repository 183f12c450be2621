"""What both sandboxes do alike: JSON with exact decimals, their own HTML pages, the OAuth client
apps they know (with the redirect URIs each may use), case-insensitive field paths, sliding
windows of calls, and how an app is assembled and served on its own."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlparse

from flask import Blueprint, Flask, Response
from werkzeug.serving import run_simple


def encode(value: Any) -> str:
    """JSON with Decimal written as an exact number (json.dumps would need floats); keys
    starting with `_` are the sandbox's own bookkeeping and never leave it."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in value.items()
                              if not str(k).startswith("_")) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(encode(body), status=status, headers=headers or {},
                    mimetype="application/json")


def html_response(body: str, status: int = 200, cache_control: str = "no-store") -> Response:
    """A page of the sandbox's own (consent, an online invoice, its front page): never cached
    (each provider words Cache-Control its own way), never framed."""
    return Response(body, status=status, mimetype="text/html", headers={
        "Cache-Control": cache_control, "X-Frame-Options": "DENY"})


@dataclass
class ClientApp:
    secret: str
    redirect_uris: list[str] = field(default_factory=list)  # empty: any loopback URI
    name: str = ""

    def allows(self, uri: str) -> bool:
        if self.redirect_uris:
            return uri in self.redirect_uris
        parsed = urlparse(uri)
        return parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost")


def field_at(record: Any, path: str) -> Any:
    """The value at a dotted path, each name matched in any case (as both providers' query
    languages match them); None where the path leads nowhere."""
    value = record
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        wanted = step.lower()
        value = next((v for k, v in value.items() if k.lower() == wanted), None)
    return value


def forget_before(calls: deque[datetime], cutoff: datetime) -> deque[datetime]:
    """A sliding window of calls, oldest first: drops those made at `cutoff` or before."""
    while calls and calls[0] <= cutoff:
        calls.popleft()
    return calls


def sandbox_app(import_name: str, extension: str, state: Any,
                blueprints: Iterable[Blueprint]) -> Flask:
    """A Flask app of the blueprints with its sandbox's state kept on it (`app.extensions`),
    never in a module: several sandboxes serve side by side in one process."""
    app = Flask(import_name)
    app.extensions[extension] = state
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app


class Seedable(Protocol):
    def seed_demo(self, today: date) -> None: ...


def serve_seeded(name: str, state: Seedable, create_app: Callable[[Any], Flask], host: str,
                 port: int, seed_today: date | None = None) -> None:
    """Serve a sandbox on its own (the demo), its books seeded for `seed_today` (today)."""
    state.seed_demo(seed_today or datetime.now(UTC).date())
    print(f"{name} on http://{host}:{port}", flush=True)
    run_simple(host, port, create_app(state), threaded=True)
