"""Fault injection around either sandbox: the failures a provider really serves, on demand.

`FaultInjector(create_app(state), provider="xero")` is a WSGI middleware. A test adds rules at
run time (thread-safe; the server answers on many threads) and each request that matches a
rule's method and path pattern gets that rule's fault, for the next N matches or with a
probability:

- `rate_limited`: a 429 in the provider's own shape (Xero: JSON problem with `Retry-After` and
  `X-Rate-Limit-Problem`; QuickBooks: the XML `ThrottleExceeded` fault, without Retry-After
  unless one is asked for, as QBO sends it). The request never reaches the sandbox.
- `server_error`: a 500 in the provider's shape; nothing reaches the sandbox.
- `slow`: the answer comes after `delay` seconds (the write happens).
- `timeout`: the sandbox performs the request after `delay` seconds (longer than the client
  waits), then the connection is dropped: the client gave up, the effect still happened.
- `lost_answer`: the sandbox performs the request at once, then the connection is shut down
  before a byte of the answer is sent: "committed, but the answer was lost".
- `forget_key`: the Idempotency-Key header (Xero) or `requestid` parameter (QuickBooks) is
  removed before the sandbox sees the request, as if the provider's idempotency window had
  passed: only our own reconciliation (markers, notes, email status) can prevent a repeat.

Dropping the connection uses the socket Werkzeug's server puts in `environ["werkzeug.socket"]`
(shut down both ways, so the client reads an empty, closed connection), which is what the
tests' and the demo's servers are.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from sandboxes.quickbooks.api import throttled as quickbooks_throttled

FaultKind = Literal["rate_limited", "server_error", "slow", "timeout", "lost_answer",
                    "forget_key"]
Provider = Literal["xero", "quickbooks"]
KINDS = ("rate_limited", "server_error", "slow", "timeout", "lost_answer", "forget_key")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class FaultRule:
    """Which requests fail, how, and how often."""

    kind: FaultKind
    method: str = "*"  # "POST", "POST|PUT", "GET" or "*"
    path: str = ""  # a regular expression searched in the request's path
    times: int | None = 1  # the next N matches; None: every match (with `probability`)
    probability: float = 1.0
    delay: float = 0.0  # seconds, for slow and timeout
    retry_after: int | None = 1  # seconds, for rate_limited (QuickBooks: None sends none)
    problem: str = "minute"  # Xero's X-Rate-Limit-Problem, for rate_limited
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("a fault's probability is between 0 and 1")
        if self.times is not None and self.times < 1:
            raise ValueError("a fault fires at least once")
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or method in self.method.split("|")) \
            and bool(self._pattern.search(path))

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass(frozen=True)
class FiredFault:
    kind: str
    method: str
    path: str


class FaultInjector:
    """WSGI middleware serving the faults its rules ask for; everything else passes through."""

    def __init__(self, app: WSGIApp, provider: Provider, seed: int | None = None) -> None:
        if provider not in ("xero", "quickbooks"):
            raise ValueError(f"unknown provider {provider!r}")
        self.app = app
        self.provider = provider
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.fired: list[FiredFault] = []  # what was served, in order

    # --- configuration, at run time -----------------------------------------------------

    def add(self, kind: FaultKind, *, method: str = "*", path: str = "",
            times: int | None = 1, probability: float = 1.0, delay: float = 0.0,
            retry_after: int | None = 1, problem: str = "minute") -> FaultRule:
        rule = FaultRule(kind, method.upper(), path, times, probability, delay, retry_after,
                         problem)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for fault in self.fired if kind is None or fault.kind == kind)

    def _pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.spent or not rule.matches(method, path):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                self.fired.append(FiredFault(rule.kind, method, path))
                return rule
        return None

    # --- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", ""))
        query = str(environ.get("QUERY_STRING", ""))
        rule = self._pick(method, path)
        if rule is None:
            return self.app(environ, start_response)
        if rule.kind == "rate_limited":
            return self._answer(start_response, *self._throttled(rule))
        if rule.kind == "server_error":
            return self._answer(start_response, *self._server_error())
        if rule.kind == "forget_key":
            environ.pop("HTTP_IDEMPOTENCY_KEY", None)
            environ["QUERY_STRING"] = urlencode(
                [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                 if k.lower() != "requestid"])
            return self.app(environ, start_response)
        if rule.kind == "slow":
            time.sleep(rule.delay)
            return self.app(environ, start_response)
        if rule.kind == "timeout":
            time.sleep(rule.delay)
        self._perform(environ)
        _drop_connection(environ)
        return []

    def _perform(self, environ: dict[str, Any]) -> None:
        """Run the request through the sandbox to the end, keeping nothing of the answer."""
        def ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return lambda data: None

        body = self.app(environ, ignore)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _answer(start_response: StartResponse, status: str, headers: list[tuple[str, str]],
                body: bytes) -> list[bytes]:
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _throttled(self, rule: FaultRule) -> tuple[str, list[tuple[str, str]], bytes]:
        if self.provider == "xero":
            body = json.dumps({"Title": "Too Many Requests", "Status": 429,
                               "Detail": f"Rate limit exceeded: {rule.problem}"}).encode()
            headers = [("Content-Type", "application/json; charset=utf-8"),
                       ("Retry-After", str(rule.retry_after or 1)),
                       ("X-Rate-Limit-Problem", rule.problem)]
            return "429 Too Many Requests", headers, body
        throttled = quickbooks_throttled(datetime.now(UTC).isoformat(timespec="milliseconds"))
        headers = [("Content-Type", "application/xml")]
        if rule.retry_after is not None:
            headers.append(("Retry-After", str(rule.retry_after)))
        return "429 Too Many Requests", headers, throttled.get_data()

    def _server_error(self) -> tuple[str, list[tuple[str, str]], bytes]:
        if self.provider == "xero":
            body = json.dumps({"Title": "An error occurred", "Status": 500,
                               "Detail": "An error occurred in Xero. Check the API Status "
                                         "page http://status.developer.xero.com for current "
                                         "service status."}).encode()
            return "500 Internal Server Error", [
                ("Content-Type", "application/json; charset=utf-8")], body
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = json.dumps({"Fault": {"Error": [{
            "Message": "An application error has occurred while processing your request",
            "Detail": "System Failure Error: An unexpected error occurred while accessing or "
                      "saving your data. Please wait a few minutes and try again.",
            "code": "10000"}], "type": "SystemFault"}, "time": stamp}).encode()
        return "500 Internal Server Error", [
            ("Content-Type", "application/json;charset=UTF-8"),
            ("intuit_tid", "1-fault-injected")], body


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection with no answer on it (the server's later writes fail
    with a broken pipe, which Werkzeug treats as a client that went away)."""
    sock = environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        raise RuntimeError("dropping a connection needs Werkzeug's server (werkzeug.socket)")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client is already gone
