"""The final demand letter: five languages, HTML, text and a deterministic PDF."""

from __future__ import annotations

import html
import io
import re
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest
from pypdf import PdfReader

from rules.letters import (
    BLOCKS,
    FONT_PACKAGE,
    DemandLetter,
    FontMissing,
    LetterError,
    LetterFacts,
    LetterInvoice,
    demand_letter,
)

INVOICE = LetterInvoice(number="INV-0042", issue_date=date(2026, 1, 1),
                        due_date=date(2026, 1, 31), total=Decimal("1234.56"),
                        amount_due=Decimal("1234.56"), currency="GBP")
FACTS = LetterFacts(
    business_name="Harbour Coffee Roasters Ltd",
    business_address=("1 Quay Street", "Bristol BS1 4DJ"),
    signature="Jo Bloggs, Accounts",
    customer_name="Ada Lovelace Ltd",
    customer_address=("2 High Street", "Bath BA1 1AA"),
    language="en",
    invoices=(INVOICE,),
    charges=(("Statutory interest 1 Feb 2026 to 28 Feb 2026", Decimal("12.37")),
             ("Fixed compensation", Decimal("70.00"))),
    total_due=Decimal("1316.93"),
    letter_date=date(2026, 3, 2),
    days_to_pay=14,
    jurisdiction="GB",
    statutory_basis="Late Payment of Commercial Debts (Interest) Act 1998",
    payment_link="https://in.xero.com/abc",
)


def facts_in(language: str, currency: str, **changes: object) -> LetterFacts:
    invoices = tuple(replace(invoice, currency=currency) for invoice in FACTS.invoices)
    return replace(FACTS, **{"language": language, "invoices": invoices, **changes})  # type: ignore[arg-type]


@cache
def letter_for(facts: LetterFacts) -> DemandLetter:
    """A PDF takes about half a second to draw; tests share the letters they both need."""
    return demand_letter(facts)


