"""Xero's webhooks from the sandbox: `{events: [...], firstEventSequence, lastEventSequence,
entropy}` signed with the webhook key, and the intent-to-receive check of a new URL (what
every sandbox webhook shares: sandboxes/webhooks.py)."""

from __future__ import annotations

import json
import random
import string
import time
import uuid
from typing import Any

import requests

from sandboxes.webhooks import Change, Key, Snapshot, WebhookEmitter, sign, utc

XERO_KINDS = {"INVOICE": "Invoices", "CONTACT": "Contacts", "CREDITNOTE": "CreditNotes"}


class XeroWebhooks(WebhookEmitter):
    """Xero's shape: `{events: [...], firstEventSequence, lastEventSequence, entropy}`, signed
    with the webhook key in `x-xero-signature`; CREATE or UPDATE of invoices, contacts and
    credit notes (a payment shows as an UPDATE of the invoices it pays)."""

    def __init__(self, box: Any) -> None:
        self.box = box
        self.sequence = 0
        super().__init__(self._xero_snapshot, self._xero_operation, self._xero_render,
                         lambda: (box.config.webhook_url, box.config.webhook_batch_seconds,
                                  box.config.webhook_retries),
                         lambda: box.now)

    def _xero_snapshot(self) -> Snapshot:
        with self.box.lock:
            seen: Snapshot = {}
            for tenant in self.box.tenants_by_id.values():
                for kind, records, id_key in (("CONTACT", tenant.contacts, "ContactID"),
                                              ("INVOICE", tenant.invoices, "InvoiceID"),
                                              ("CREDITNOTE", tenant.credit_notes,
                                               "CreditNoteID")):
                    for record_id, record in records.items():
                        seen[(tenant.tenant_id, kind, record_id)] = (
                            record.get("_updated"), record.get(id_key))
            return seen

    @staticmethod
    def _xero_operation(key: Key, before: Any, after: Any) -> str | None:
        if after is None or before == after:
            return None  # Xero keeps deleted and voided records, with a status: an UPDATE
        return "CREATE" if before is None else "UPDATE"

    def payload(self, changes: list[Change]) -> dict[str, Any]:
        first = self.sequence + 1 if changes else 0
        self.sequence += len(changes)
        events = [{
            "resourceUrl": f"{self.box.config.webhook_api_url}/{XERO_KINDS[c.kind]}/"
                           f"{c.record_id}",
            "resourceId": c.record_id,
            "eventDateUtc": utc(c.at).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "eventType": c.operation, "eventCategory": c.kind,
            "tenantId": c.tenant_id, "tenantType": "ORGANISATION"} for c in changes]
        return {"events": events, "firstEventSequence": first,
                "lastEventSequence": self.sequence if changes else 0,
                "entropy": "".join(random.choices(string.ascii_uppercase, k=20))}

    def _xero_render(self, changes: list[Change]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(self.payload(changes)).encode()
        return body, {"x-xero-signature": sign(self.box.config.webhook_key, body)}

    def intent_to_receive(self, url: str | None = None, rounds: int = 2) -> dict[str, Any]:
        """Xero's check of a new webhook URL: empty batches, some signed with the key and some
        not; the endpoint passes if it answers 200 to each good one and 401 to each bad one,
        with no body and no cookie, within 5 s."""
        url = url or self.box.config.webhook_url
        answers = []
        for index in range(rounds * 2):
            good = index % 2 == 0
            body = json.dumps(self.payload([])).encode()
            key = self.box.config.webhook_key if good else uuid.uuid4().hex
            started = time.monotonic()
            try:
                answer = requests.post(url, data=body, timeout=5, headers={
                    "Content-Type": "application/json", "x-xero-signature": sign(key, body)})
            except requests.RequestException as exc:
                answers.append({"signed": good, "passed": False, "why": type(exc).__name__})
                continue
            took = time.monotonic() - started
            wanted = 200 if good else 401
            passed = (answer.status_code == wanted and not answer.content
                      and "Set-Cookie" not in answer.headers and took < 5)
            answers.append({"signed": good, "status": answer.status_code, "passed": passed,
                            "body": answer.text[:200], "cookies": "Set-Cookie" in answer.headers,
                            "seconds": round(took, 3)})
        return {"passed": all(a["passed"] for a in answers), "answers": answers}
