"""What every Stripe API request goes through: the secret key (Bearer, or Basic with the key as
the user), form-encoded bodies with Stripe's bracketed nesting (`a[b][0]=c`), the
`Idempotency-Key` header (a replay answers the first answer; the same key with another body is
refused), and Stripe's error body `{"error": {"type", "code", "message", "param"}}`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request

from sandboxes.stripe.sandbox import StripeSandbox

EXTENSION = "stripe_sandbox"
bp = Blueprint("stripe_api", __name__)


class StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code, self.param = (status, kind, message,
                                                                       code, param)


def current() -> StripeSandbox:
    box: StripeSandbox = current_app.extensions[EXTENSION]
    return box


def as_json(body: Any, status: int = 200) -> Response:
    text = json.dumps(body)
    request_id = "req_" + hashlib.sha256(text.encode()).hexdigest()[:14]
    return Response(text, status=status, mimetype="application/json",
                    headers={"Request-Id": request_id, "Stripe-Version": "2025-09-30.clover"})


def error_response(error: StripeError) -> Response:
    body: dict[str, Any] = {"type": error.kind, "message": error.message}
    if error.code:
        body["code"] = error.code
    if error.param:
        body["param"] = error.param
    return as_json({"error": body}, error.status)


def missing(object_name: str, object_id: str) -> StripeError:
    return StripeError(404, "invalid_request_error",
                       f"No such {object_name}: '{object_id}'", "resource_missing", "id")


def secret_key() -> str:
    header = request.headers.get("Authorization", "")
    key = ""
    if header.startswith("Bearer "):
        key = header[7:].strip()
    elif header.startswith("Basic "):
        try:
            key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except ValueError:
            key = ""
    if key not in current().accounts:
        raise StripeError(401, "invalid_request_error",
                          "Invalid API Key provided: " + (key[:8] + "*" * 4 if key else "(none)"))
    return key


_PART = re.compile(r"\[([^\]]*)\]")


def form() -> dict[str, Any]:
    """The body (or query) as nested data: `a[b][0][c]=v` -> {"a": {"b": [{"c": "v"}]}}."""
    source = request.form if request.method == "POST" else request.args
    root: dict[str, Any] = {}
    for name, value in source.items(multi=True):
        head = name.split("[", 1)[0]
        keys = [head, *_PART.findall(name[len(head):])]
        node: Any = root
        for index, key in enumerate(keys):
            last = index == len(keys) - 1
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def api(handler: Callable[[StripeSandbox, str, dict[str, Any]], Any]) -> Response:
    """One API request: the key, the body, idempotent replays, errors as Stripe words them."""
    box = current()
    try:
        with box.lock:
            key = secret_key()
            params = form()
            idem = request.headers.get("Idempotency-Key") if request.method == "POST" else None
            fingerprint = hashlib.sha256(request.get_data()).hexdigest() + request.path
            if idem is not None:
                stored = box.idempotent.get((key, idem))
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise StripeError(400, "idempotency_error",
                                          "Keys for idempotent requests can only be used with "
                                          "the same parameters they were first used with.")
                    return Response(stored[2], status=stored[1], mimetype="application/json",
                                    headers={"Idempotent-Replayed": "true"})
            try:
                response = as_json(handler(box, key, params))
            except StripeError as error:
                response = error_response(error)
            if idem is not None and response.status_code < 500:
                box.idempotent[(key, idem)] = (fingerprint, response.status_code,
                                               response.get_data(as_text=True))
            return response
    except StripeError as error:
        return error_response(error)


def integer(params: dict[str, Any], name: str, value: Any) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError) as exc:
        raise StripeError(400, "invalid_request_error", f"Invalid integer: {value}",
                          "parameter_invalid_integer", name) from exc
    return number


def found(box: StripeSandbox, key: str, kind: str, object_id: str) -> dict[str, Any]:
    """The account's object of that kind, or Stripe's 404."""
    obj = box.get(key, object_id, kind)
    if obj is None:
        raise missing(kind, object_id)
    return obj


def retrieve(kind: str, object_id: str) -> Response:
    """GET /v1/<resources>/<id>: the object as it stands."""
    return api(lambda box, key, params: found(box, key, kind, object_id))
