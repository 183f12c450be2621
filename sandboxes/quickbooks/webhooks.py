"""Intuit's webhooks from the QuickBooks sandbox: the legacy `eventNotifications` or a
CloudEvents array, signed with the verifier token (what every sandbox webhook shares:
sandboxes/webhooks.py)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sandboxes.webhooks import Change, Key, Snapshot, WebhookEmitter, sign, utc

INTUIT_VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted",
                "Void": "voided", "Merge": "merged"}


class IntuitWebhooks(WebhookEmitter):
    """Intuit's shapes: the legacy `{eventNotifications: [{realmId, dataChangeEvent}]}` or a
    CloudEvents array (`config.webhook_format`), signed with the verifier token in
    `intuit-signature`; Create, Update, Delete and Void of invoices, customers, payments and
    credit memos."""

    ENTITIES = ("Customer", "Invoice", "Payment", "CreditMemo", "Estimate")

    def __init__(self, box: Any) -> None:
        self.box = box
        super().__init__(self._intuit_snapshot, self._intuit_operation, self._intuit_render,
                         lambda: (box.config.webhook_url, box.config.webhook_batch_seconds,
                                  box.config.webhook_retries),
                         lambda: box.now)

    def _intuit_snapshot(self) -> Snapshot:
        with self.box.lock:
            seen: Snapshot = {}
            for company in self.box.companies_by_id.values():
                for entity in self.ENTITIES:
                    for record_id, record in company.records.get(entity, {}).items():
                        seen[(company.realm_id, entity, record_id)] = (
                            record.get("_updated"), record.get("SyncToken"),
                            bool(record.get("_voided")))
                    for record_id, when in company.deleted.get(entity, {}).items():
                        seen[(company.realm_id, entity, record_id)] = (when, "deleted", False)
            return seen

    @staticmethod
    def _intuit_operation(key: Key, before: Any, after: Any) -> str | None:
        if after is None or before == after:
            return None
        if after[1] == "deleted":
            return "Delete"
        if before is None:
            return "Create"
        return "Void" if after[2] and not before[2] else "Update"

    def _stamp(self, realm_id: str, moment: datetime) -> str:
        return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def _intuit_render(self, changes: list[Change]) -> tuple[bytes, dict[str, str]]:
        payload: Any
        if self.box.config.webhook_format == "cloudevents":
            payload = [{
                "specversion": "1.0", "id": str(uuid.uuid4()),
                "source": "intuit.dunwell-sandbox",
                "type": f"qbo.{c.kind.lower()}.{INTUIT_VERBS[c.operation]}.v1",
                "datacontenttype": "application/json",
                "time": self._stamp(c.tenant_id, c.at),
                "intuitentityid": c.record_id, "intuitaccountid": c.tenant_id, "data": {}}
                for c in changes]
        else:
            by_realm: dict[str, list[dict[str, str]]] = {}
            for c in changes:
                by_realm.setdefault(c.tenant_id, []).append({
                    "name": c.kind, "id": c.record_id, "operation": c.operation,
                    "lastUpdated": self._stamp(c.tenant_id, c.at)})
            payload = {"eventNotifications": [
                {"realmId": realm, "dataChangeEvent": {"entities": entities}}
                for realm, entities in by_realm.items()]}
        body = json.dumps(payload).encode()
        return body, {"intuit-signature": sign(self.box.config.webhook_verifier, body)}
