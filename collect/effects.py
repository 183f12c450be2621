"""One action being carried out (`Effect`) and what every handler shares to do it at most once:
each part written down before its provider write (`begin`) and recorded as soon as it is
confirmed (`record_part`), Dunwell's own email sent once (`send_own_email`), the outcome finished
in the ledger (`finish`, `finish_sent`).

The handlers (collect/execute.py and the planners' own: statements, credit requests, quote
deposits) import this module; it imports none of them.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import smtplib
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from collect import ledger, own_documents, shared_clock
from collect.mail import send_email, server_for
from connectors.base import Connector, NotFound, ProviderRejected, TransientError
from store.models import Action, Contact, Invoice, Organisation

log = logging.getLogger(__name__)

WRITING = "writing"  # in action.result: the part whose provider write may or may not have happened
WRITING_SINCE = "writing_since"  # when the first attempt at that write began (aware UTC, ISO)
CRASH_POINTS = "DUNWELL_CRASH_POINTS"  # e.g. "claimed=0.1,answered=0.1,committed=0.1"

# Our own email (SMTP) leaves no trace we could look up: once the mail server's answer is lost
# (a dropped connection or a timeout after the message was handed over), nobody can tell
# whether the customer got it. A second copy of a dunning email is the harm Dunwell exists to
# prevent, so it is not sent again: the action is finished with this reason, in the owner's
# activity log and on the invoice's note. Failures that prove nothing was handed over (no
# connection, the server refused us or the message) are retried as usual.
UNCONFIRMED = "unconfirmed"
UNCONFIRMED_REASON = "smtp_answer_lost"
UNCONFIRMED_MESSAGE = ("the mail server's answer to Dunwell's email was lost, so it may or may "
                       "not have reached the customer; it was not sent again. Check with the "
                       "customer before chasing this invoice further.")
UNCONFIRMED_NOTE = "(Delivery unconfirmed: the mail server's answer was lost.)"
NOTHING_SENT = (ConnectionRefusedError, socket.gaierror, smtplib.SMTPConnectError,
                smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError,
                smtplib.SMTPSenderRefused, smtplib.SMTPDataError, smtplib.SMTPNotSupportedError)


def crash_point(name: str) -> None:
    """Die as `kill -9` would, at a named point, with the chance DUNWELL_CRASH_POINTS gives it.

    For chaos tests and benchmarks only (unset in production): `claimed` (the claim is
    committed, nothing sent), `answered` (the provider answered a write, nothing recorded yet),
    `committed` (the outcome is committed, RQ does not know it yet)."""
    spec = os.environ.get(CRASH_POINTS)
    if not spec:
        return
    chances = dict(item.split("=", 1) for item in spec.split(",") if "=" in item)
    if random.random() < float(chances.get(name, 0)):
        log.warning("crash point %s: pid %s dies now", name, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Effect:
    """One action being carried out, with what its handler may touch."""

    session: Session
    action: Action
    filed_under: Invoice | Contact | None  # an invoice's, a customer's; None: a quote's
    org: Organisation
    connector: Connector
    now: datetime
    owner: str = ""  # who claimed it; empty: whoever the ledger says holds it

    @property
    def filed_invoice(self) -> Invoice | None:
        return self.filed_under if isinstance(self.filed_under, Invoice) else None

    @property
    def invoice(self) -> Invoice:
        """The invoice the action is filed under (only handlers of invoice actions ask)."""
        assert isinstance(self.filed_under, Invoice), f"action {self.action.key} has no invoice"
        return self.filed_under

    @property
    def contact(self) -> Contact:
        """The customer the action is filed under (only handlers of a customer's ask)."""
        assert isinstance(self.filed_under, Contact), f"action {self.action.key} has no customer"
        return self.filed_under

    @property
    def key(self) -> str:
        return self.action.key

    def done_part(self, part: str) -> bool:
        return bool((self.action.result or {}).get(part))

    def begin(self, part: str) -> None:
        """Say, before the provider is asked, which write may happen: if no answer is recorded,
        a retry knows the outcome is unknown and reconciles instead of trusting the books'
        look."""
        owner = self.owner or self.action.claimed_by or ""
        # The shared clock: a later lookup (by any worker) compares it with the provider's.
        moment = shared_clock.now()
        result = dict(self.action.result or {})
        # A write tried again keeps the time of its first try: a lookup after a later unknown
        # outcome must still see an effect the first try made.
        if result.get(WRITING) != part or not result.get(WRITING_SINCE):
            result[WRITING_SINCE] = moment.isoformat()
        if not ledger.renew(self.session, self.action, owner, moment,
                            result={**result, WRITING: part}):
            raise ledger.ClaimLost(self.action.key)

    def unknown_since(self, part: str) -> datetime | None:
        """When the write of `part` whose outcome is unknown began (None: no such write).

        Within the provider's idempotency window the same key would replay its answer; past it
        only a lookup at the provider tells whether the effect happened, and this is the moment
        from which to look."""
        result = self.action.result or {}
        if result.get(WRITING) != part:
            return None
        since = result.get(WRITING_SINCE)
        if since:
            return datetime.fromisoformat(str(since))
        return self.action.updated_at or self.now

    def forget_write(self) -> None:
        """The write just tried is known not to have happened: a retry simply makes it."""
        result = {k: v for k, v in (self.action.result or {}).items()
                  if k not in (WRITING, WRITING_SINCE)}
        self.action.result = result
        self.session.commit()

    def record_part(self, part: str, value: object = True) -> None:
        """Remember at once that a part of the effect happened (a retry skips it)."""
        crash_point("answered")
        result = {**(self.action.result or {}), part: value}
        result.pop(WRITING, None)
        result.pop(WRITING_SINCE, None)
        self.action.result = result
        if part == "fee_invoice_id" and value:  # ours: never chased on its own once synced
            own_documents.remember(self.session, self.action.org_id, str(value),
                                   self.action.invoice_id)
        self.session.commit()

    def finish(self, message: str, **result: object) -> str:
        crash_point("answered")
        self.action.result = {k: v for k, v in (self.action.result or {}).items()
                              if k not in (WRITING, WRITING_SINCE)}
        ledger.finish(self.session, self.action, "done", message, self.now, result=result)
        return "done"

    @property
    def unconfirmed(self) -> bool:
        """Our email's delivery is unknown (its answer was lost) and it was not sent again."""
        return (self.action.result or {}).get("emailed") == UNCONFIRMED

    def finish_sent(self, what: str, how: str, *, written: str = "", **result: object) -> str:
        """Done, as "<what>: <how>"; or, when our email's delivery is unconfirmed, done with
        that said to the owner ("<what>: <written><the reason>") and recorded."""
        if self.unconfirmed:
            return self.finish(f"{what}: {written}{UNCONFIRMED_MESSAGE}", **result,
                               unconfirmed=UNCONFIRMED_REASON)
        return self.finish(f"{what}: {how}", **result)


def payment_link(effect: Effect) -> str | None:
    """The invoice's online payment page at the provider, if it has one (a customer's action
    asks for no one invoice: it has none)."""
    if effect.filed_invoice is None:
        return None
    try:
        return effect.connector.online_invoice_url(effect.invoice.provider_id)
    except (NotFound, ProviderRejected):
        return None  # the message goes without a link rather than not at all


def send_own_email(effect: Effect, **message: Any) -> bool:
    """Send through our SMTP server once; False when an earlier attempt's outcome is unknown
    (then it is recorded as unconfirmed and not sent again). Every email of ours goes through
    here: reminders, final demands, statements, milestone reminders and top-up requests."""
    if effect.unknown_since("emailed") is not None:
        log.warning("org %s invoice %s action %s: the outcome of an earlier email is unknown;"
                    " not sent again", effect.action.org_id, effect.action.invoice_id,
                    effect.key)
        effect.record_part("emailed", UNCONFIRMED)
        return False
    effect.begin("emailed")
    try:
        send_email(**message, server=server_for(effect.session, effect.action.org_id))
    except TransientError as exc:
        if isinstance(exc.__cause__, NOTHING_SENT):
            effect.forget_write()  # nothing was handed over: the retry sends it
        raise
    effect.record_part("emailed")
    return True
