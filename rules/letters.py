"""The final demand letter, as HTML, plain text and PDF, in the customer's language.

An owner reads it before it goes out, and a court or an agency may read it later, so the wording
is fixed per language (`rules/templates/letters/<language>.html.j2`), factual, and says no more
than the law lets a creditor say: what is owed, on what basis, the date to pay by, what may
follow, and how to dispute it or propose a payment plan. Each language file only fills in wording
blocks; `layout.html.j2` turns them into HTML, and the same blocks make the text and the PDF, so
the three never say different things. Rendering reuses the sandboxed Jinja environment and the
Babel money and date filters of `rules.messages`.

The PDF is drawn with fpdf2 in DejaVu Sans (Unicode: Polish, Norwegian and Hebrew letters) with
HarfBuzz text shaping (uharfbuzz), which also runs the Unicode bidirectional algorithm, so Hebrew
lines come out right to left with numbers and invoice references left to right inside them. It is
byte-for-byte the same for the same facts: its dates come from the letter date, never the clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import Align
from fpdf.fonts import FontFace
from fpdf.image_parsing import preload_image
from jinja2 import FileSystemLoader, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rules.messages import (
    PORTAL_LINE,
    RIGHT_TO_LEFT,
    TEMPLATE_DIR,
    Logo,
    _environment,
    language_of,
    logo_header,
)
from rules.statutory import round_money

LETTER_DIR = TEMPLATE_DIR / "letters"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FONT_PACKAGE = "fonts-dejavu-core"
PRODUCER = "Dunwell"
# Inkassoloven § 9: an inkassovarsel gives at least 14 days from when it is sent.
MIN_DAYS_TO_PAY = 1
MIN_DAYS_TO_PAY_NORWAY = 14
MAX_DAYS_TO_PAY = 90
# The logo at the head of the PDF: as high as our emails show it (48 px at 96 to the inch).
LOGO_HEIGHT_MM = 48 / 96 * 25.4
_CURRENCY = re.compile(r"[A-Z]{3}")
_LINK = re.compile(r"https?://[^\s<>\"']+")
_ONE_LINE = re.compile(r"[ \t\r\n]+")
# Wording blocks every language file fills in (the layout and the text and PDF use them all).
BLOCKS = ("subject", "salutation", "opening", "col_invoice", "col_issued", "col_due",
          "col_total", "col_outstanding", "charges_caption", "col_description", "col_amount",
          "total_label", "basis", "demand", "payment_link_label", "consequence", "dispute",
          "closing")


# A charge added for late payment, by the ledger's kind, in each letter language: the letter
# states it in the customer's words (the ledger's own reason is the owner's English).
CHARGE_WORDS: dict[str, dict[str, str]] = {
    "en": {"fee": "Late payment fee", "interest": "Interest on late payment",
           "compensation": "Compensation for recovery costs"},
    "de": {"fee": "Mahngebühr", "interest": "Verzugszinsen",
           "compensation": "Verzugspauschale"},
    "nb": {"fee": "Purregebyr", "interest": "Forsinkelsesrente",
           "compensation": "Standardkompensasjon"},
    "pl": {"fee": "Opłata za opóźnienie w płatności", "interest": "Odsetki za opóźnienie",
           "compensation": "Rekompensata za koszty odzyskiwania należności"},
    "he": {"fee": "עמלת איחור בתשלום", "interest": "ריבית פיגורים",
           "compensation": "פיצוי בגין עלויות גבייה"},
}


def charge_description(kind: str, language: str, currency: str,
                       period: tuple[date, date] | None = None) -> str:
    """A fee, interest or compensation as the letter lists it in `language`, with the days
    it covers where it has a period: its first and last day, in the language's long dates."""
    language = language_of(language)
    words = CHARGE_WORDS[language]
    if kind not in words:
        raise LetterError(f"a letter lists fees, interest and compensation, not {kind!r}")
    if period is None:
        return words[kind]
    day = _environment(language, currency).filters["date"]
    return f"{words[kind]}, {day(period[0])} \u2013 {day(period[1])}"


