"""Dunwell's own email (the `dunwell_email` channel and final demands), over SMTP.

SMTP has no idempotency key: the Message-ID is derived from the action key, so a message sent
twice after a crash between the server's answer and our commit carries the same Message-ID and
mail systems can drop the copy. The ledger records the send right after the server accepts it.
"""

from __future__ import annotations

import hashlib
import smtplib
from email.message import EmailMessage
from email.utils import formataddr

from flask import current_app

from connectors.base import ConfigurationError, TransientError


def message_id(action_key: str, part: str = "email") -> str:
    digest = hashlib.sha256(f"{action_key}:{part}".encode()).hexdigest()[:32]
    return f"<{digest}@dunwell.invalid>"


def send_email(*, to: str, subject: str, text: str, html: str | None, sender_name: str,
               action_key: str, attachments: tuple[tuple[str, str, bytes], ...] = ()) -> str:
    """Send one message; returns its Message-ID. Raises ConfigurationError when SMTP is not
    set up (the owner must act) and TransientError when the server is unreachable or busy."""
    config = current_app.config
    host = config.get("SMTP_HOST")
    if not host:
        raise ConfigurationError("Dunwell email is not configured (SMTP_HOST is empty)")
    message = EmailMessage()
    message["From"] = formataddr((sender_name, config["MAIL_FROM"]))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id(action_key)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    try:
        with smtplib.SMTP(host, int(config.get("SMTP_PORT", 25)), timeout=30) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ConfigurationError(f"the mail server refused the address {to}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientError(f"mail server: {exc.__class__.__name__}") from exc
    return str(message["Message-ID"])
