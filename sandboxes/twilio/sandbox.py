"""The Twilio sandbox's state: accounts, messages, opt-outs and the fates of numbers, in memory.

Twilio's behaviour as documented (docs/messaging/api/message-resource and "Outbound Message
Status in Status Callbacks"): a message created without a Messaging Service starts `queued`,
and no status callback is sent for that first status; each later change (`sent`, then
`delivered`, `undelivered` or `failed`) is POSTed to its StatusCallback, signed like every
webhook (X-Twilio-Signature). Inbound texts are POSTed to the number's messaging URL.

UNVERIFIED (no document found that settles it; searched Twilio's message-resource, error and
opt-out pages): the delay between status changes (ours: `SandboxConfig.progress_delay`); the
price of a segment (ours: `price_per_segment`, in USD, negative as Twilio shows charges); the
default opt-out keywords are Twilio's documented English ones, and a STOP is still forwarded to
the webhook with `OptOutType`, as Advanced Opt-Out describes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import requests

from sandboxes.twilio.segments import count_segments

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEMO_ACCOUNT_SID = "AC" + "d" * 32
DEMO_AUTH_TOKEN = "sandbox-auth-token-0000000000000"  # the emulator's own, not a secret
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                     "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
FINAL = ("delivered", "undelivered", "failed")
ERRORS = {  # code -> message, as Twilio's error dictionary words them
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30008: "Unknown error",
}


def now_utc() -> datetime:
    return datetime.now(UTC)


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each POST parameter's name
    and value, sorted by name, keyed with the account's auth token."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment.astimezone(UTC)) if moment else None


@dataclass
class SandboxConfig:
    clock: Callable[[], datetime] = now_utc
    accounts: dict[str, str] = field(
        default_factory=lambda: {DEMO_ACCOUNT_SID: DEMO_AUTH_TOKEN})
    auto_progress: bool = True  # statuses move on by themselves; else `progress()` moves them
    progress_delay: float = 0.05  # seconds between status changes
    inbound_url: str | None = None  # where texts to the account's numbers are POSTed
    price_per_segment: Decimal = Decimal("-0.00790")
    price_unit: str = "USD"
    public_url: str = ""  # the sandbox's own address, for the page's links


class Rejected(Exception):
    """A request Twilio answers with an error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Fate:
    status: str  # "delivered", "undelivered" or "failed"
    error_code: int | None = None


