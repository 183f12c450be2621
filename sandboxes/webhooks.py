"""Signed webhooks from the sandboxes, batched and retried as Xero and Intuit send them.

Each sandbox says what its books hold now as a snapshot, {(tenant, kind, id): version}; the
emitter compares it with the last one it delivered, so every change is seen however it was
made (the API, the sandbox's own pages, a test's "a customer pays" helper) without a hook in
each of them. Changes found in one look are one batch: Xero sends one `events` payload, Intuit
one notification (legacy `eventNotifications` or a CloudEvents array). Delivery happens on a
background thread, retried with backoff; `flush()` delivers at once, for tests and the demo.

Choices where the providers' behaviour is not published (UNVERIFIED): a batch is at most
`MAX_BATCH` events; a failed delivery is retried `retries` times, 0.5 s apart doubling, then
dropped (Xero retries for 24 h, Intuit for a while; the nightly reconcile catches the rest).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

log = logging.getLogger(__name__)

MAX_BATCH = 100

# (tenant, kind, record id) -> a version that moves with every change (time, SyncToken...)
Key = tuple[str, str, str]
Snapshot = dict[Key, Any]


@dataclass(frozen=True)
class Change:
    tenant_id: str
    kind: str  # the provider's name: INVOICE, CONTACT... or Invoice, Customer...
    record_id: str
    operation: str  # CREATE/UPDATE (Xero); Create/Update/Delete/Void (Intuit)
    at: datetime


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookEmitter:
    """Finds what changed since the last look and posts it, signed, to the configured URL."""

    def __init__(self, snapshot: Callable[[], Snapshot],
                 operation: Callable[[Key, Any, Any], str | None],
                 render: Callable[[list[Change]], tuple[bytes, dict[str, str]]],
                 settings: Callable[[], tuple[str | None, float, int]],
                 clock: Callable[[], datetime]) -> None:
        self._snapshot, self._operation, self._render = snapshot, operation, render
        self._settings, self._clock = settings, clock
        self._seen: Snapshot | None = None
        self._lock = threading.Lock()  # one look-and-deliver at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered: list[dict[str, Any]] = []  # what was posted and how it was answered
        self.failed: list[dict[str, Any]] = []

    def arm(self) -> None:
        """From now on: what is in the books now is known; only later changes are sent."""
        with self._lock:
            self._seen = self._snapshot()

    def start(self) -> None:
        """Deliver from a background thread every `batch_seconds` until stop()."""
        if self._seen is None:
            self.arm()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks",
                                             daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            _, every, _ = self._settings()
            if self._stop.wait(max(0.05, every)):
                break
            try:
                self.flush()
            except Exception:  # the thread must outlive one bad look; the log says why
                log.exception("sandbox webhooks: delivery round failed")

    def changes(self) -> list[Change]:
        """What changed since the last look (and remember this look)."""
        now_seen = self._snapshot()
        before = self._seen if self._seen is not None else now_seen
        self._seen = now_seen
        found = []
        for key in sorted(set(before) | set(now_seen)):
            operation = self._operation(key, before.get(key), now_seen.get(key))
            if operation is not None:
                version = now_seen.get(key, before.get(key))
                at = version[0] if isinstance(version, tuple) else self._clock()
                found.append(Change(key[0], key[1], key[2], operation, at))
        return found

    def flush(self) -> int:
        """Look now and deliver every change found, in batches; returns how many were sent."""
        with self._lock:
            url, _, _ = self._settings()
            if not url:
                self._seen = self._snapshot()
                return 0
            found = self.changes()
            for start in range(0, len(found), MAX_BATCH):
                body, headers = self._render(found[start:start + MAX_BATCH])
                self.post(url, body, headers)
            return len(found)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> requests.Response | None:
        _, _, retries = self._settings()
        pause = 0.5
        for attempt in range(retries + 1):
            try:
                answer = requests.post(url, data=body, timeout=10, headers={
                    "Content-Type": "application/json", **headers})
                if answer.status_code < 300:
                    self.delivered.append({"body": body, "status": answer.status_code})
                    return answer
                why = f"answered {answer.status_code}"
            except requests.RequestException as exc:
                why = type(exc).__name__
            log.info("sandbox webhook to %s failed (%s), attempt %d", url, why, attempt + 1)
            if attempt < retries:
                time.sleep(pause)
                pause *= 2
        self.failed.append({"body": body, "why": why})
        return None


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
