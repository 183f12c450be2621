"""Late fees that must go on separate fee invoices, many to a call.

A fee goes on a separate fee invoice when the rule says so, or when the provider refuses to
edit the invoice's lines (Xero, once a payment or credit is allocated). One at a time that is
two calls a fee (re-read, create): 500 late fees would spend 1,000 of a Xero tenant's 5,000
daily calls. Here they are claimed together, their invoices re-read together (150 to a call on
Xero), and the fee invoices created `fee_invoices_per_call` to a call (Xero 50, QuickBooks'
batch 30), each call with one idempotency key derived from its items' keys.

Every effect still happens at most once: before a batch is sent, each of its actions records
that it went out in a batch (`fee_batch_sent`); after an unknown outcome (a timeout, a worker
killed before the commit) the next run finds what was made by the markers the fee invoices
carry, and records it instead of making it again. Whatever is not for a fee invoice after all
(the payment was removed) is handed back to the single-action path untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger, shared_clock
from collect.effects import Effect
from collect.execute import FEE_KINDS, FEE_LABELS, _fee_line
from collect.ledger import ActionStatus
from collect.outcomes import OUTCOME_ERRORS, verdict
from collect.plan import refresh_next_action
from connectors.base import (
    Connector,
    ConnectorError,
    FeeInvoice,
    InvoiceRecord,
    batch_key,
)
from store.models import Action, Invoice, Organisation
from sync.engine import upsert_invoices

log = logging.getLogger(__name__)

SENT = "fee_batch_sent"  # in action.result: the day the action went out in a batch
FEE_INVOICE_DAYS = 14  # as the single-action path: the fee invoice is due in two weeks


def record_of(invoice: Invoice) -> InvoiceRecord:
    """The invoice as last synced, in the shape connectors judge."""
    return InvoiceRecord(
        provider_id=invoice.provider_id, number=invoice.number,
        contact_provider_id=invoice.contact_provider_id, currency=invoice.currency,
        issue_date=invoice.issue_date, due_date=invoice.due_date, total=invoice.total,
        amount_paid=invoice.amount_paid, amount_due=invoice.amount_due,
        status=invoice.status,  # type: ignore[arg-type]
        provider_status=invoice.provider_status, updated_at=invoice.provider_updated_at)


def _wants_fee_invoice(action: Action, record: InvoiceRecord, connector: Connector) -> bool:
    placement = (action.details or {}).get("placement", "line")
    return placement in ("separate_invoice", "statement_invoice") \
        or connector.refuses_fee_line(record)


def fee_invoice_for(effect: Effect) -> tuple[FeeInvoice, str]:
    """The fee invoice of one action and its item key, as the single-action path makes it."""
    action, invoice = effect.action, effect.invoice
    assert action.amount is not None and invoice.contact_provider_id is not None
    line = _fee_line(effect, action.amount, FEE_LABELS[action.kind])
    today = effect.now.date()
    return FeeInvoice(contact_provider_id=invoice.contact_provider_id,
                      currency=invoice.currency, issue_date=today,
                      due_date=today + timedelta(days=FEE_INVOICE_DAYS),
                      reference=f"Late fees on {invoice.number}",
                      lines=(line,)), f"{action.key}:fee_invoice"


Unit = list[tuple[Action, Invoice]]  # the actions that go on one fee invoice


def statement_of(action: Action) -> str | None:
    details = action.details or {}
    return str(details["statement"]) if details.get("placement") == "statement_invoice" \
        and details.get("statement") else None


def fee_invoice_units(ready: list[tuple[Action, Invoice]]) -> list[Unit]:
    """One fee invoice per action, except fees placed on a statement invoice: one per
    contact, currency and statement day, with a line for each (rules/engine.statement_day)."""
    units: list[Unit] = []
    statements: dict[tuple[str, str, str], Unit] = {}
    for action, invoice in ready:
        statement = statement_of(action)
        if statement is None:
            units.append([(action, invoice)])
            continue
        group = (str(invoice.contact_provider_id), invoice.currency, statement)
        if group not in statements:
            statements[group] = []
            units.append(statements[group])
        statements[group].append((action, invoice))
    return units


class FeeBatchRun:
    """One organisation's batch run: what was claimed, made, found again or handed back."""

    def __init__(self, session: Session, org: Organisation, connector: Connector,
                 now: datetime, owner: str) -> None:
        self.session, self.org, self.connector = session, org, connector
        self.now, self.owner = now, owner
        self.counts = {"claimed": 0, "done": 0, "found_again": 0, "skipped": 0,
                       "handed_back": 0, "unknown": 0, "api_calls": 0}
        self.touched: set[int] = set()

    # ---- the ledger --------------------------------------------------------------------

    def _candidates(self) -> list[tuple[Action, Invoice]]:
        rows = self.session.execute(
            select(Action, Invoice).join(Invoice, Action.invoice_id == Invoice.id)
            .where(Action.org_id == self.org.id, Action.kind.in_(FEE_KINDS),
                   Action.status.in_(ledger.OPEN_STATES), Action.scheduled_for <= self.now,
                   Action.amount.is_not(None), Invoice.contact_provider_id.is_not(None))
            .order_by(Action.id)).all()
        return [(action, invoice) for action, invoice in rows
                if action.amount is not None and action.amount > 0 and (
                    (action.result or {}).get(SENT)
                or (action.result or {}).get("fee_invoice_id")
                    or _wants_fee_invoice(action, record_of(invoice), self.connector))]

    def _item(self, unit: Unit) -> tuple[FeeInvoice, str]:
        """The fee invoice of a unit and its item key (a statement's: from its lines' keys)."""
        single = [fee_invoice_for(self._effect(a, i)) for a, i in unit]
        if len(unit) == 1 and statement_of(unit[0][0]) is None:
            return single[0]
        first = single[0][0]
        statement = statement_of(unit[0][0])
        return (FeeInvoice(contact_provider_id=first.contact_provider_id,
                           currency=first.currency, issue_date=first.issue_date,
                           due_date=first.due_date,
                           reference=f"Late fees and interest, statement of {statement}",
                           lines=tuple(line for item, _ in single for line in item.lines)),
                batch_key([key for _, key in single], prefix="statement"))

    def _effect(self, action: Action, invoice: Invoice) -> Effect:
        return Effect(self.session, action, invoice, self.org, self.connector, self.now)

    def _hand_back(self, actions: Sequence[Action], forget_sent: bool = False) -> None:
        """Not done here: planned again, not counted as an attempt, for the single path."""
        for action in actions:
            ledger.hand_back(action, self.now)
            if forget_sent and (action.result or {}).get(SENT):
                action.result = {k: v for k, v in (action.result or {}).items() if k != SENT}
        self.counts["handed_back"] += len(actions)
        self.session.commit()

    def _done(self, action: Action, invoice: Invoice, provider_id: str, found: bool) -> None:
        effect = self._effect(action, invoice)
        marker = fee_invoice_for(effect)[0].lines[0].marker
        effect.record_part("fee_invoice_id", provider_id)
        how = "found again after a lost answer" if found else "created in a batch"
        effect.finish(f"{action.reason}: on a separate fee invoice ({how})",
                      placed="fee_invoice", marker=marker, fee_invoice_id=provider_id)
        self.counts["found_again" if found else "done"] += 1
        self.touched.add(invoice.id)

    def _skip(self, action: Action, invoice: Invoice, message: str, reason: str,
              error: str | None = None) -> None:
        ledger.finish(self.session, action, "skipped", message, self.now,
                      result={"reason": reason}, error=error)
        self.counts["skipped"] += 1
        self.touched.add(invoice.id)

    # ---- the run -----------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        calls = self.connector.calls
        try:
            self._run()
        finally:
            self.counts["api_calls"] = self.connector.calls - calls
            if self.touched:
                refresh_next_action(self.session, self.org, self.now, self.touched)
            self.session.commit()
        return self.counts

    def _run(self) -> None:
        claimed = [(action, invoice) for action, invoice in self._candidates()
                   if ledger.claim(self.session, action, self.owner, shared_clock.now())]
        self.counts["claimed"] = len(claimed)
        if not claimed:
            return
        try:
            # Every write of the batch is fenced by its claims (collect/ledger.py): a batch
            # that finds one of them taken over stops, writing nothing more.
            with ledger.fenced(self.session, [action for action, _ in claimed], self.owner):
                self._carry_out(claimed)
        except ledger.ClaimLost as exc:
            self.session.rollback()
            log.warning("org %s: fee batch stopped, a claim passed to another worker (%s)",
                        self.org.id, exc)

    def _carry_out(self, claimed: list[tuple[Action, Invoice]]) -> None:
        try:
            fresh = {r.provider_id: r for r in self.connector.invoices_by_id(
                [invoice.provider_id for _, invoice in claimed])}
        except ConnectorError as exc:
            log.info("org %s: fee invoices wait, the invoices could not be re-read (%s)",
                     self.org.id, exc)
            self._hand_back([action for action, _ in claimed])
            return
        upsert_invoices(self.session, self.org.id, list(fresh.values()))
        self.session.commit()
        ready = self._recheck(claimed, fresh)
        ready = self._find_again(ready)
        units = fee_invoice_units(ready)
        per_call = max(1, self.connector.fee_invoices_per_call)
        for start in range(0, len(units), per_call):
            if not self._send(units[start:start + per_call]):
                self._hand_back([action for unit in units[start + per_call:]
                                 for action, _ in unit])
                return

    def _recheck(self, claimed: list[tuple[Action, Invoice]],
                 fresh: dict[str, InvoiceRecord]) -> list[tuple[Action, Invoice]]:
        """As the single path does right before writing: still open, still the same amount."""
        ready, back = [], []
        for action, invoice in claimed:
            record = fresh.get(invoice.provider_id)
            result = action.result or {}
            if result.get("fee_invoice_id"):
                self._done(action, invoice, str(result["fee_invoice_id"]), found=True)
            elif record is None:
                self._skip(action, invoice, "Invoice no longer exists", "gone")
            elif record.status != "open":
                self._skip(action, invoice,
                           f"Invoice {invoice.number} is {record.status} now; nothing done",
                           record.status)
            elif ledger.amount_changed(action, record.amount_due) and not result.get(SENT):
                self._skip(action, invoice,
                           f"Invoice {invoice.number} changed since planning "
                           f"({action.planned_amount_due} -> {record.amount_due}); "
                           "planned again", ledger.REPLAN_REASON)
            elif result.get(SENT) or _wants_fee_invoice(action, record, self.connector):
                ready.append((action, invoice))
            else:
                back.append(action)  # a line will do after all
        self.session.commit()
        if back:
            self._hand_back(back)
        return ready

    def _find_again(self, ready: list[tuple[Action, Invoice]]
                    ) -> list[tuple[Action, Invoice]]:
        """Actions sent in an earlier batch whose answer never arrived: made, or not?"""
        sent = [(a, i) for a, i in ready if (a.result or {}).get(SENT)]
        if not sent:
            return ready
        since = min(date.fromisoformat(str(a.result[SENT])) for a, _ in sent if a.result)
        markers = {fee_invoice_for(self._effect(a, i))[0].lines[0].marker: (a, i)
                   for a, i in sent}
        found = self.connector.find_fee_invoices(
            list(markers), [str(i.contact_provider_id) for _, i in sent], since)
        for marker, provider_id in found.items():
            action, invoice = markers[marker]
            self._done(action, invoice, provider_id, found=True)
        done = {id(markers[m][0]) for m in found}
        return [(a, i) for a, i in ready if id(a) not in done]

    def _lost(self, chunk: list[tuple[Action, Invoice]], exc: Exception) -> bool:
        """The batch's answer was lost: what the books hold is recorded; what they do not is
        handed back (it was never made). If even that cannot be seen, the actions wait as
        failed, marked as sent, for the next run to look again."""
        try:
            left = self._find_again(chunk)
        except ConnectorError as again:
            for action, _ in chunk:
                ledger.finish(self.session, action, "failed",
                              f"Will retry: the fee invoice batch's answer was lost ({exc})",
                              self.now, error=f"{exc}; then {again}")
            self.counts["unknown"] += len(chunk)
            self.session.commit()
            return False
        self._hand_back([action for action, _ in left], forget_sent=True)
        return False

    def _send(self, units: list[Unit]) -> bool:
        """One create call; False when the rest should wait (budget, provider trouble)."""
        items = [self._item(unit) for unit in units]
        chunk = [pair for unit in units for pair in unit]
        for action, _ in chunk:
            action.result = {**(action.result or {}), SENT: self.now.date().isoformat()}
        self.session.commit()  # from here on a lost answer is looked for before any repeat
        try:
            outcomes = self.connector.create_fee_invoices(items)
        except OUTCOME_ERRORS as exc:  # what it means: collect/outcomes.py
            found = verdict(exc)
            if found.status is ActionStatus.SKIPPED:  # the request as a whole was refused
                for action, invoice in chunk:
                    self._skip(action, invoice, found.message, str(found.reason), found.error)
                self.session.commit()
                return True
            if found.status is ActionStatus.FAILED:  # unknown: made or not? Look at once.
                return self._lost(chunk, exc)
            # Refused before it was carried out (the budget), or the owner must act: the
            # actions wait for the single path, which records that outcome for each.
            if found.status is ActionStatus.PLANNED:
                log.info("org %s: fee invoices wait for the budget (%s)", self.org.id, exc)
            else:
                log.warning("org %s: fee invoices not made: %s", self.org.id, exc)
            self._hand_back([action for action, _ in chunk], forget_sent=True)
            return False
        for unit, outcome in zip(units, outcomes, strict=True):
            for action, invoice in unit:
                if outcome.provider_id is not None:
                    self._done(action, invoice, outcome.provider_id, found=False)
                else:
                    self._skip(action, invoice, f"Provider refused: {outcome.refused}",
                               "rejected", outcome.refused)
        self.session.commit()
        return True


def create_fee_invoices(session: Session, org: Organisation, connector: Connector,
                        now: datetime, owner: str) -> dict[str, int]:
    """Every due fee of the organisation that must go on a separate fee invoice, batched."""
    return FeeBatchRun(session, org, connector, now, owner).run()
