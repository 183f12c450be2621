"""The words a customer reads: reminder texts in their language, rendered safely.

Templates are Jinja in a sandbox (an owner's template cannot reach Python objects or files) with
StrictUndefined, so a misspelt placeholder fails when the template is saved, never at send time.
Money and dates are formatted by Babel for the customer's locale. Shipped texts live in
`rules/templates/<locale>.txt`, one section per tone (`== friendly`, `== firm`, `== final`),
each starting with a `Subject:` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import cache
from html import escape
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from rules.template_safety import TemplateSandbox

LOCALES = {"en": "en_GB", "de": "de_DE", "nb": "nb_NO", "pl": "pl_PL", "he": "he_IL"}
RIGHT_TO_LEFT = {"he"}
TONES = ("friendly", "firm", "final")
TEMPLATE_DIR = Path(__file__).with_name("templates")
MAX_TEMPLATE_CHARS = 20_000
_LINK = re.compile(r"(https?://[^\s<]+)")


class MessageTemplateError(ValueError):
    """A template that cannot be used; the message says where and why, for the owner."""


@dataclass(frozen=True)
class MessageContext:
    """Everything a template may mention (the placeholders an owner can use)."""

    contact_name: str
    invoice_number: str
    amount_due: Decimal
    currency: str
    due_date: date
    days_overdue: int
    business_name: str
    fees: Decimal = Decimal(0)
    payment_link: str | None = None
    signature: str = ""
    locale: str = "en"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str
    locale: str
    direction: str  # "ltr" | "rtl"


def language_of(locale: str | None) -> str:
    """A contact's language as one we speak: 'de-AT' -> 'de', 'no'/'nn' -> 'nb', else 'en'."""
    code = (locale or "en").replace("_", "-").split("-")[0].lower()
    code = {"no": "nb", "nn": "nb", "iw": "he"}.get(code, code)
    return code if code in LOCALES else "en"


def _environment(language: str, currency: str) -> ImmutableSandboxedEnvironment:
    env = TemplateSandbox(undefined=StrictUndefined, autoescape=False,  # with a work budget
                          keep_trailing_newline=True)
    babel_locale = LOCALES[language]
    env.filters["money"] = lambda amount: format_currency(
        Decimal(amount), currency, locale=babel_locale)
    env.filters["date"] = lambda day: format_date(day, format="long", locale=babel_locale)
    return env


def _split(source: str) -> tuple[str, str]:
    first, _, body = source.lstrip("\n").partition("\n")
    if not first.startswith("Subject:"):
        raise MessageTemplateError("a template starts with a 'Subject:' line")
    return first.removeprefix("Subject:").strip(), body.lstrip("\n")