def pdf_text(letter: DemandLetter) -> str:
    """The PDF's text as pypdf extracts it, whitespace (and no-break spaces) made single."""
    reader = PdfReader(io.BytesIO(letter.pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def flat(text: str) -> str:
    return " ".join(text.split())


def x_of(letter: DemandLetter, fragment: str) -> float:
    """Where on the first page (points from the left edge) a line of text starts."""
    found: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip() == fragment:
            found.append(tm[4])

    PdfReader(io.BytesIO(letter.pdf)).pages[0].extract_text(visitor_text=visit)
    assert found, f"{fragment!r} is not a line of its own"
    return found[0]


def test_english_letter_before_action_states_debt_basis_date_and_consequence() -> None:
    letter = letter_for(FACTS)
    assert letter.subject == "Letter before action: invoice INV-0042"
    for sentence in (
        "Dear Sir or Madam,",
        "We write about money that Ada Lovelace Ltd owes to Harbour Coffee Roasters Ltd. "
        "Despite our earlier reminders, the following invoice remains unpaid:",
        "INV-0042 | 1 January 2026 | 31 January 2026 | £1,234.56 | £1,234.56",
        "- Fixed compensation: £70.00",
        "Total now due: £1,316.93",
        "Legal basis for the interest and compensation claimed: Late Payment of Commercial "
        "Debts (Interest) Act 1998.",
        "Please pay £1,316.93 by 16 March 2026.",
        "You can pay online at: https://in.xero.com/abc",
        "If we have not received payment or heard from you by that date, we may start court "
        "proceedings to recover the debt without further notice to you.",
        "please contact us before that date, quoting the invoice number.",
        "Yours faithfully,\n\nJo Bloggs, Accounts\nHarbour Coffee Roasters Ltd\n",
    ):
        assert sentence in letter.text
    assert letter.text.startswith("Harbour Coffee Roasters Ltd\n1 Quay Street\nBristol BS1 4DJ\n"
                                  "\nAda Lovelace Ltd\n2 High Street\nBath BA1 1AA\n\n"
                                  "2 March 2026\n\nLetter before action: invoice INV-0042\n")
    assert '<html lang="en" dir="ltr">' in letter.html
    assert "<title>Letter before action: invoice INV-0042</title>" in letter.html
    assert '<td class="amount">£1,234.56</td>' in letter.html
    assert "<strong>Please pay £1,316.93 by 16 March 2026.</strong>" in letter.html
    assert ('<a href="https://in.xero.com/abc">https://in.xero.com/abc</a>') in letter.html


def test_german_letzte_mahnung_formats_euros_and_dates_the_german_way() -> None:
    letter = demand_letter(facts_in("de-DE", "EUR", jurisdiction="DE",
                                    statutory_basis="§ 288 BGB"))
    assert letter.subject == "Letzte Mahnung: Rechnung INV-0042"
    for sentence in (
        "Sehr geehrte Damen und Herren,",
        "trotz unserer bisherigen Zahlungserinnerungen ist die folgende Rechnung von Harbour "
        "Coffee Roasters Ltd noch nicht beglichen:",
        "INV-0042 | 1. Januar 2026 | 31. Januar 2026 | 1.234,56\xa0€ | 1.234,56\xa0€",
        "Insgesamt fällig: 1.316,93\xa0€",
        "Rechtsgrundlage der geltend gemachten Verzugszinsen und Pauschalen: § 288 BGB.",
        "Wir fordern Sie hiermit letztmalig auf, den Betrag von 1.316,93\xa0€ bis spätestens "
        "16. März 2026 zu zahlen.",
        "Sollte die Zahlung bis zu diesem Datum nicht bei uns eingegangen sein, werden wir die "
        "Forderung ohne weitere Ankündigung gerichtlich geltend machen oder einem "
        "Inkassodienstleister übergeben.",
        "Mit freundlichen Grüßen",
    ):
        assert sentence in letter.text
    assert '<html lang="de" dir="ltr">' in letter.html


def test_polish_ostateczne_wezwanie_formats_zloty_the_polish_way() -> None:
    letter = demand_letter(facts_in("pl", "PLN", jurisdiction="PL",
                                    statutory_basis="ustawa z dnia 8 marca 2013 r."))
    assert letter.subject == "Ostateczne wezwanie do zapłaty: faktura INV-0042"
    for sentence in (
        "Szanowni Państwo,",
        "pomimo wcześniejszych przypomnień następująca faktura wystawiona przez Harbour Coffee "
        "Roasters Ltd pozostaje nieopłacona:",
        "Razem do zapłaty: 1\xa0316,93\xa0zł",
        "Podstawa prawna naliczenia odsetek i rekompensaty: ustawa z dnia 8 marca 2013 r.\n",
        "Niniejszym ostatecznie wzywamy do zapłaty kwoty 1\xa0316,93\xa0zł w terminie do dnia "
        "16 marca 2026.",
        "W przypadku braku zapłaty w tym terminie sprawa zostanie skierowana na drogę "
        "postępowania sądowego lub przekazana do windykacji bez dalszych wezwań",
        "Z poważaniem",
    ):
        assert sentence in letter.text
    assert '<html lang="pl" dir="ltr">' in letter.html


def test_norwegian_inkassovarsel_cites_inkassoloven_and_gives_fourteen_days() -> None:
    letter = demand_letter(facts_in("nb", "NOK", jurisdiction="NO",
                                    statutory_basis="forsinkelsesrenteloven"))
    assert letter.subject == "Inkassovarsel: faktura INV-0042"
    for sentence in (
        "INV-0042 | 1. januar 2026 | 31. januar 2026 | 1\xa0234,56\xa0kr | 1\xa0234,56\xa0kr",
        "Totalt å betale: 1\xa0316,93\xa0kr",
        "Rettslig grunnlag for renter og gebyrer: forsinkelsesrenteloven.",
        "Dette er et inkassovarsel etter inkassoloven § 9. Vi ber deg betale 1\xa0316,93\xa0kr "
        "innen 16. mars 2026, det vil si innen 14 dager fra datoen for dette varselet.",
        "Dersom beløpet ikke er betalt innen fristen, vil kravet bli sendt til inkasso uten "
        "ytterligere varsel.",
        "Med vennlig hilsen",
    ):
        assert sentence in letter.text
    assert "Dear" not in letter.text and "<p></p>" not in letter.html  # no salutation in nb


def test_hebrew_letter_is_right_to_left_in_html_and_formats_shekels() -> None:
    letter = demand_letter(facts_in("he", "ILS", jurisdiction="IL", statutory_basis=None))
    assert letter.subject == "התראה לפני נקיטת הליכים משפטיים: חשבונית INV-0042"
    assert '<html lang="he" dir="rtl">' in letter.html
    assert "direction: rtl;" in letter.html
    for sentence in (
        "א.ג.נ.,",
        "למרות תזכורותינו הקודמות, החשבונית הבאה של Harbour Coffee Roasters Ltd טרם שולמה:",
        "סך הכול לתשלום: \u200f1,316.93\xa0\u200f₪",
        "הנכם נדרשים לשלם את הסכום של \u200f1,316.93\xa0\u200f₪ לא יאוחר מיום 16 במרץ 2026.",
        "אם התשלום לא יתקבל עד למועד זה, אנו עשויים לנקוט הליכים משפטיים לגביית החוב ללא "
        "הודעה נוספת",
        "בכבוד רב,",
    ):
        assert sentence in letter.text
    assert "הבסיס המשפטי" not in letter.text  # no statutory basis given, none stated
    # Names and addresses keep their own direction inside the right-to-left page.
    assert "<bdi>1 Quay Street</bdi>" in letter.html


def test_several_invoices_are_named_in_the_subject_in_the_plural() -> None:
    second = replace(INVOICE, number="INV-0043", total=Decimal("200.00"),
                     amount_due=Decimal("150.00"))
    letter = demand_letter(replace(FACTS, invoices=(INVOICE, second)))
    assert letter.subject == "Letter before action: invoices INV-0042, INV-0043"
    assert "the following invoices remain unpaid:" in letter.text
    assert "INV-0043 | 1 January 2026 | 31 January 2026 | £200.00 | £150.00" in letter.text
    german = demand_letter(facts_in("de", "EUR", invoices=(
        replace(INVOICE, currency="EUR"), replace(second, currency="EUR"))))
    assert german.subject == "Letzte Mahnung: Rechnungen INV-0042, INV-0043"


def test_basis_without_charges_reserves_the_right_and_no_link_means_no_link_line() -> None:
    letter = demand_letter(replace(FACTS, charges=(), payment_link=None,
                                   total_due=Decimal("1234.56")))
    assert ("We reserve the right to claim interest and compensation for late payment "
            "(legal basis: Late Payment of Commercial Debts (Interest) Act 1998).") in letter.text
    assert "Interest and charges" not in letter.text
    assert 'class="charges"' not in letter.html
    assert "pay online" not in letter.text and "<a " not in letter.html
    no_basis = demand_letter(replace(FACTS, statutory_basis=None))
    assert "legal basis" not in no_basis.text.lower()


PORTAL = ("https://dunwell.example/portal/eyJjIjoxMjM0NSwiayI6IjNmWGtRdkFfNXdZcjlUbUxIaFpr"
          "Q2pOMnNCcFJkRWcifQ.Z1Qx8w.kH3p6a0cQv9rW2xYzT1uJ5mN8bV4sL7dE0fG")


@pytest.mark.parametrize(("language", "currency", "line"), [
    ("en", "GBP", "See your invoices, promise a payment date, ask for more time or raise a"
                  " problem:"),
    ("he", "ILS", "לצפייה בחשבוניות, להתחייבות למועד תשלום, לבקשת ארכה או לדיווח על בעיה:"),
])
def test_the_customers_portal_link_is_in_the_letter_whole(language: str, currency: str,
                                                          line: str) -> None:
    """The customer's own portal link, under the portal's line in their language: in the text,
    the HTML (left to right) and the PDF, where it is one unbroken line that can be read off
    the page (and a link to click)."""
    letter = demand_letter(facts_in(language, currency, portal_link=PORTAL))
    assert f"{line}\n{PORTAL}\n" in letter.text
    assert f'<a href="{PORTAL}" dir="ltr">{PORTAL}</a>' in letter.html
    assert line in pdf_text(letter)
    lines = [one.strip() for page in PdfReader(io.BytesIO(letter.pdf)).pages
             for one in page.extract_text().splitlines()]
    assert PORTAL in lines
    annotations = [a.get_object() for page in PdfReader(io.BytesIO(letter.pdf)).pages
                   for a in page.get("/Annots") or []]
    assert [a["/A"]["/URI"] for a in annotations if "/A" in a] == [PORTAL]
    without = letter_for(facts_in(language, currency))
    assert PORTAL not in without.text and line not in without.text


def test_html_escapes_what_the_books_say_but_the_text_keeps_it() -> None:
    hostile = "<script>alert('x')</script> & Co"
    letter = demand_letter(replace(FACTS, customer_name=hostile,
                                   customer_address=('"><img src=x onerror=alert(1)>',),
                                   charges=(("<b>fee</b>", Decimal("12.37")),)))
    assert "<script>" not in letter.html and "<img" not in letter.html
    assert "<b>fee</b>" not in letter.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in letter.html
    assert f"We write about money that {hostile} owes to" in letter.text
    assert hostile in pdf_text(letter)


def test_pdf_holds_the_letter_in_every_language() -> None:
    cases = {
        "en": ("GBP", ["Letter before action: invoice INV-0042", "Dear Sir or Madam,",
                       "Please pay £1,316.93 by 16 March 2026.",
                       "INV-0042 1 January 2026 31 January 2026 £1,234.56 £1,234.56"]),
        "de": ("EUR", ["Letzte Mahnung: Rechnung INV-0042", "Sehr geehrte Damen und Herren,",
                       "Insgesamt fällig: 1.316,93 €", "bis spätestens 16. März 2026 zu zahlen."]),
        "pl": ("PLN", ["Ostateczne wezwanie do zapłaty: faktura INV-0042", "Szanowni Państwo,",
                       "Razem do zapłaty: 1 316,93 zł", "w terminie do dnia 16 marca 2026."]),
        "nb": ("NOK", ["Inkassovarsel: faktura INV-0042", "Totalt å betale: 1 316,93 kr",
                       "Dette er et inkassovarsel etter inkassoloven § 9."]),
        "he": ("ILS", ["א.ג.נ.,", "התראה לפני נקיטת הליכים משפטיים: חשבונית",
                       "אם התשלום לא יתקבל עד למועד זה, אנו עשויים לנקוט הליכים משפטיים "
                       "לגביית החוב ללא הודעה נוספת,", "בכבוד רב,"]),
    }
    for language, (currency, sentences) in cases.items():
        letter = letter_for(facts_in(language, currency))
        assert letter.pdf.startswith(b"%PDF-1.")
        text = pdf_text(letter)
        for sentence in sentences:
            assert sentence in text, (language, sentence)


def test_hebrew_pdf_runs_right_to_left_and_is_right_aligned() -> None:
    """pypdf reads glyphs in the order they are drawn and turns right-to-left runs back into
    logical order: Hebrew drawn left to right (no shaping) would come out reversed."""
    hebrew = letter_for(facts_in("he", "ILS"))
    text = pdf_text(hebrew)
    assert "בכבוד רב," in text and ",בר דובכב" not in text
    english = letter_for(FACTS)
    left_margin = 20 / 25.4 * 72  # 20 mm, plus the cell's own 1 mm padding
    assert x_of(english, "Dear Sir or Madam,") == pytest.approx(left_margin + 2.83, abs=1)
    assert x_of(hebrew, "א.ג.נ.,") > 450  # near the right margin (538 pt) of an A4 page


def test_pdf_is_byte_identical_for_equal_facts_and_dated_by_the_letter() -> None:
    first = letter_for(facts_in("he", "ILS"))
    again = demand_letter(replace(facts_in("he", "ILS"), charges=tuple(FACTS.charges)))
    assert first.pdf == again.pdf
    assert demand_letter(replace(FACTS, letter_date=date(2026, 3, 3))).pdf != \
        letter_for(FACTS).pdf
    info = PdfReader(io.BytesIO(first.pdf)).metadata
    assert info is not None
    assert info["/Producer"] == "Dunwell"
    assert info["/CreationDate"] == "D:20260302000000Z"
    assert info["/Title"] == first.subject


def test_a_missing_font_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(FontMissing, match=f"install the Debian package {FONT_PACKAGE}") as err:
        demand_letter(FACTS, font_dir=tmp_path)
    assert "fonts-dejavu-core" in str(err.value)
    assert str(tmp_path / "DejaVuSans.ttf") in str(err.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"days_to_pay": 10, "language": "nb"}, "inkassoloven § 9: at least 14 days"),
    ({"days_to_pay": 13, "jurisdiction": "NO"}, "at least 14 days"),
    ({"days_to_pay": 0}, "days to pay must be a whole number from 1"),
    ({"total_due": Decimal("0.00")}, "the total due must be more than 0"),
    ({"total_due": 1316.93}, "must be a finite Decimal"),
    ({"total_due": Decimal("1316.931")}, "more decimal places than GBP allows"),
    ({"charges": (("Interest", Decimal("-1.00")),)}, "must be at least 0"),
    ({"charges": ((" ", Decimal("1.00")),)}, "every charge needs a description"),
    ({"payment_link": "javascript:alert(1)"}, "must be an http"),
    ({"portal_link": "javascript:alert(1)"}, "the portal link must be an http"),
    ({"invoices": ()}, "at least one invoice"),
    ({"invoices": (INVOICE, replace(INVOICE, number="INV-9", currency="EUR"))},
     "one currency, not EUR, GBP"),
    ({"letter_date": datetime(2026, 3, 2, 9, 0)}, "the letter date must be a date"),
    ({"statutory_basis": "  "}, "not blank"),
])
def test_facts_a_letter_cannot_be_written_from_are_refused(changes: dict[str, object],
                                                           message: str) -> None:
    with pytest.raises(LetterError, match=re.escape(message)):
        replace(FACTS, **changes)  # type: ignore[arg-type]