class LetterError(ValueError):
    """Facts a letter cannot be written from; the message says which and why."""


class FontMissing(LetterError):
    """The TTF font the PDF is drawn in is not installed."""


def _is_day(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _check_money(value: object, currency: str, what: str, *, positive: bool = False) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LetterError(f"{what} must be a finite Decimal, not {value!r}")
    if value < 0 or (positive and value == 0):
        raise LetterError(f"{what} must be {'more than' if positive else 'at least'} 0, "
                          f"not {value}")
    if round_money(value, currency) != value:
        raise LetterError(f"{what} ({value}) has more decimal places than {currency} allows")


@dataclass(frozen=True)
class LetterInvoice:
    """One unpaid invoice as the letter lists it."""

    number: str
    issue_date: date
    due_date: date
    total: Decimal
    amount_due: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not self.number.strip():
            raise LetterError("an invoice needs a number")
        if not _CURRENCY.fullmatch(self.currency):
            raise LetterError(f"invoice {self.number}: currency must be an ISO 4217 code such "
                              f"as EUR, not {self.currency!r}")
        if not (_is_day(self.issue_date) and _is_day(self.due_date)):
            raise LetterError(f"invoice {self.number}: issue and due dates must be dates")
        _check_money(self.total, self.currency, f"invoice {self.number}: total")
        _check_money(self.amount_due, self.currency, f"invoice {self.number}: amount due",
                     positive=True)


@dataclass(frozen=True)
class LetterFacts:
    """Everything the letter states. Amounts are in the invoices' one currency, already rounded
    to its minor unit; `charges` are the fees and interest charged so far as (description,
    amount) pairs, and `total_due` is what the customer must pay, as the books hold it."""

    business_name: str
    business_address: tuple[str, ...]
    signature: str
    customer_name: str
    customer_address: tuple[str, ...]
    language: str
    invoices: tuple[LetterInvoice, ...]
    charges: tuple[tuple[str, Decimal], ...]
    total_due: Decimal
    letter_date: date
    days_to_pay: int
    jurisdiction: str
    statutory_basis: str | None = None
    payment_link: str | None = None
    # The customer's own portal link (signed for them, as every message of ours carries it):
    # where they can pay, promise a date, dispute or ask for a plan before the date passes.
    portal_link: str | None = None
    # The business's logo (rules.messages.Logo), at the head of the PDF and of the HTML.
    logo: Logo | None = None

    def __post_init__(self) -> None:
        if not self.invoices:
            raise LetterError("a demand letter is about at least one invoice")
        currencies = sorted({invoice.currency for invoice in self.invoices})
        if len(currencies) > 1:
            raise LetterError("one letter covers invoices in one currency, not "
                              + ", ".join(currencies))
        currency = currencies[0]
        if not self.business_name.strip() or not self.customer_name.strip():
            raise LetterError("the letter needs the business's and the customer's names")
        for description, amount in self.charges:
            if not description.strip():
                raise LetterError("every charge needs a description")
            _check_money(amount, currency, f"charge {description!r}")
        _check_money(self.total_due, currency, "the total due", positive=True)
        if not _is_day(self.letter_date):
            raise LetterError("the letter date must be a date")
        minimum = MIN_DAYS_TO_PAY
        if self.jurisdiction.upper() == "NO" or language_of(self.language) == "nb":
            minimum = MIN_DAYS_TO_PAY_NORWAY
        if (isinstance(self.days_to_pay, bool) or not isinstance(self.days_to_pay, int)
                or not minimum <= self.days_to_pay <= MAX_DAYS_TO_PAY):
            raise LetterError(f"days to pay must be a whole number from {minimum} to "
                              f"{MAX_DAYS_TO_PAY}, not {self.days_to_pay!r}"
                              + (" (inkassoloven § 9: at least 14 days)" if minimum > 1 else ""))
        for what, link in (("payment link", self.payment_link),
                           ("portal link", self.portal_link)):
            if link is not None and not _LINK.fullmatch(link):
                raise LetterError(f"the {what} must be an http(s) address, not {link!r}")
        if self.statutory_basis is not None and not self.statutory_basis.strip():
            raise LetterError("the statutory basis is None or a text, not blank")

    @property
    def currency(self) -> str:
        return self.invoices[0].currency

    @property
    def pay_by(self) -> date:
        return self.letter_date + timedelta(days=self.days_to_pay)


@dataclass(frozen=True)
class DemandLetter:
    """The email subject, the HTML and text bodies, and the PDF to attach or post."""

    subject: str
    html: str
    pdf: bytes
    text: str


def demand_letter(facts: LetterFacts, *, font_dir: Path = FONT_DIR) -> DemandLetter:
    """Write the final demand letter in the customer's language (English if we lack it)."""
    language = language_of(facts.language)
    base = _environment(language, facts.currency)
    values = _values(facts, language)
    html = _render(base.overlay(loader=FileSystemLoader(LETTER_DIR), autoescape=True),
                   language, values)
    text_env = base.overlay(loader=FileSystemLoader(LETTER_DIR), autoescape=False)
    words = _wording(text_env, language, values)
    money: Callable[[Decimal], str] = text_env.filters["money"]
    day: Callable[[date], str] = text_env.filters["date"]
    return DemandLetter(subject=words["subject"], html=html,
                        pdf=_pdf(facts, language, words, money, day, font_dir),
                        text=_text(facts, words, money, day))


def _values(facts: LetterFacts, language: str) -> dict[str, Any]:
    """What the templates see: plain values, no Python objects with methods."""
    return {
        "language": language,
        "direction": "rtl" if language in RIGHT_TO_LEFT else "ltr",
        "business_name": facts.business_name,
        "business_address": list(facts.business_address),
        "signature": facts.signature,
        "customer_name": facts.customer_name,
        "customer_address": list(facts.customer_address),
        "invoices": [{"number": invoice.number, "issue_date": invoice.issue_date,
                      "due_date": invoice.due_date, "total": invoice.total,
                      "amount_due": invoice.amount_due} for invoice in facts.invoices],
        "charges": [{"description": description, "amount": amount}
                    for description, amount in facts.charges],
        "total_due": facts.total_due,
        "letter_date": facts.letter_date,
        "pay_by": facts.pay_by,
        "days_to_pay": facts.days_to_pay,
        "payment_link": facts.payment_link,
        "portal_link": facts.portal_link,
        "portal_line": PORTAL_LINE[language],
        # Our own markup, the same our reminder and statement emails carry (empty: no logo).
        "logo_header": logo_header(facts.logo, facts.business_name),
        "jurisdiction": facts.jurisdiction.upper(),
        "statutory_basis": facts.statutory_basis or "",
    }


def _render(env: ImmutableSandboxedEnvironment, language: str, values: Mapping[str, Any]) -> str:
    try:
        return env.get_template(f"{language}.html.j2").render(values)
    except TemplateError as exc:
        raise LetterError(f"the {language} letter cannot be rendered: {exc}") from exc


def _wording(env: ImmutableSandboxedEnvironment, language: str,
             values: Mapping[str, Any]) -> dict[str, str]:
    """Each wording block as one line of plain (unescaped) text; no-break spaces stay."""
    try:
        template = env.get_template(f"{language}.html.j2")
        missing = [name for name in BLOCKS if name not in template.blocks]
        if missing:
            raise LetterError(f"the {language} letter lacks the blocks {', '.join(missing)}")
        context = template.new_context(dict(values))
        return {name: _ONE_LINE.sub(" ", "".join(template.blocks[name](context))).strip()
                for name in BLOCKS}
    except TemplateError as exc:
        raise LetterError(f"the {language} letter cannot be rendered: {exc}") from exc


def _text(facts: LetterFacts, words: Mapping[str, str], money: Callable[[Decimal], str],
          day: Callable[[date], str]) -> str:
    lines = [facts.business_name, *facts.business_address, "",
             facts.customer_name, *facts.customer_address, "",
             day(facts.letter_date), "", words["subject"], ""]
    if words["salutation"]:
        lines += [words["salutation"], ""]
    lines += [words["opening"], "",
              " | ".join(words[name] for name in ("col_invoice", "col_issued", "col_due",
                                                  "col_total", "col_outstanding"))]
    lines += [" | ".join((invoice.number, day(invoice.issue_date), day(invoice.due_date),
                          money(invoice.total), money(invoice.amount_due)))
              for invoice in facts.invoices]
    if facts.charges:
        lines += ["", words["charges_caption"]]
        lines += [f"- {description}: {money(amount)}" for description, amount in facts.charges]
    lines += ["", f"{words['total_label']}: {money(facts.total_due)}", ""]
    if facts.statutory_basis:
        lines += [words["basis"], ""]
    lines.append(words["demand"])
    if facts.payment_link:
        lines.append(f"{words['payment_link_label']} {facts.payment_link}")
    lines += ["", words["consequence"], "", words["dispute"], ""]
    if facts.portal_link:
        lines += [PORTAL_LINE[language_of(facts.language)], facts.portal_link, ""]
    lines += [words["closing"], ""]
    if facts.signature:
        lines.append(facts.signature)
    lines.append(facts.business_name)
    return "\n".join(lines) + "\n"


def _fonts(font_dir: Path) -> dict[str, Path]:
    paths = {style: font_dir / name for style, name in FONT_FILES.items()}
    for path in paths.values():
        if not path.is_file():
            raise FontMissing(f"the PDF letter needs the font {path}: install the Debian "
                              f"package {FONT_PACKAGE} (apt-get install {FONT_PACKAGE})")
    return paths


def _pdf(facts: LetterFacts, language: str, words: Mapping[str, str],
         money: Callable[[Decimal], str], day: Callable[[date], str], font_dir: Path) -> bytes:
    rtl = language in RIGHT_TO_LEFT
    start, end = ("R", "L") if rtl else ("L", "R")
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(datetime.combine(facts.letter_date, time(0), tzinfo=UTC))
    pdf.set_producer(PRODUCER)
    pdf.set_creator(PRODUCER)
    pdf.set_title(words["subject"])
    pdf.set_author(facts.business_name)
    pdf.set_lang(language)
    for style, path in _fonts(font_dir).items():
        pdf.add_font("DejaVuSans", style, str(path))
    # Shaping runs the bidi algorithm too; ligatures off so copied or extracted text is the
    # text as written.
    features = {"liga": False, "clig": False}
    direction = "rtl" if rtl else "ltr"
    pdf.set_text_shaping(True, direction=direction, features=features)
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    size, height = 10.5, 5.2

    def own_direction(on: bool) -> None:
        """Names, addresses and table cells run in the direction of their own first letter
        (HTML's <bdi>): "1 Quay Street" stays as written in a Hebrew letter, and the other way
        round; our wording runs in the letter's direction."""
        pdf.set_text_shaping(True, direction=None if on else direction, features=features)

    def paragraph(text: str, *, align: str = start, style: str = "", after: float = 2.5,
                  theirs: bool = False) -> None:
        pdf.set_font("DejaVuSans", style, size)
        own_direction(theirs)
        pdf.multi_cell(0, height, text, align=align, new_x="LMARGIN", new_y="NEXT")
        own_direction(False)
        pdf.ln(after)

    def link_line(url: str) -> None:
        """An address on one line of its own, smaller if it must be (a wrapped address cannot
        be typed or copied whole), left to right in every letter, and clickable."""
        pdf.set_font("DejaVuSans", "", size)
        width = pdf.epw - 2 * pdf.c_margin
        fitted = min(size, size * width / pdf.get_string_width(url) * 0.98)
        pdf.set_font("DejaVuSans", "", fitted)
        own_direction(True)
        pdf.cell(0, height, url, align=start, link=url, new_x="LMARGIN", new_y="NEXT")
        own_direction(False)
        pdf.ln(6)

    def block(lines: list[str], *, bold_first: bool) -> None:
        for index, line in enumerate(lines):
            paragraph(line, style="B" if bold_first and index == 0 else "", after=0,
                      theirs=True)
        pdf.ln(6)

    def table(header: tuple[str, ...], rows: list[tuple[str, ...]], widths: tuple[int, ...],
              numeric: tuple[bool, ...]) -> None:
        aligns = tuple(end if is_number else start for is_number in numeric)
        order = range(len(header) - 1, -1, -1) if rtl else range(len(header))
        pdf.set_font("DejaVuSans", "", size - 1)
        own_direction(True)
        with pdf.table(col_widths=tuple(widths[i] for i in order), line_height=height,
                       borders_layout="HORIZONTAL_LINES", first_row_as_headings=True,
                       headings_style=FontFace(emphasis="BOLD"), padding=1.2) as grid:
            for cells in (header, *rows):
                row = grid.row()
                for i in order:
                    row.cell(cells[i], align=aligns[i])
        own_direction(False)
        pdf.ln(3)

    def logo(content: bytes) -> None:
        """The business's logo on the side the letter starts from, above its name. A stored
        logo was checked as a PNG or JPEG when kept; one the PDF library still cannot read
        is left out, and the letter goes with the name alone."""
        try:
            info = preload_image(pdf.image_cache, BytesIO(content))[2]
        except (OSError, SyntaxError, ValueError):
            return
        width = min(LOGO_HEIGHT_MM * info.width / info.height, pdf.epw)  # a long banner: narrowed
        pdf.image(BytesIO(content), x=Align.coerce(start), w=width,
                  h=width * info.height / info.width, alt_text=facts.business_name)
        pdf.ln(4)

    if facts.logo is not None:
        logo(facts.logo.content)
    block([facts.business_name, *facts.business_address], bold_first=True)
    block([facts.customer_name, *facts.customer_address], bold_first=False)
    paragraph(day(facts.letter_date), align=end, after=6)
    paragraph(words["subject"], style="B", after=5)
    if words["salutation"]:
        paragraph(words["salutation"])
    paragraph(words["opening"])
    table(tuple(words[name] for name in ("col_invoice", "col_issued", "col_due", "col_total",
                                         "col_outstanding")),
          [(invoice.number, day(invoice.issue_date), day(invoice.due_date),
            money(invoice.total), money(invoice.amount_due)) for invoice in facts.invoices],
          (22, 22, 22, 17, 17), (False, False, False, True, True))
    if facts.charges:
        paragraph(words["charges_caption"])
        table((words["col_description"], words["col_amount"]),
              [(description, money(amount)) for description, amount in facts.charges],
              (75, 25), (False, True))
    paragraph(f"{words['total_label']}: {money(facts.total_due)}", style="B", after=4)
    if facts.statutory_basis:
        paragraph(words["basis"])
    paragraph(words["demand"], style="B")
    if facts.payment_link:
        paragraph(f"{words['payment_link_label']} {facts.payment_link}")
    paragraph(words["consequence"])
    paragraph(words["dispute"], after=6)
    if facts.portal_link:
        paragraph(PORTAL_LINE[language], after=0)
        link_line(facts.portal_link)
    paragraph(words["closing"], after=8)
    if facts.signature:
        paragraph(facts.signature, after=0, theirs=True)
    paragraph(facts.business_name, after=0, theirs=True)
    return bytes(pdf.output())
