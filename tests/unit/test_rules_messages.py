"""Reminder texts: five languages, three tones, placeholders checked when saved."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from rules.messages import (
    LOCALES,
    SAMPLE,
    TONES,
    MessageContext,
    MessageTemplateError,
    language_of,
    render,
    shipped_template,
    validate_template,
)

CONTEXT = MessageContext(contact_name="Nordlys AS", invoice_number="INV-0007",
                         amount_due=Decimal("12500.00"), currency="NOK",
                         due_date=date(2026, 11, 10), days_overdue=14,
                         business_name="Fjellbekk Design AS", fees=Decimal("35.00"),
                         payment_link="https://in.xero.com/abc", locale="nb")


def test_every_shipped_text_renders_in_its_language_and_passes_the_save_check() -> None:
    for language in LOCALES:
        for tone in TONES:
            source = shipped_template(language, tone)
            validate_template(source)
            message = render(source, replace(SAMPLE, locale=language))
            assert "INV-0042" in message.subject and "INV-0042" in message.text
            assert "{{" not in message.text and "{%" not in message.text


def test_norwegian_firm_reminder_reads_as_expected() -> None:
    message = render(shipped_template("nb", "firm"), CONTEXT)
    assert message.subject == "Purring: faktura INV-0007 er 14 dager på forfall"
    assert ("Utestående beløp er 12\xa0500,00\xa0kr, inkludert 35,00\xa0kr i gebyrer og "
            "forsinkelsesrenter.") in message.text
    assert "som forfalt 10. november 2026" in message.text
    assert "Vennligst betal i dag: https://in.xero.com/abc" in message.text
    assert message.direction == "ltr" and message.locale == "nb"


def test_german_final_demand_formats_euros_and_dates_the_german_way() -> None:
    message = render(shipped_template("de", "final"),
                     replace(CONTEXT, currency="EUR", locale="de-AT", amount_due=Decimal(
                         "1234.5"), fees=Decimal(0), payment_link=None))
    assert message.subject == "Letzte Mahnung: Rechnung INV-0007"
    assert "Der offene Betrag beläuft sich auf 1.234,50\xa0€." in message.text
    assert "(fällig am 10. November 2026)" in message.text
    assert "Jetzt bezahlen" not in message.text  # no link, no line for it


def test_hebrew_is_right_to_left_in_html() -> None:
    message = render(shipped_template("he", "friendly"), replace(CONTEXT, locale="he"))
    assert message.direction == "rtl"
    assert message.html.startswith('<!doctype html><html lang="he" dir="rtl">')
    assert '<a href="https://in.xero.com/abc">https://in.xero.com/abc</a>' in message.html


def test_unknown_languages_fall_back_to_english_and_norwegian_variants_to_bokmal() -> None:
    assert [language_of(x) for x in ("de-CH", "nn", "no", "he_IL", "iw", "fr", None)] == [
        "de", "nb", "nb", "he", "he", "en", "en"]


def test_a_misspelt_placeholder_is_refused_when_saved() -> None:
    with pytest.raises(MessageTemplateError, match="amount_owed"):
        validate_template("Subject: Invoice {{ invoice_number }}\nYou owe {{ amount_owed }}.")


def test_a_template_cannot_reach_python_internals() -> None:
    with pytest.raises(MessageTemplateError):
        validate_template("Subject: x\n{{ contact_name.__class__.__mro__[1].__subclasses__() }}")


def test_a_template_needs_a_subject_line() -> None:
    with pytest.raises(MessageTemplateError, match="Subject"):
        validate_template("Hello {{ contact_name }}")


def test_customer_data_is_escaped_in_html() -> None:
    message = render("Subject: Hi\nHello {{ contact_name }}",
                     replace(CONTEXT, contact_name="<script>alert(1)</script>"))
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