def test_an_invoice_needs_a_currency_code_and_a_positive_amount_due() -> None:
    with pytest.raises(LetterError, match="ISO 4217"):
        replace(INVOICE, currency="pounds")
    with pytest.raises(LetterError, match="amount due must be more than 0"):
        replace(INVOICE, amount_due=Decimal("0.00"))
    jpy = replace(INVOICE, currency="JPY", total=Decimal("1235"), amount_due=Decimal("1235"))
    letter = demand_letter(replace(FACTS, invoices=(jpy,), charges=(),
                                   total_due=Decimal("1235")))
    assert "£" not in letter.text and "JP¥1,235" in letter.text


def test_every_language_file_fills_every_wording_block() -> None:
    for language, currency in (("en", "GBP"), ("de", "EUR"), ("pl", "PLN"), ("nb", "NOK"),
                               ("he", "ILS")):
        source = (Path(__file__).parents[2] / "rules" / "templates" / "letters"
                  / f"{language}.html.j2").read_text(encoding="utf-8")
        for block in BLOCKS:
            assert f"{{% block {block} %}}" in source, (language, block)
        assert "{{" not in letter_for(facts_in(language, currency)).text


def test_an_unknown_language_gets_the_english_letter() -> None:
    letter = demand_letter(replace(FACTS, language="fr-FR"))
    assert letter.subject == "Letter before action: invoice INV-0042"
    assert '<html lang="en" dir="ltr">' in letter.html