def render(source: str, context: MessageContext) -> Message:
    """Render an owner's (or a shipped) template for one invoice."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise MessageTemplateError(f"a template may hold at most {MAX_TEMPLATE_CHARS} "
                                   "characters")
    language = language_of(context.locale)
    subject_source, body_source = _split(source)
    env = _environment(language, context.currency)
    values = {name: getattr(context, name) for name in context.__dataclass_fields__}
    try:
        subject = " ".join(env.from_string(subject_source).render(values).split())
        text = env.from_string(body_source).render(values)
    except TemplateError as exc:
        raise MessageTemplateError(f"the template cannot be rendered: {exc}") from exc
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    direction = "rtl" if language in RIGHT_TO_LEFT else "ltr"
    return Message(subject=subject, text=text, html=_html(text, language, direction),
                   locale=language, direction=direction)


def _html(text: str, language: str, direction: str, header: str = "") -> str:
    """Paragraphs of escaped text, links made clickable; nothing of the template is markup.
    `header`: our own markup above them (the business's logo)."""
    paragraphs = [header] if header else []
    for block in text.strip().split("\n\n"):
        lines = [_LINK.sub(r'<a href="\1">\1</a>', escape(line)) for line in block.split("\n")]
        paragraphs.append("<p>" + "<br>".join(lines) + "</p>")
    return (f'<!doctype html><html lang="{language}" dir="{direction}"><body '
            f'style="font-family:sans-serif;direction:{direction}">'
            + "".join(paragraphs) + "</body></html>")


@dataclass(frozen=True)
class Logo:
    """The business's logo as a message of ours shows it: the checked PNG or JPEG itself (a
    PDF carries the image) and, where the customer has a portal link, the address on our own
    domain that serves it (an email's HTML shows it from there)."""

    content: bytes
    url: str | None = None


def logo_header(logo: Logo | None, business_name: str) -> Markup:
    """Our own markup for the head of an email's HTML (and the letter's): the logo, 48 pixels
    high, its alt text the business's name, both escaped; nothing without a logo or an
    address to show it from."""
    if logo is None or not logo.url:
        return Markup("")
    return Markup('<p><img src="{}" alt="{}" height="48"></p>').format(logo.url, business_name)


def with_logo(message: Message, logo: Logo | None, business_name: str) -> Message:
    """The HTML with the business's logo above the text; the plain text stays as it is.
    Applied last, as it builds the HTML from the text."""
    header = logo_header(logo, business_name)
    if not header:
        return message
    return replace(message, html=_html(message.text, message.locale, message.direction,
                                       header))


# The line every message of ours ends with: the customer's portal (app/portal/).
PORTAL_LINE = {
    "en": "See your invoices, promise a payment date, ask for more time or raise a problem:",
    "de": "Ihre Rechnungen ansehen, einen Zahlungstermin zusagen, um mehr Zeit bitten oder"
          " ein Problem melden:",
    "nb": "Se fakturaene dine, lov en betalingsdato, be om mer tid eller si fra om et problem:",
    "pl": "Zobacz swoje faktury, podaj termin płatności, poproś o więcej czasu lub zgłoś"
          " problem:",
    "he": "לצפייה בחשבוניות, להתחייבות למועד תשלום, לבקשת ארכה או לדיווח על בעיה:",
}


def with_portal_link(message: Message, link: str | None) -> Message:
    """The message with the customer's portal link as its last paragraph (none: as it was).
    Added after the owner's wording, so no template can leave it out or garble it."""
    if not link:
        return message
    text = message.text.rstrip("\n") + f"\n\n{PORTAL_LINE[message.locale]} {link}\n"
    return replace(message, text=text, html=_html(text, message.locale, message.direction))


def with_personal_line(message: Message, line: str) -> Message:
    """The message with a collector's own words as a paragraph of their own after the text
    (escaped like the rest: nothing a person types becomes markup)."""
    if not line.strip():
        return message
    text = message.text.rstrip("\n") + f"\n\n{line.strip()}\n"
    return replace(message, text=text, html=_html(text, message.locale, message.direction))


@cache
def shipped_template(language: str, tone: str) -> str:
    """Our default text for a language and tone."""
    if tone not in TONES:
        raise MessageTemplateError(f"tone must be one of {', '.join(TONES)}, not {tone!r}")
    sections: dict[str, str] = {}
    current = None
    for line in (TEMPLATE_DIR / f"{language_of(language)}.txt").read_text(
            encoding="utf-8").splitlines(keepends=True):
        if line.startswith("== "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line
    return sections[tone]


SAMPLE = MessageContext(contact_name="Ada Lovelace Ltd", invoice_number="INV-0042",
                        amount_due=Decimal("1234.50"), currency="EUR",
                        due_date=date(2026, 1, 31), days_overdue=12,
                        business_name="Harbour Coffee Roasters", fees=Decimal("40.00"),
                        payment_link="https://example.com/pay/42", signature="Jo, Accounts")


def validate_template(source: str) -> Message:
    """Called when an owner saves a template: renders it against a sample invoice in every
    language, with and without the optional parts, so it cannot fail later at send time."""
    rendered = render(source, SAMPLE)
    for language in LOCALES:
        render(source, replace(SAMPLE, locale=language, payment_link=None, fees=Decimal(0),
                               signature=""))
    return rendered


def split_template(source: str) -> tuple[str, str]:
    """A template's subject line and body, as the settings page edits them."""
    return _split(source)


def join_template(subject: str, body: str) -> str:
    """The one-source form `render` reads, from a subject and a body kept apart."""
    if "\n" in subject or "\r" in subject:
        raise MessageTemplateError("the subject is one line")
    return f"Subject: {subject.strip()}\n\n{body}"
