"""Dunwell's own email (the `dunwell_email` channel and final demands), over SMTP.

SMTP has no idempotency key: the Message-ID is derived from the action key, so a message sent
twice after a crash between the server's answer and our commit carries the same Message-ID and
mail systems can drop the copy. The ledger records the send right after the server accepts it.
"""

from __future__ import annotations

import hashlib
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.vault import token_vault
from connectors.base import ConfigurationError, TransientError
from store.models import MailSender


def message_id(action_key: str, part: str = "email") -> str:
    digest = hashlib.sha256(f"{action_key}:{part}".encode()).hexdigest()[:32]
    return f"<{digest}@dunwell.invalid>"


@dataclass(frozen=True)
class SmtpServer:
    """An organisation's own mail server (app/setup/sender.py); the password never shows in a
    repr, a log line or a traceback's locals printed by repr."""

    host: str
    port: int
    security: str  # starttls | tls (implicit, "SMTPS")
    username: str | None
    password: str | None = field(repr=False)
    from_email: str
    reply_to: str | None = None
    from_name: str = ""  # the organisation's choice; else the caller's sender_name


def relay(reply_to: str | None = None, from_name: str = "") -> SmtpServer | None:
    """The server-wide relay from the configuration (None: not set up)."""
    config = current_app.config
    if not config.get("SMTP_HOST"):
        return None
    return SmtpServer(host=config["SMTP_HOST"], port=int(config.get("SMTP_PORT", 25)),
                      security="starttls" if config.get("SMTP_STARTTLS") else "none",
                      username=config.get("SMTP_USERNAME") or None,
                      password=config.get("SMTP_PASSWORD") or None,
                      from_email=config["MAIL_FROM"], reply_to=reply_to, from_name=from_name)


def send_email(*, to: str, subject: str, text: str, html: str | None, sender_name: str,
               action_key: str, attachments: tuple[tuple[str, str, bytes], ...] = (),
               server: SmtpServer | None = None) -> str:
    """Send one message, through `server` (an organisation's own) or the relay; returns its
    Message-ID. Raises ConfigurationError when no server is set up (the owner must act) and
    TransientError when the server is unreachable, refuses us or is busy (the cause says
    which)."""
    server = server or relay()
    if server is None:
        raise ConfigurationError("Dunwell email is not configured (SMTP_HOST is empty)")
    message = EmailMessage()
    message["From"] = formataddr((server.from_name or sender_name, server.from_email))
    if server.reply_to:
        message["Reply-To"] = server.reply_to
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id(action_key)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    connect = smtplib.SMTP_SSL if server.security == "tls" else smtplib.SMTP
    try:
        with connect(server.host, server.port, timeout=30) as smtp:
            if server.security == "starttls":
                smtp.starttls()
            if server.username:
                smtp.login(server.username, server.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ConfigurationError(f"the mail server refused the address {to}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientError(f"mail server: {exc.__class__.__name__}") from exc
    return str(message["Message-ID"])


def server_for(session: Session, org_id: int) -> SmtpServer | None:
    """The organisation's sender once a test send verified it: its own mail server, or the
    relay with its From name and Reply-To; None: the relay as configured."""
    sender = session.scalar(select(MailSender).where(MailSender.org_id == org_id))
    if sender is None or sender.verified_at is None:
        return None
    if sender.transport != "smtp" or not sender.host or not sender.port \
            or not sender.from_email:
        return relay(sender.reply_to, sender.from_name)
    return SmtpServer(host=sender.host, port=sender.port, security=sender.security,
                      username=sender.username,
                      password=token_vault().decrypt(sender.password_enc)
                      if sender.password_enc else None,
                      from_email=sender.from_email, reply_to=sender.reply_to,
                      from_name=sender.from_name)
