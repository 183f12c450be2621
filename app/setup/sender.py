"""Who an organisation's own email comes from: its SMTP server or the server-wide relay.

A sender is saved only after a test message through it reached the mail server, and then whole:
host, port, security, user, the password (encrypted as the tokens are, never shown again, never
logged), From name and address, Reply-To. A refusal (unreachable, wrong password, a server that
will not send) is explained and saves nothing.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from collect import ledger
from collect.mail import SmtpServer, relay, send_email
from collect.providers import token_vault
from connectors.base import ConfigurationError, TransientError
from store.models import MailSender, Organisation, User

log = logging.getLogger(__name__)

SECURITY = ("starttls", "tls")
TRANSPORTS = ("relay", "smtp")
MAX_TEXT = 255


class SenderRefused(ValueError):
    """The sender was not saved; `field` is the form field the message is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SenderChoice:
    transport: str
    from_name: str
    reply_to: str
    server: SmtpServer | None  # None: the relay


def sender_of(session: Session, org: Organisation) -> MailSender | None:
    return session.scalar(select(MailSender).where(MailSender.org_id == org.id))


def _text(form: MultiDict[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if len(value) > MAX_TEXT or not value.isprintable():
        raise SenderRefused(name, _("At most %(count)s characters, on one line.", count=MAX_TEXT))
    return value


def _address(form: MultiDict[str, str], name: str) -> str:
    value = _text(form, name)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise SenderRefused(name, _("Give an email address, such as accounts@example.com."
                                    )) from exc


def read_choice(form: MultiDict[str, str], current: MailSender | None,
                user: User) -> SenderChoice:
    """The submitted sender, checked field by field (SenderRefused names the first problem)."""
    transport = form.get("transport", "relay")
    if transport not in TRANSPORTS:
        raise SenderRefused("transport", _("Choose one of the offered options."))
    from_name = _text(form, "from_name")
    reply_to = _address(form, "reply_to") if _text(form, "reply_to") else user.email
    if transport == "relay":
        return SenderChoice(transport, from_name, reply_to, None)
    host = _text(form, "host").lower()
    if not host or any(c in host for c in " /:@"):
        raise SenderRefused("host", _("Give the mail server's name, such as smtp.example.com."))
    try:
        port = int(_text(form, "port"))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SenderRefused("port", _("Give a port from 1 to 65535 (usually 587, or 465 for "
                                      "TLS)."))
    security = form.get("security", "starttls")
    if security not in SECURITY:
        raise SenderRefused("security", _("Choose one of the offered options."))
    username = _text(form, "username") or None
    password = form.get("password") or ""
    if not password and current is not None and current.password_enc \
            and (current.host, current.username) == (host, username):
        password = token_vault().decrypt(current.password_enc)  # kept, as the page says
    if len(password) > MAX_TEXT:
        raise SenderRefused("password", _("At most %(count)s characters, on one line.",
                                          count=MAX_TEXT))
    server = SmtpServer(host=host, port=port, security=security, username=username,
                        password=password or None, from_email=_address(form, "from_email"),
                        reply_to=reply_to, from_name=from_name)
    return SenderChoice(transport, from_name, reply_to, server)


def _why(exc: Exception, server: SmtpServer | None) -> str:
    """The mail server's refusal in plain words (never the password, never the server's
    own text, which may quote what it was sent)."""
    cause = exc.__cause__
    where = f"{server.host}:{server.port}" if server else _("the relay")
    if isinstance(cause, smtplib.SMTPAuthenticationError):
        return _("The mail server refused the user name or password.")
    if isinstance(cause, ssl.SSLError | smtplib.SMTPNotSupportedError):
        return _("The secure connection to %(where)s failed: check STARTTLS or TLS and the "
                 "port.", where=where)
    if isinstance(cause, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused
                  | smtplib.SMTPDataError):
        return _("The mail server at %(where)s refused to send the test message.", where=where)
    if isinstance(cause, ConnectionError | socket.gaierror | TimeoutError | OSError
                  | smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return _("The mail server at %(where)s could not be reached: check its name and port.",
                 where=where)
    return _("The mail server at %(where)s did not accept the test message.", where=where)


def verify_and_save(session: Session, org: Organisation, user: User,
                    form: MultiDict[str, str], now: datetime) -> MailSender:
    """Send a test to the signed-in person through the chosen sender; only if the server took
    it, save the sender, verified. Commits. Raises SenderRefused, having saved nothing."""
    current = sender_of(session, org)
    choice = read_choice(form, current, user)
    server = choice.server
    if server is None and relay() is None:
        raise SenderRefused("transport", _("This Dunwell has no relay set up: use your own "
                                           "mail server."))
    try:
        send_email(to=user.email, subject=_("Dunwell test: your reminders come from here"),
                   text=_("This test was sent to you only, through the mail server your "
                          "reminders will use. No customer received it."),
                   html=None, sender_name=choice.from_name or org.name,
                   action_key=f"sender-test:{org.id}:{uuid.uuid4().hex}",
                   server=server or relay(choice.reply_to, choice.from_name))
    except (TransientError, ConfigurationError) as exc:
        log.info("org %s: sender test refused (%s)", org.id, exc.__cause__.__class__.__name__)
        raise SenderRefused("sender", _why(exc, server)) from None
    sender = current or MailSender(org_id=org.id)
    sender.transport, sender.from_name, sender.reply_to = (choice.transport, choice.from_name,
                                                           choice.reply_to)
    sender.host = server.host if server else None
    sender.port = server.port if server else None
    sender.security = server.security if server else "starttls"
    sender.username = server.username if server else None
    sender.password_enc = (token_vault().encrypt(server.password)
                           if server and server.password else None)
    sender.from_email = server.from_email if server else None
    sender.verified_at = now
    session.add(sender)
    where = f"{server.host}:{server.port}" if server else "the relay"
    ledger.audit(session, org.id, "sender_verified",
                 f"{user.email} set up the sender ({where}); a test reached the mail server",
                 at=now, data={"by": user.email, "where": where})
    session.commit()
    return sender