@pytest.mark.parametrize(("language", "kind", "worded"), [
    ("en", "interest", "Interest on late payment, 1 February 2026 \u2013 28 February 2026"),
    ("de", "interest", "Verzugszinsen, 1. Februar 2026 \u2013 28. Februar 2026"),
    ("nb", "fee", "Purregebyr, 1. februar 2026 \u2013 28. februar 2026"),
    ("pl", "compensation", "Rekompensata za koszty odzyskiwania należności, "
                           "1 lutego 2026 \u2013 28 lutego 2026"),
    ("he", "interest", "ריבית פיגורים, 1 בפברואר 2026 \u2013 28 בפברואר 2026"),
])
def test_a_charge_is_listed_in_the_letters_language(language: str, kind: str,
                                                    worded: str) -> None:
    """The ledger's reason is the owner's English; a German customer's letter says
    Verzugszinsen, with German dates, in the text and the HTML (the PDF draws the same words)."""
    from rules.letters import charge_description

    period = (date(2026, 2, 1), date(2026, 2, 28))
    described = charge_description(kind, language, "EUR", period)
    assert described == worded
    letter = demand_letter(facts_in(language, "EUR", charges=((described, Decimal("12.37")),)))
    assert described in letter.text and described in html.unescape(letter.html)
    assert charge_description(kind, language, "EUR") == worded.split(",")[0]
    with pytest.raises(LetterError, match="not 'discount'"):
        charge_description("discount", language, "EUR")


