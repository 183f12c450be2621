"""Requests to addresses an owner typed in (the stop-service webhook): signed, bounded in time,
and never to our own network.

Why: the owner controls the URL, so without a guard it is a way to make our workers call the
cloud's metadata service (169.254.169.254), Redis or PostgreSQL on loopback, or anything on the
private network (SSRF). The host is resolved and every address it resolves to must be public;
the connection is then made to the address that was checked (a second DNS answer cannot swap
in a private one), proxies from the environment are ignored, and a redirect is refused rather
than followed. `OUTBOUND_ALLOW_LOOPBACK` lets the demo and the tests reach 127.0.0.1/::1; it
never opens private, link-local or other special ranges.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connectors.base import ConfigurationError, TransientError

ALLOWED_SCHEMES = ("http", "https")
TIMEOUT_SECONDS = (5, 10)  # connect, read

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 reached through a NAT64 gateway


class OutboundRefused(ConfigurationError):
    """An owner-configured address we will not call; the message tells the owner why."""


def _effective(address: IPAddress) -> IPAddress:
    """IPv6 forms that carry an IPv4 address (::ffff:a.b.c.d, 6to4, Teredo) are judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in (address.ipv4_mapped, address.sixtofour,
                      address.teredo[1] if address.teredo else None):
            if inner is not None:
                return inner
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, allow_loopback: bool) -> str | None:
    """Why this address may not be called, or None if it may."""
    checked = _effective(address)
    if checked.is_loopback:
        return None if allow_loopback else "a loopback address"
    for name, flag in (("an unspecified address", checked.is_unspecified),
                       ("a link-local address", checked.is_link_local),
                       ("a multicast address", checked.is_multicast),
                       ("a private address", checked.is_private),
                       ("a reserved address", checked.is_reserved)):
        if flag:
            return name
    if not checked.is_global:  # shared address space (100.64/10), benchmarks, documentation...
        return "a non-public address"
    return None


def vetted_addresses(host: str, port: int, allow_loopback: bool) -> list[str]:
    """Every address `host` resolves to, if all may be called; else OutboundRefused."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(f"webhook host {host!r} does not resolve") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise TransientError(f"webhook host {host!r} does not resolve")
    for text in addresses:
        why = refusal(ipaddress.ip_address(text), allow_loopback)
        if why:
            raise OutboundRefused(f"the webhook address {host} is {why} ({text}); "
                                  "only public addresses are called")
    return addresses


def check_url(url: str, allow_loopback: bool) -> None:
    """The checks that need no connection: scheme, host, port; then the host's addresses."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"the webhook address is not a URL: {exc}") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise OutboundRefused("the webhook address must start with https:// or http://")
    if not parts.hostname:
        raise OutboundRefused("the webhook address has no host")
    if parts.username or parts.password:
        raise OutboundRefused("the webhook address must not carry a user name or password")
    default = 443 if parts.scheme.lower() == "https" else 80
    vetted_addresses(parts.hostname, port or default, allow_loopback)


def check_url_to_save(url: str, allow_loopback: bool) -> None:
    """The save-time check of an owner's webhook address (policy page, credit settings):
    what the send-time check refuses, plus plain http:// and a host that does not resolve,
    so a mistake is told to the owner while they are at the field rather than the day a
    customer is put on hold. Plain http:// is kept for loopback receivers when
    OUTBOUND_ALLOW_LOOPBACK is on (demo, tests). Raises OutboundRefused with the reason."""
    try:
        check_url(url, allow_loopback)
    except TransientError as exc:  # at send time DNS may recover; at save time it is a typo
        raise OutboundRefused(f"the webhook address {urlsplit(url).hostname} does not "
                              "resolve (no such host); check the address") from exc
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        host = (parts.hostname or "").strip("[]")
        loopback_only = allow_loopback and all(
            _effective(ipaddress.ip_address(a)).is_loopback
            for a in vetted_addresses(host, parts.port or 80, allow_loopback))
        if not loopback_only:
            raise OutboundRefused("the webhook address must start with https://")


def refusal_to_save(url: str) -> str | None:
    """Why this app will not save `url` as a stop-service address, as a sentence for the
    field; None when it may be saved."""
    try:
        check_url_to_save(url, bool(current_app.config.get("OUTBOUND_ALLOW_LOOPBACK", False)))
    except OutboundRefused as exc:
        reason = str(exc)
        return reason[:1].upper() + reason[1:] + "."
    return None


class _Vetted:
    """Mixed into urllib3's connections: connect only to an address that passed the guard."""

    allow_loopback = False
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        address = vetted_addresses(self._dns_host, self.port, self.allow_loopback)[0]
        named, self._dns_host = self._dns_host, address
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = named


def _adapter(allow_loopback: bool) -> HTTPAdapter:
    http_conn = type("VettedHTTPConnection", (_Vetted, HTTPConnection),
                     {"allow_loopback": allow_loopback})
    https_conn = type("VettedHTTPSConnection", (_Vetted, HTTPSConnection),
                      {"allow_loopback": allow_loopback})
    http_pool = type("VettedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("VettedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})

    class VettedAdapter(HTTPAdapter):
        def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                             **pool_kwargs: Any) -> None:
            super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
            manager: PoolManager = self.poolmanager
            manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    return VettedAdapter(max_retries=0)


def guarded_session(allow_loopback: bool) -> requests.Session:
    """A requests session that can reach public addresses only (and loopback if allowed)."""
    session = requests.Session()
    session.trust_env = False  # an HTTP_PROXY from the environment would bypass the guard
    session.adapters.clear()
    adapter = _adapter(allow_loopback)
    for scheme in ALLOWED_SCHEMES:
        session.mount(f"{scheme}://", adapter)
    return session


def signature(body: bytes, org_id: int) -> str:
    """HMAC-SHA256 of the body, hex: WEBHOOK_SIGNING_KEY, or a key derived per organisation
    from SECRET_KEY (so one organisation's receiver cannot forge another's signals)."""
    config = current_app.config
    secret = config.get("WEBHOOK_SIGNING_KEY") or hmac.new(
        str(config["SECRET_KEY"]).encode(), f"webhook:{org_id}".encode(),
        hashlib.sha256).hexdigest()
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(url: str, body: bytes, org_id: int, delivery_id: str) -> int:
    """POST a JSON body to an owner's address, signed (`Dunwell-Signature: sha256=<hex>`).

    Returns the 2xx status. Refused addresses, redirects and 4xx answers are the owner's to
    fix (OutboundRefused / ConfigurationError); a network failure, 429 or 5xx is transient."""
    allow_loopback = bool(current_app.config.get("OUTBOUND_ALLOW_LOOPBACK", False))
    check_url(url, allow_loopback)
    with guarded_session(allow_loopback) as session:
        try:
            answer = session.post(url, data=body, timeout=TIMEOUT_SECONDS,
                                  allow_redirects=False, headers={
                                      "Content-Type": "application/json",
                                      "User-Agent": "Dunwell-Webhook/1",
                                      "Dunwell-Delivery": delivery_id,
                                      "Dunwell-Signature": f"sha256={signature(body, org_id)}"})
        except requests.RequestException as exc:
            raise TransientError(f"stop-service webhook: {exc.__class__.__name__}") from exc
    status = answer.status_code
    if 300 <= status < 400:
        raise OutboundRefused(f"stop-service webhook answered a redirect ({status}); "
                              "give the address that answers directly")
    if status >= 500 or status == 429:
        raise TransientError(f"stop-service webhook answered {status}")
    if status >= 400:
        raise ConfigurationError(f"stop-service webhook answered {status}")
    return status
