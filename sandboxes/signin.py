"""The sign-in server both sandboxes run: OAuth 2.0's authorisation code flow, from the consent
page to the token endpoint (the `authorization_code` and `refresh_token` grants) and
revocation.

What is the same for Xero and Intuit is here: checking the client app and its redirect URI,
the consent page and the choice made on it, single-use codes that expire, client
authentication (HTTP Basic or the form), the answers' shapes and headers. What differs is a
`SignInServer`'s parameters (its paths, the authorize request's fields, the wording of its
pages, how its consent page looks) and its hooks: what else an authorize request must satisfy,
what a consent records, how a code is redeemed, how a refresh token is used and what revoking
a token ends. A provider's subclass lives beside its sandbox (`xero/identity.py`,
`quickbooks/oauth.py`); `blueprint()` makes its routes.
"""

from __future__ import annotations

import hmac
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from sandboxes.wire import ClientApp, html_response, json_response


@dataclass(frozen=True)
class ConsentLook:
    """How a provider's consent page looks and what it says."""

    title: str
    background: str
    color: str
    width: int
    radius: int
    choice_class: str  # the CSS class of each organisation or company to choose
    button_padding: int
    button_radius: int
    brand: str  # the colour of the buttons
    masthead: str  # HTML
    asks: str  # after the app's name in the heading
    prompt: str
    allow: str
    error_apart: bool  # the error on a line of its own, below the choices


@dataclass(frozen=True)
class Choice:
    """One organisation or company on the consent page."""

    value: str
    name: str
    country: str
    currency: str


@dataclass(frozen=True)
class Consented:
    """What a consent adds to its code's record, and to the redirect that carries the code."""

    code_fields: dict[str, Any]
    redirect_fields: dict[str, str]