def image_bytes(size: tuple[int, int], kind: str) -> bytes:
    """A logo as the store keeps one: a PNG with transparency, or a JPEG."""
    from PIL import Image

    out = io.BytesIO()
    mode, colour = ("RGBA", (180, 40, 20, 255)) if kind == "PNG" else ("RGB", (180, 40, 20))
    Image.new(mode, size, colour).save(out, kind)
    return out.getvalue()


def drawn_images(letter: DemandLetter) -> list[tuple[int, int, float, float]]:
    """Each image drawn on the first page: its pixel width and height, and where it stands
    (points from the page's left edge, and how wide)."""
    from pypdf.generic import ContentStream

    page = PdfReader(io.BytesIO(letter.pdf)).pages[0]
    objects = page["/Resources"].get("/XObject", {})
    drawn, matrix = [], None
    for operands, operator in ContentStream(page.get_contents(), page.pdf).operations:
        if operator == b"cm":
            matrix = [float(value) for value in operands]
        elif operator == b"Do" and matrix is not None:
            image = objects[operands[0]].get_object()
            if image["/Subtype"] == "/Image":
                drawn.append((int(image["/Width"]), int(image["/Height"]), matrix[4], matrix[0]))
    return drawn


@pytest.mark.parametrize(("language", "currency", "size", "kind"), [
    ("en", "GBP", (96, 96), "PNG"), ("he", "ILS", (160, 40), "JPEG")])
