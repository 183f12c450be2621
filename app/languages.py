"""Interface languages: which one a page is shown in (money and dates are written its way by
app/formatting.py).

The .po files under app/translations are the source; their .mo files are compiled here when
missing or older, so a fresh checkout needs no build step.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel
from flask_babel import lazy_gettext as _l

from app.formatting import RIGHT_TO_LEFT, day, init_formatting, money, reader_language

__all__ = ["LANGUAGES", "RIGHT_TO_LEFT", "current_language", "day", "money",
           "negotiated_language", "status_label"]

TRANSLATIONS = Path(__file__).parent / "translations"
# English first: the default. Names are each language's own.
LANGUAGES = {"en": "English", "de": "Deutsch", "nb": "Norsk bokmål", "pl": "Polski",
             "he": "עברית"}
SESSION_KEY = "language"


def compile_translations(folder: Path = TRANSLATIONS) -> list[Path]:
    """Write each catalogue's .mo beside its .po when it is missing or stale."""
    written = []
    for po_path in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=po_path.parent.parent.name)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as target:
            write_mo(target, catalog)
        tmp.replace(mo_path)  # atomic: several processes may start at once
        written.append(mo_path)
    return written


def negotiated_language() -> str | None:
    """The visitor's choice, else the best match of their browser's languages (None: neither
    names one of ours)."""
    chosen = session.get(SESSION_KEY)
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(list(LANGUAGES))


def select_language() -> str:
    """The language a page is shown in: the one negotiated, else English."""
    return negotiated_language() or "en"


def current_language() -> str:
    return reader_language()


# Statuses stored as words (invoices, actions, syncs, connections) and shown in badges: the
# badge's CSS class keeps the raw value, its text is the reader's language. One table, so a
# status is worded the same on every page; an unknown one is shown as stored.
STATUS_LABELS = {
    "open": _l("open"), "paid": _l("paid"), "voided": _l("voided"), "draft": _l("draft"),
    "planned": _l("planned"), "pending_approval": _l("pending approval"),
    "claimed": _l("claimed"), "done": _l("done"),
    "skipped": _l("skipped"), "failed": _l("failed"), "dead": _l("dead"),
    "cancelled": _l("cancelled"), "queued": _l("queued"), "running": _l("running"),
    "waiting": _l("waiting"), "active": _l("active"), "needs_reconnect": _l("needs reconnect"),
    "disconnected": _l("disconnected"), "revoked": _l("revoked"),
    "not_connected": _l("not connected"),
    # A customer's payment trend (rules/credit.py) and a member's role.
    "worse": _l("worse"), "better": _l("better"), "steady": _l("steady"),
    "unknown": _l("unknown"),
    "owner": _l("owner"), "admin": _l("admin"), "accountant": _l("accountant"),
    "viewer": _l("viewer"),
    # A customer's promise and plan request from the portal (the collector's pages).
    "kept": _l("kept"), "broken": _l("broken"), "replaced": _l("replaced"),
    "pending": _l("pending"), "approved": _l("approved"), "declined": _l("declined"),
}


def status_label(value: str | None) -> str:
    if value is None:
        return ""
    label = STATUS_LABELS.get(value)
    return str(label) if label is not None else value.replace("_", " ")


def init_languages(app: Flask, babel: Babel) -> None:
    compile_translations()
    babel.init_app(app, locale_selector=select_language,
                   default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, current_language=current_language,
                                 RIGHT_TO_LEFT=RIGHT_TO_LEFT, status_label=status_label)
    init_formatting(app)