def redirect_to(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return Response(status=302, headers={"Location": uri + sep + urlencode(params)})


class SignInServer(ABC):
    """A provider's sign-in: the parameters and hooks `blueprint()` builds the routes from.
    The hooks are given the sandbox of the request (`sandbox()`); `consent`, `redeem`,
    `refresh` and `revoke` run under its lock."""

    authorize_path: str
    token_path: str
    revoke_path: str
    authorize_fields: tuple[str, ...]  # read from the query (GET) or the form (POST)
    cache_control: str  # of the pages and the token answers
    unknown_client_page: str  # HTML answered with 400
    unregistered_redirect_page: str  # HTML answered with 400
    look: ConsentLook
    choice_kind: str  # "checkbox" (any number) or "radio" (one, the first checked)
    choice_field: str  # the form field of the choice

    # --- hooks ------------------------------------------------------------------------

    @abstractmethod
    def sandbox(self) -> Any:
        """The sandbox answering this request (with `lock`, `now`, `codes`, `config.clients`)."""

    def refusal(self, args: dict[str, str]) -> str | None:
        """An OAuth error to redirect back with, for a request the provider refuses beyond
        the client, the redirect URI and the response type; None: none."""
        return None

    @abstractmethod
    def choices(self, box: Any) -> Iterable[Choice]:
        """The organisations or companies the consent page offers."""

    @abstractmethod
    def consent(self, box: Any, args: dict[str, str],
                chosen: MultiDict[str, str]) -> Consented | str:
        """Record the consent to what was chosen; or, when nothing (valid) was, the error to
        show on the consent page again."""

    @abstractmethod
    def new_code(self) -> str: ...

    @abstractmethod
    def code_seconds(self, box: Any) -> int: ...

    @abstractmethod
    def redeem(self, box: Any, code: dict[str, Any], client_id: str) -> dict[str, Any] | None:
        """The token answer for a code that is the client's, unexpired and sent with its
        redirect URI; None: invalid_grant."""

    @abstractmethod
    def refresh(self, box: Any, token: str, client_id: str) -> dict[str, Any] | None:
        """The token answer for a refresh token; None: invalid_grant."""

    @abstractmethod
    def revocation_token(self) -> str | None:
        """The token a revocation request names; None: the request is invalid."""

    @abstractmethod
    def revoke(self, box: Any, token: str, client_id: str) -> None:
        """End what the token is of, if it is the client's (an unknown token is no error)."""

    # --- what both do alike -------------------------------------------------------------

    def html(self, body: str, status: int = 200) -> Response:
        return html_response(body, status, self.cache_control)

    def token_answer(self, body: dict[str, Any], status: int = 200) -> Response:
        return json_response(body, status, {"Cache-Control": self.cache_control,
                                            "Pragma": "no-cache"})

    def client_from_request(self) -> str | None:
        """The client app's id, if it authenticated (HTTP Basic, or the form's fields)."""
        auth = request.authorization
        client_id = (auth.username if auth else request.form.get("client_id")) or ""
        secret = (auth.password if auth else request.form.get("client_secret")) or ""
        client = self.sandbox().config.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client_id

    def consent_page(self, box: Any, args: dict[str, str], client: ClientApp,
                     error: str = "") -> str:
        look = self.look
        hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                         for k, v in args.items())
        checked_first = self.choice_kind == "radio"
        choices = "".join(
            f'<label class="{look.choice_class}"><input type="{self.choice_kind}" '
            f'name="{self.choice_field}" value="{escape(c.value)}"'
            f'{" checked" if checked_first and n == 0 else ""}> {escape(c.name)} '
            f'<small>({escape(c.country)}, {escape(c.currency)})</small></label>'
            for n, c in enumerate(self.choices(box)))
        scopes = "".join(f"<li><code>{escape(s)}</code></li>"
                         for s in args.get("scope", "").split())
        app_name = escape(client.name or args.get("client_id", ""))
        problem = f'<p class="err">{escape(error)}</p>' if error else ""
        apart = "\n" if look.error_apart else ""
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{look.title}</title><style>
body{{font:15px system-ui;background:{look.background};color:{look.color};margin:0}}
main{{max-width:{look.width}px;margin:48px auto;background:#fff;border-radius:{look.radius}px;\
padding:24px 28px;
box-shadow:0 1px 4px #0002}}h1{{font-size:20px}}.{look.choice_class}{{display:block;margin:8px 0}}
.err{{color:#b91c1c}}button{{font:inherit;padding:8px {look.button_padding}px;\
border-radius:{look.button_radius}px;margin-right:8px;
border:1px solid {look.brand};background:#fff}}button[value=allow]{{background:{look.brand};\
color:#fff}}
</style></head><body><main><p>{look.masthead}</p>
<h1>{app_name} {look.asks}</h1>
<p>It asks for:</p><ul>{scopes}</ul>
<form method="post" action="{self.authorize_path}">{hidden}
<p>{look.prompt}</p>{choices}{apart}{problem}
<p><button type="submit" name="decision" value="allow">{look.allow}</button>
<button type="submit" name="decision" value="deny">Cancel</button></p></form></main>
</body></html>"""

    # --- the routes ---------------------------------------------------------------------

    def authorize(self) -> Response:
        box = self.sandbox()
        source = request.args if request.method == "GET" else request.form
        args = {k: source.get(k, "") for k in self.authorize_fields}
        client = box.config.clients.get(args["client_id"])
        if client is None:
            return self.html(self.unknown_client_page, 400)
        if not client.allows(args["redirect_uri"]):
            return self.html(self.unregistered_redirect_page, 400)
        if args["response_type"] != "code":
            return redirect_to(args["redirect_uri"], {"error": "unsupported_response_type",
                                                      "state": args["state"]})
        refused = self.refusal(args)
        if refused is not None:
            return redirect_to(args["redirect_uri"], {"error": refused,
                                                      "state": args["state"]})
        if request.method == "GET":
            return self.html(self.consent_page(box, args, client))
        if request.form.get("decision") != "allow":
            return redirect_to(args["redirect_uri"], {"error": "access_denied",
                                                      "state": args["state"]})
        with box.lock:
            consented = self.consent(box, args, request.form)
            if isinstance(consented, str):
                return self.html(self.consent_page(box, args, client, consented), 400)
            code = self.new_code()
            box.codes[code] = {**args, **consented.code_fields,
                               "expires": box.now + timedelta(seconds=self.code_seconds(box))}
        return redirect_to(args["redirect_uri"], {"code": code, "state": args["state"],
                                                  **consented.redirect_fields})

    def token(self) -> Response:
        box = self.sandbox()
        client_id = self.client_from_request()
        if client_id is None:
            return self.token_answer({"error": "invalid_client"}, 401)
        grant = request.form.get("grant_type")
        invalid = {"error": "invalid_grant"}
        with box.lock:
            if grant == "authorization_code":
                code = box.codes.pop(request.form.get("code", ""), None)  # single use
                if code is None or code["expires"] < box.now or code["client_id"] != client_id \
                        or request.form.get("redirect_uri") != code["redirect_uri"]:
                    return self.token_answer(invalid, 400)
                answer = self.redeem(box, code, client_id)
                return self.token_answer(answer) if answer is not None else \
                    self.token_answer(invalid, 400)
            if grant == "refresh_token":
                answer = self.refresh(box, request.form.get("refresh_token", ""), client_id)
                return self.token_answer(answer) if answer is not None else \
                    self.token_answer(invalid, 400)
        return self.token_answer({"error": "unsupported_grant_type"}, 400)

    def revocation(self) -> Response:
        box = self.sandbox()
        client_id = self.client_from_request()
        if client_id is None:
            return self.token_answer({"error": "invalid_client"}, 401)
        token = self.revocation_token()
        if token is None:
            return self.token_answer({"error": "invalid_request"}, 400)
        with box.lock:
            self.revoke(box, token, client_id)
        return Response(status=200)

    def blueprint(self, name: str, import_name: str) -> Blueprint:
        """The provider's authorize, token and revocation routes."""
        bp = Blueprint(name, import_name)
        bp.add_url_rule(self.authorize_path, "authorize", self.authorize,
                        methods=["GET", "POST"])
        bp.add_url_rule(self.token_path, "token", self.token, methods=["POST"])
        bp.add_url_rule(self.revoke_path, "revoke", self.revocation, methods=["POST"])
        return bp


def new_secret(prefix: str, size: int) -> str:
    """A code or token: `prefix` and `size` random bytes, URL-safe."""
    return prefix + secrets.token_urlsafe(size)
