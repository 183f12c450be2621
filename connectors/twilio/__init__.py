"""Twilio's Messages API through the official `twilio` package: send a text, look one up, and
check an inbound webhook's signature. Knows Twilio, nothing about our tables.

The base URL of the API domain can be pointed elsewhere (the local emulator in sandboxes/):
`Client.api.base_url` is the one place the package builds its URLs from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from requests import RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from connectors.base import ConfigurationError, ProviderRejected, RateLimited, TransientError

# Twilio's error codes that mean "not this number" (invalid, not a mobile, opted out) rather
# than our mistake: the contact gets no text, the ladder falls back to email.
UNREACHABLE_CODES = {21211: "invalid_number", 21614: "not_mobile", 21408: "region_blocked",
                     21610: "opted_out", 21612: "unreachable"}
FINAL_STATUSES = ("delivered", "undelivered", "failed")
NOT_SENT_STATUSES = ("undelivered", "failed")


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    sender: str  # an E.164 number, or an alphanumeric sender ID where the country allows it
    api_url: str | None = None  # None: Twilio itself


@dataclass(frozen=True)
class SentText:
    sid: str
    to: str
    status: str
    segments: int
    created: datetime | None
    body: str = ""
    price: str | None = None
    error_code: int | None = None


class NumberRefused(ProviderRejected):
    """Twilio will not text this number (invalid, not a mobile, opted out): `reason` says why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TwilioMessages:
    """One account's Messages resource."""

    def __init__(self, account: TwilioAccount, timeout: float = 15.0) -> None:
        self.account = account
        self.client = Client(account.account_sid, account.auth_token,
                             http_client=TwilioHttpClient(timeout=timeout))
        if account.api_url:
            self.client.api.base_url = account.api_url.rstrip("/")

    def send(self, to: str, body: str, status_callback: str | None = None) -> SentText:
        extra: dict[str, Any] = {"status_callback": status_callback} if status_callback else {}
        with _classified():
            message = self.client.messages.create(to=to, from_=self.account.sender, body=body,
                                                  **extra)
        return _text(message)

    def fetch(self, sid: str) -> SentText:
        with _classified():
            return _text(self.client.messages(sid).fetch())

    def find(self, to: str, body: str, since: datetime) -> SentText | None:
        """A text with this body sent to `to` from our sender since `since` (the send whose
        answer was lost), or None. Twilio's DateSent filter is by day: a day back covers a
        retry after midnight; the exact moment is compared here."""
        with _classified():
            found = self.client.messages.list(
                to=to, from_=self.account.sender,
                date_sent_after=since - timedelta(days=1), page_size=100)
        for message in found:
            created = message.date_created
            if message.body == body and (created is None or created >= since):
                return _text(message)
        return None


def _text(message: Any) -> SentText:
    return SentText(sid=message.sid, to=message.to, status=message.status,
                    segments=int(message.num_segments or 1), created=message.date_created,
                    body=message.body or "", price=message.price,
                    error_code=message.error_code)


@contextmanager
def _classified() -> Iterator[None]:
    """Twilio's exceptions as ours: every failure classified once."""
    try:
        yield
    except TwilioRestException as exc:
        if exc.status in (401, 403):
            raise ConfigurationError(f"Twilio refused the credentials ({exc.code})") from exc
        if exc.status == 429:
            raise RateLimited("Twilio: too many requests", retry_after=5.0) from exc
        if exc.status >= 500:
            raise TransientError(f"Twilio answered {exc.status}") from exc
        reason = UNREACHABLE_CODES.get(exc.code or 0)
        if reason:
            raise NumberRefused(f"Twilio: {exc.msg}", reason) from exc
        raise ProviderRejected(f"Twilio refused the text: {exc.msg} ({exc.code})") from exc
    except (RequestException, TwilioException, OSError) as exc:
        raise TransientError(f"Twilio unreachable or no answer: {type(exc).__name__}") from exc


def valid_signature(auth_token: str, url: str, params: dict[str, str], signature: str) -> bool:
    """An inbound webhook really from Twilio (X-Twilio-Signature over the URL and form)."""
    return bool(signature) and RequestValidator(auth_token).validate(url, params, signature)