class TwilioSandbox:
    """All state, in memory, thread-safe (one lock)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.lock = threading.RLock()
        self.messages: dict[str, dict[str, Any]] = {}  # sid -> message, in creation order
        self.callbacks: dict[str, str] = {}  # sid -> StatusCallback URL
        self.fates: dict[str, Fate] = {}  # number -> how texts to it end
        self.opted_out: set[tuple[str, str]] = set()  # (customer's number, our number)
        self.posted: list[dict[str, Any]] = []  # every webhook we POSTed, with its answer

    @property
    def now(self) -> datetime:
        return self.config.clock()

    def token_of(self, account_sid: str) -> str | None:
        return self.config.accounts.get(account_sid)

    # --- what tests set up ------------------------------------------------------------

    def fail_number(self, number: str, status: str = "undelivered",
                    error_code: int = 30003) -> None:
        """Texts to `number` end `undelivered` (after `sent`) or `failed` (never sent)."""
        if status not in ("undelivered", "failed"):
            raise ValueError("a number fails as undelivered or failed")
        self.fates[number] = Fate(status, error_code)

    # --- the Messages resource --------------------------------------------------------

    def create_message(self, account_sid: str, params: dict[str, str]) -> dict[str, Any]:
        to, sender, body = params.get("To", ""), params.get("From", ""), params.get("Body", "")
        if not to:
            raise Rejected(400, 21604, "A 'To' phone number is required.")
        if not sender and not params.get("MessagingServiceSid"):
            raise Rejected(400, 21603, "A 'From' phone number is required.")
        if not body and not params.get("MediaUrl"):
            raise Rejected(400, 21602, "Message body is required.")
        if not _e164(to):
            raise Rejected(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not (_e164(sender) or _alphanumeric_id(sender)):
            raise Rejected(400, 21212, f"Invalid From Number (caller ID): {sender}")
        if len(body) > 1600:
            raise Rejected(400, 21617,
                           "The concatenated message body exceeds the 1600 character limit.")
        with self.lock:
            if (to, sender) in self.opted_out:
                raise Rejected(400, 21610, "Attempt to send to unsubscribed recipient")
            sid = "SM" + secrets.token_hex(16)
            moment = self.now
            _, segments = count_segments(body)
            message = {
                "account_sid": account_sid, "api_version": API_VERSION, "body": body,
                "date_created": moment, "date_sent": None, "date_updated": moment,
                "direction": "outbound-api", "error_code": None, "error_message": None,
                "from": sender, "messaging_service_sid": params.get("MessagingServiceSid"),
                "num_media": "0", "num_segments": str(segments), "price": None,
                "price_unit": self.config.price_unit, "sid": sid, "status": "queued",
                "to": to,
            }
            self.messages[sid] = message
            if params.get("StatusCallback"):
                self.callbacks[sid] = params["StatusCallback"]
        if self.config.auto_progress:
            threading.Thread(target=self._progress_later, args=(sid,), daemon=True).start()
        return message

    def message(self, account_sid: str, sid: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.messages.get(sid)
            return found if found and found["account_sid"] == account_sid else None

    def list_messages(self, account_sid: str, to: str | None = None, sender: str | None = None,
                      sent_on: str | None = None, sent_before: str | None = None,
                      sent_after: str | None = None) -> list[dict[str, Any]]:
        """Newest first, as Twilio lists them; DateSent filters compare dates (UTC)."""
        def day(message: dict[str, Any]) -> str:
            moment = message["date_sent"] or message["date_created"]
            return moment.astimezone(UTC).date().isoformat()

        with self.lock:
            found = [m for m in self.messages.values() if m["account_sid"] == account_sid]
        found = [m for m in found
                 if (not to or m["to"] == to) and (not sender or m["from"] == sender)
                 and (not sent_on or day(m) == sent_on[:10])
                 and (not sent_before or day(m) <= sent_before[:10])
                 and (not sent_after or day(m) >= sent_after[:10])]
        return sorted(found, key=lambda m: m["date_created"], reverse=True)

    # --- statuses and callbacks -------------------------------------------------------

    def _progress_later(self, sid: str) -> None:
        event = threading.Event()
        while not event.wait(self.config.progress_delay):
            if not self.progress(sid):
                return

    def progress(self, sid: str | None = None) -> bool:
        """Move one message (or every unfinished one) one status on, posting its callback;
        True while something is left to move."""
        with self.lock:
            sids = [sid] if sid else [s for s, m in self.messages.items()
                                      if m["direction"] == "outbound-api"
                                      and m["status"] not in FINAL]
        moved = False
        for one in sids:
            moved = self._step(one) or moved
        return moved

    def settle(self) -> None:
        """Every message to its final status (tests that do not wait on threads)."""
        while self.progress():
            pass

    def _step(self, sid: str) -> bool:
        with self.lock:
            message = self.messages.get(sid)
            if message is None or message["status"] in FINAL:
                return False
            fate = self.fates.get(message["to"], Fate("delivered"))
            moment = self.now
            if message["status"] == "queued" and fate.status == "failed":
                message["status"] = "failed"
            elif message["status"] == "queued":
                message["status"] = "sent"
                message["date_sent"] = moment
                segments = Decimal(message["num_segments"])
                message["price"] = str(self.config.price_per_segment * segments)
            else:
                message["status"] = fate.status
            if message["status"] in ("failed", "undelivered"):
                message["error_code"] = fate.error_code
                message["error_message"] = ERRORS.get(fate.error_code or 0)
            message["date_updated"] = moment
            url = self.callbacks.get(sid)
            params = {"AccountSid": message["account_sid"], "ApiVersion": API_VERSION,
                      "From": message["from"], "MessageSid": sid,
                      "MessageStatus": message["status"], "SmsSid": sid,
                      "SmsStatus": message["status"], "To": message["to"]}
            if message["error_code"]:
                params["ErrorCode"] = str(message["error_code"])
            token = self.token_of(message["account_sid"]) or ""
            final = message["status"] in FINAL
        if url:
            self.post_webhook(url, params, token)
        return not final

    def post_webhook(self, url: str, params: dict[str, str], auth_token: str) -> int:
        """POST form parameters as Twilio does, signed; the answer's status (0: unreachable)."""
        try:
            status = requests.post(url, data=params, timeout=5, headers={
                "X-Twilio-Signature": signature(auth_token, url, params),
                "User-Agent": "TwilioProxy/1.1"}).status_code
        except requests.RequestException as exc:
            log.info("webhook %s unreachable: %s", url, exc)
            status = 0
        with self.lock:
            self.posted.append({"url": url, "params": params, "status": status})
        return status

    # --- inbound ----------------------------------------------------------------------

    def receive(self, sender: str, to: str, body: str, account_sid: str = DEMO_ACCOUNT_SID,
                url: str | None = None) -> dict[str, Any]:
        """A customer's text to one of our numbers: stored, its opt-out keyword applied as
        Twilio's default opt-out handling does, and POSTed to the messaging URL."""
        keyword = body.strip().upper()
        with self.lock:
            if keyword in OPT_OUT:
                self.opted_out.add((sender, to))
            elif keyword in OPT_IN:
                self.opted_out.discard((sender, to))
            sid = "SM" + secrets.token_hex(16)
            moment = self.now
            _, segments = count_segments(body)
            self.messages[sid] = {
                "account_sid": account_sid, "api_version": API_VERSION, "body": body,
                "date_created": moment, "date_sent": moment, "date_updated": moment,
                "direction": "inbound", "error_code": None, "error_message": None,
                "from": sender, "messaging_service_sid": None, "num_media": "0",
                "num_segments": str(segments), "price": None,
                "price_unit": self.config.price_unit, "sid": sid, "status": "received",
                "to": to,
            }
        params = {"AccountSid": account_sid, "ApiVersion": API_VERSION, "Body": body,
                  "From": sender, "MessageSid": sid, "NumMedia": "0",
                  "NumSegments": str(segments), "SmsMessageSid": sid, "SmsSid": sid,
                  "SmsStatus": "received", "To": to}
        if keyword in OPT_OUT:
            params["OptOutType"] = "STOP"
        elif keyword in OPT_IN:
            params["OptOutType"] = "START"
        target = url or self.config.inbound_url
        if target:
            self.post_webhook(target, params, self.token_of(account_sid) or "")
        return self.messages[sid]


def _e164(number: str) -> bool:
    digits = number[1:]
    return number.startswith("+") and digits.isdigit() and 7 <= len(digits) <= 15 \
        and digits[0] != "0"


def _alphanumeric_id(sender: str) -> bool:
    """An alphanumeric sender ID: 1 to 11 letters, digits and spaces, at least one letter."""
    return 0 < len(sender) <= 11 and any(ch.isalpha() for ch in sender) \
        and all(ch.isascii() and (ch.isalnum() or ch == " ") for ch in sender)
