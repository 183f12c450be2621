"""What both sandboxes write on the wire alike: JSON with exact decimals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

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