def test_the_businesss_logo_heads_the_pdf_and_the_html_as_our_emails_show_it(
        language: str, currency: str, size: tuple[int, int], kind: str) -> None:
    from rules.messages import Logo, Message, logo_header, with_logo

    logo = Logo(content=image_bytes(size, kind), url="https://dunwell.example/portal/t/logo?v=1")
    letter = demand_letter(facts_in(language, currency, logo=logo))
    ((width, height, x, drawn_width),) = drawn_images(letter)
    assert (width, height) == size
    # As high as the emails show it (48 px), on the side the letter starts from.
    assert drawn_width / width * height == pytest.approx(48 * 0.75, abs=0.1)
    page_width, margin = 595.28, 20 / 25.4 * 72
    if language == "he":
        assert x + drawn_width == pytest.approx(page_width - margin, abs=0.5)
    else:
        assert x == pytest.approx(margin, abs=0.5)
    # The HTML carries the very markup a reminder's HTML does, first in the body.
    header = logo_header(logo, FACTS.business_name)
    assert header == ('<p><img src="https://dunwell.example/portal/t/logo?v=1" '
                      'alt="Harbour Coffee Roasters Ltd" height="48"></p>')
    assert f"<body>\n{header}\n<div class=\"sender\">" in letter.html
    reminder = Message("Subject", "Hello\n", "", language, "ltr")
    assert header in with_logo(reminder, logo, FACTS.business_name).html
    assert letter.text == letter_for(facts_in(language, currency)).text  # the text unchanged
    assert demand_letter(facts_in(language, currency, logo=logo)).pdf == letter.pdf


def test_without_a_logo_the_letter_has_the_name_alone() -> None:
    """No logo, or one the PDF library cannot read after all (the store checked only its
    header): no image, and the letter is written all the same. A logo without an address
    (no portal link) is in the PDF but not the HTML, which could not show it."""
    from rules.messages import Logo

    plain = letter_for(FACTS)
    assert drawn_images(plain) == [] and "<img" not in plain.html
    assert "<body>\n<div class=\"sender\">" in plain.html
    good = image_bytes((96, 96), "PNG")
    broken = good[:60] + good[-12:]  # the header and the end kept, the pixels cut out
    letter = demand_letter(replace(FACTS, logo=Logo(content=broken, url="https://d.example/l")))
    assert drawn_images(letter) == [] and pdf_text(letter) == pdf_text(plain)
    unlinked = demand_letter(replace(FACTS, logo=Logo(content=good)))
    assert [image[:2] for image in drawn_images(unlinked)] == [(96, 96)]
    assert unlinked.html == plain.html
