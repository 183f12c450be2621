"""What both sandboxes do alike on the wire: JSON with exact decimals, their own HTML pages, and
the OAuth client apps they know (with the redirect URIs each may use)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from flask import Response


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
