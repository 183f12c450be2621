from __future__ import annotations

import json
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rules.statutory import (
    FxRateRequired,
    NotApplicable,
    PrincipalEvents,
    RateNotCovered,
    RateTable,
    RateTableError,
    RateUnverified,
    default_tables,
    format_money,
    load_tables,
    outstanding_runs,
    rate_table,
    reminder_fee_cap,
    round_money,
    statutory_compensation,
    statutory_interest,
)

RATES = Path(__file__).resolve().parents[2] / "rules" / "rates"
D = Decimal


def debt(amount: str, currency: str = "EUR", *payments: tuple[date, str]) -> PrincipalEvents:
    return PrincipalEvents(D(amount), currency, tuple((day, D(paid)) for day, paid in payments))


def segments(quote: Any) -> list[tuple[date, date, int, Decimal, Decimal]]:
    return [(s.first_day, s.last_day, s.days, s.base, s.annual_rate) for s in quote.segments]


# ----------------------------------------------------------------------------- the tables


def test_the_shipped_tables_hold_exactly_the_figures_of_the_reference() -> None:
    """Rows for half-years the reference gives (GB: the Bank of England's Bank Rate history,
    named in each row's source); unverified ones flagged; nothing invented."""
    rows = {
        jurisdiction: [(str(p.effective_from), str(p.effective_to), str(p.annual_rate(False)),
                        p.unverified) for p in table.periods]
        for jurisdiction, table in default_tables().items()}
    assert rows == {
        "GB": [("2024-01-01", "2024-06-30", "13.25", False),
               ("2024-07-01", "2024-12-31", "13.25", False),
               ("2025-01-01", "2025-06-30", "12.75", False),
               ("2025-07-01", "2025-12-31", "12.25", False),
               ("2026-01-01", "2026-06-30", "11.75", False),
               ("2026-07-01", "2026-12-31", "11.75", True)],
        "EU": [("2026-01-01", "2026-06-30", "10.15", False)],
        "DE": [("2025-07-01", "2025-12-31", "10.27", False),
               ("2026-01-01", "2026-06-30", "10.27", False)],
        "PL": [("2024-01-01", "2024-06-30", "15.75", False),
               ("2024-07-01", "2024-12-31", "15.75", False)],
        "NO": [("2024-01-01", "2024-06-30", "12.50", False),
               ("2024-07-01", "2024-12-31", "12.50", True),
               ("2025-01-01", "2025-06-30", "12.50", False),
               ("2025-07-01", "2025-12-31", "12.50", True)],
    }
    de = rate_table("de")
    assert [(p.reference_rate, p.margin_b2b, p.margin_b2c) for p in de.periods] == [
        (D("1.27"), D("9"), D("5"))] * 2
    # Norway publishes the resulting rate; the policy rate is derived from it.
    no = rate_table("NO")
    assert {(p.reference_rate, p.margin_b2b, p.margin_b2c) for p in no.periods} == {
        (D("4.50"), D("8"), D("8"))}
    assert all(p.source for t in default_tables().values() for p in t.periods)
    assert {j: (t.b2b_only, t.day_count) for j, t in default_tables().items()} == {
        "GB": (True, "actual/365"), "EU": (True, "actual/365"), "DE": (False, "actual/365"),
        "PL": (True, "actual/365"), "NO": (False, "actual/365")}
    assert de.origin == "rules/rates/de.json"


def test_an_operator_extends_a_table_without_a_code_change(tmp_path: Path) -> None:
    """A copied directory with a 2026-H2 row (a test figure, base 0.77 %) covers July 2026.

    EUR 1,000 due 2026-06-15, as of 2026-07-15, two segments at their own rates:
    2026-06-16..06-30: 15 days x 10.27 % x 1,000 / 365 = 4.2205479...
    2026-07-01..07-15: 15 days x  9.77 % x 1,000 / 365 = 4.0150684...
    total 8.2356164... -> 8.24
    """
    shutil.copytree(RATES, tmp_path / "rates")
    path = tmp_path / "rates" / "de.json"
    data = json.loads(path.read_text())
    data["periods"].append({"from": "2026-07-01", "to": "2026-12-31", "reference_rate": "0.77",
                            "source": "test figure", "unverified": False})
    path.write_text(json.dumps(data))
    tables = load_tables(tmp_path / "rates")
    with pytest.raises(RateNotCovered):
        statutory_interest("DE", debt("1000"), date(2026, 6, 15), date(2026, 7, 15))
    quote = statutory_interest("DE", debt("1000"), date(2026, 6, 15), date(2026, 7, 15),
                               tables=tables)
    assert segments(quote) == [
        (date(2026, 6, 16), date(2026, 6, 30), 15, D("1000"), D("10.27")),
        (date(2026, 7, 1), date(2026, 7, 15), 15, D("1000"), D("9.77"))]
    assert quote.total == D("8.24")
    assert quote.segments[1].period.source == "test figure"
    assert tables["DE"].origin == f"{tmp_path / 'rates'}/de.json"
    assert RateTable.load(path).periods[-1].reference_rate == D("0.77")


def write_table(tmp_path: Path, **changes: Any) -> Path:
    data = json.loads((RATES / "de.json").read_text())
    data.update(changes)
    path = tmp_path / "xx.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"periods": [{"from": "2026-01-01", "to": "2026-06-30", "reference_rate": "1.27",
                   "source": "s", "unverified": False, "margin": "9"}]},
     "periods[0]: unknown key(s) margin"),
    ({"periods": [{"from": "2026-01-01", "to": "2026-06-30", "reference_rate": True,
                   "source": "s", "unverified": False}]},
     "periods[0].reference_rate: must be a decimal number"),
    ({"periods": [{"from": "2026-01-01", "to": "2026-06-30", "reference_rate": "1.27",
                   "source": "s"}]},
     "periods[0]: missing key(s) unverified"),
    ({"periods": [{"from": "2026-01-01", "to": "2026-06-30", "reference_rate": "1.27",
                   "source": "a", "unverified": False},
                  {"from": "2026-06-30", "to": "2026-12-31", "reference_rate": "1.27",
                   "source": "b", "unverified": False}]},
     "periods[1]: rows must be in date order and not overlap"),
    ({"periods": [{"from": "2026-07-01", "to": "2026-06-30", "reference_rate": "1.27",
                   "source": "s", "unverified": False}]},
     "periods[0]: ends (2026-06-30) before it starts (2026-07-01)"),
    ({"day_count": "30/360"}, "day_count: '30/360' is not supported"),
    ({"margin_b2c": None}, "periods[0]: margin_b2c is required unless the table is b2b_only"),
    ({"format": 2}, "format: expected 1, found 2"),
])
def test_a_bad_table_is_refused_naming_file_and_place(tmp_path: Path, changes: dict[str, Any],
                                                      message: str) -> None:
    path = write_table(tmp_path, **changes)
    with pytest.raises(RateTableError) as error:
        RateTable.load(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_json_decimals_in_a_table_are_read_exactly(tmp_path: Path) -> None:
    path = write_table(tmp_path, margin_b2b=9)
    text = path.read_text().replace('"reference_rate": "1.27"', '"reference_rate": 1.27')
    path.write_text(text)
    assert RateTable.load(path).periods[0].annual_rate(False) == D("10.27")
    path.write_text("{not json")
    with pytest.raises(RateTableError, match="not valid JSON"):
        RateTable.load(path)


def test_an_unknown_jurisdiction_says_which_are_known() -> None:
    with pytest.raises(NotApplicable, match=r"'US' \(known: DE, EU, GB, NO, PL\)"):
        statutory_interest("US", debt("100", "USD"), date(2026, 1, 1), date(2026, 2, 1))


# ----------------------------------------------------------------------------- one per country


def test_de_b2b_and_consumer() -> None:
    """DE: EUR 1,000 due 2026-01-01, as of 2026-02-01: 2026-01-02..2026-02-01 is 31 days.

    B2B      1,000 x (1.27 + 9) % x 31 / 365 = 102.70 x 31 / 365 = 8.7224657... -> 8.72
    consumer 1,000 x (1.27 + 5) % x 31 / 365 =  62.70 x 31 / 365 = 5.3252054... -> 5.33
    """
    quote = statutory_interest("DE", debt("1000"), date(2026, 1, 1), date(2026, 2, 1))
    assert quote.total == D("8.72")
    assert segments(quote) == [(date(2026, 1, 2), date(2026, 2, 1), 31, D("1000"), D("10.27"))]
    assert quote.reason == ("Interest 10.27 % p.a. (DE B2B: base 1.27 % + 9) on 1,000.00 EUR"
                            " for 31 days (2026-01-02..2026-02-01) = 8.72 EUR")
    consumer = statutory_interest("DE", debt("1000"), date(2026, 1, 1), date(2026, 2, 1),
                                  b2c=True)
    assert consumer.total == D("5.33")
    assert consumer.reason.startswith("Interest 6.27 % p.a. (DE consumer: base 1.27 % + 5)")


def test_gb_verified_half_year() -> None:
    """GB: GBP 10,000 due 2024-01-31, as of 2024-03-31: Feb (29, leap) + Mar (31) = 60 days.

    10,000 x (5.25 + 8) % x 60 / 365 = 1,325 x 60 / 365 = 217.8082191... -> 217.81
    """
    quote = statutory_interest("GB", debt("10000", "GBP"), date(2024, 1, 31), date(2024, 3, 31))
    assert quote.total == D("217.81")
    assert quote.exact_total.quantize(D("0.0000001")) == D("217.8082192")
    assert quote.reason == ("Interest 13.25 % p.a. (GB B2B: BoE base rate 5.25 % + 8) on"
                            " 10,000.00 GBP for 60 days (2024-02-01..2024-03-31) = 217.81 GBP")


def test_gb_unverified_half_year_only_when_allowed() -> None:
    """GB Jul-Dec 2026 rests on news reports (11.75 %): GBP 10,000 due 2026-09-30, as of
    2026-10-31.

    31 days: 10,000 x 11.75 % x 31 / 365 = 1,175 x 31 / 365 = 99.7945205... -> 99.79
    """
    args = ("GB", debt("10000", "GBP"), date(2026, 9, 30), date(2026, 10, 31))
    with pytest.raises(RateUnverified) as error:
        statutory_interest(*args)
    message = str(error.value)
    assert message.startswith("The GB statutory rate for 2026-07-01..2026-12-31 (11.75 % B2B)"
                              " is unverified (Base rate held at 3.75 % on 18 Jun 2026")
    assert message.endswith('set "unverified": false in rules/rates/gb.json, or pass'
                            " allow_unverified=True.")
    assert isinstance(error.value, RateNotCovered) and isinstance(error.value, ValueError)
    assert statutory_interest(*args, allow_unverified=True).total == D("99.79")


def test_gb_consumers_are_refused() -> None:
    with pytest.raises(NotApplicable,
                       match=r"^GB: the Late Payment Act applies to business debts only"):
        statutory_interest("GB", debt("100", "GBP"), date(2024, 1, 31), date(2024, 3, 31),
                           b2c=True)


def test_gb_a_date_the_table_does_not_cover_names_the_half_year_and_the_file() -> None:
    """No GB figure for 2027 yet: a debt running into it refuses."""
    with pytest.raises(RateNotCovered) as error:
        statutory_interest("GB", debt("1000", "GBP"), date(2026, 12, 15), date(2027, 1, 10),
                           allow_unverified=True)
    assert str(error.value) == (
        "No GB statutory rate for 2027-01-01 (the table covers 2024-01-01..2026-12-31):"
        " add a row for 2027-01-01..2027-06-30 to rules/rates/gb.json.")
    assert not isinstance(error.value, RateUnverified)


def test_de_after_the_table_ends() -> None:
    with pytest.raises(RateNotCovered) as error:
        statutory_interest("DE", debt("1000"), date(2026, 12, 31), date(2027, 1, 5))
    assert str(error.value) == (
        "No DE statutory rate for 2027-01-01 (the table covers 2025-07-01..2026-06-30): add a"
        " row for 2027-01-01..2027-06-30 to rules/rates/de.json.")


def test_eu_generic() -> None:
    """EU: EUR 5,000 due 2026-02-28, as of 2026-03-30: 30 days at ECB 2.15 % + 8 = 10.15 %.

    5,000 x 10.15 % x 30 / 365 = 507.50 x 30 / 365 = 41.7123287... -> 41.71
    """
    quote = statutory_interest("EU", debt("5000"), date(2026, 2, 28), date(2026, 3, 30))
    assert quote.total == D("41.71")
    assert "(EU B2B: ECB MRO 2.15 % + 8)" in quote.reason
    with pytest.raises(NotApplicable, match="commercial transactions"):
        statutory_interest("EU", debt("5000"), date(2026, 2, 28), date(2026, 3, 30), b2c=True)


def test_pl_across_a_rate_period_boundary_rounds_only_the_total() -> None:
    """PL: PLN 20,000 due 2024-05-15, as of 2024-08-15, at 5.75 + 10 = 15.75 % a year.

    20,000 x 15.75 % = 3,150 a year. Split at 2024-07-01 into two segments:
    2024-05-16..2024-06-30: 46 days x 3,150 / 365 = 396.9863013...
    2024-07-01..2024-08-15: 46 days x 3,150 / 365 = 396.9863013...
    total 793.9726027... -> 793.97 (rounding each segment first would give 793.98)
    """
    quote = statutory_interest("PL", debt("20000", "PLN"), date(2024, 5, 15), date(2024, 8, 15))
    assert segments(quote) == [
        (date(2024, 5, 16), date(2024, 6, 30), 46, D("20000"), D("15.75")),
        (date(2024, 7, 1), date(2024, 8, 15), 46, D("20000"), D("15.75"))]
    assert [s.period.effective_from for s in quote.segments] == [date(2024, 1, 1),
                                                                 date(2024, 7, 1)]
    assert quote.total == D("793.97")
    assert sum(round_money(s.amount, "PLN") for s in quote.segments) == D("793.98")
    with pytest.raises(NotApplicable, match="^" + re.escape("PL: the Polish Act of 8 March 2013")):
        statutory_interest("PL", debt("1", "PLN"), date(2024, 5, 15), date(2024, 6, 1),
                           b2c=True)
    with pytest.raises(RateNotCovered, match=re.escape("add a row for 2025-01-01..2025-06-30 to"
                                             " rules/rates/pl.json")):
        statutory_interest("PL", debt("1", "PLN"), date(2024, 12, 15), date(2025, 1, 2))


def test_no_published_rate_for_businesses_and_consumers() -> None:
    """NO: NOK 100,000 due 2025-01-31, as of 2025-03-02: Feb (28) + 2 = 30 days at 12.50 %.

    100,000 x 12.50 % x 30 / 365 = 12,500 x 30 / 365 = 1,027.3972602... -> 1,027.40
    The same for a consumer: the law has one rate.
    """
    args = ("NO", debt("100000", "NOK"), date(2025, 1, 31), date(2025, 3, 2))
    quote = statutory_interest(*args)
    assert quote.total == D("1027.40")
    assert quote.reason == ("Interest 12.50 % p.a. (NO B2B: policy rate 4.50 % + 8) on"
                            " 100,000.00 NOK for 30 days (2025-02-01..2025-03-02) = 1,027.40 NOK")
    assert statutory_interest(*args, b2c=True).total == D("1027.40")


def test_no_second_half_years_are_unverified_and_2026_is_not_covered() -> None:
    """NOK 1,000 due 2024-06-30, as of 2024-07-31: 31 days x 125 / 365 = 10.6164383 -> 10.62."""
    args = ("NO", debt("1000", "NOK"), date(2024, 6, 30), date(2024, 7, 31))
    with pytest.raises(RateUnverified,
                       match=re.escape("NO statutory rate for 2024-07-01..2024-12-31")):
        statutory_interest(*args)
    assert statutory_interest(*args, allow_unverified=True).total == D("10.62")
    with pytest.raises(RateNotCovered,
                       match=re.escape("2026-01-01..2026-06-30 to rules/rates/no.json")):
        statutory_interest("NO", debt("1000", "NOK"), date(2025, 12, 31), date(2026, 1, 1),
                           allow_unverified=True)


def test_de_two_table_rows_with_the_same_rate_are_still_two_segments() -> None:
    """EUR 1,000 due 2025-12-30, as of 2026-01-02: 1 day in 2025, 2 in 2026, each its own row.

    3 days x 1,000 x 10.27 % / 365 = 308.10 / 365 = 0.8441095... -> 0.84
    """
    quote = statutory_interest("DE", debt("1000"), date(2025, 12, 30), date(2026, 1, 2))
    assert [(s.first_day, s.days) for s in quote.segments] == [(date(2025, 12, 31), 1),
                                                                (date(2026, 1, 1), 2)]
    assert quote.total == D("0.84")


# ----------------------------------------------------------------------------- conventions


def test_days_run_from_the_day_after_the_due_date_up_to_and_including_as_of() -> None:
    """EUR 36,500 at 10.27 % is 10.27 EUR a day, which makes the day count visible."""
    due = date(2026, 1, 1)
    assert statutory_interest("DE", debt("36500"), due, due).total == D("0.00")
    assert statutory_interest("DE", debt("36500"), due, date(2025, 12, 1)).segments == ()
    assert statutory_interest("DE", debt("36500"), due, date(2026, 1, 2)).total == D("10.27")
    assert statutory_interest("DE", debt("36500"), due, date(2026, 1, 11)).total == D("102.70")


def test_a_part_payment_reduces_the_base_from_its_date() -> None:
    """EUR 1,000 due 2026-01-01, EUR 400 paid 2026-01-11, as of 2026-01-31.

    2026-01-02..01-10:  9 days on 1,000: 1,000 x 10.27 % x  9 / 365 = 2.5323287...
    2026-01-11..01-31: 21 days on   600:   600 x 10.27 % x 21 / 365 = 3.5452602...
    total 6.0775890... -> 6.08: the paid 400 earns nothing from its payment date.
    """
    quote = statutory_interest("DE", debt("1000", "EUR", (date(2026, 1, 11), "400")),
                               date(2026, 1, 1), date(2026, 1, 31))
    assert segments(quote) == [
        (date(2026, 1, 2), date(2026, 1, 10), 9, D("1000"), D("10.27")),
        (date(2026, 1, 11), date(2026, 1, 31), 21, D("600"), D("10.27"))]
    assert quote.total == D("6.08")
    assert "on 600.00 EUR for 21 days (2026-01-11..2026-01-31)" in quote.reason


def test_payments_before_on_and_after_the_window() -> None:
    due, as_of = date(2026, 1, 1), date(2026, 1, 31)

    def total(*payments: tuple[date, str]) -> Decimal:
        return statutory_interest("DE", debt("36500", "EUR", *payments), due, as_of).total

    assert total() == D("308.10")  # 30 days x 10.27
    assert total((date(2025, 12, 20), "36500")) == D("0.00")  # paid early
    assert total((date(2026, 1, 2), "36500")) == D("0.00")  # paid the day after: no full day
    assert total((date(2026, 1, 3), "36500")) == D("10.27")  # one day late
    assert total((date(2026, 1, 31), "18250")) == D("302.97")  # 29 x 10.27 + 5.135
    assert total((date(2026, 2, 1), "36500")) == D("308.10")  # after as_of: not yet
    assert total((date(2026, 1, 10), "50000")) == D("82.16")  # overpaid: 8 days, then none
    # Two payments on one day count together; order of the tuple does not matter.
    assert (total((date(2026, 1, 21), "500"), (date(2026, 1, 11), "1000"),
                  (date(2026, 1, 21), "500"))
            == total((date(2026, 1, 11), "1000"), (date(2026, 1, 21), "1000")))


def test_nothing_owed_needs_no_rate() -> None:
    """GBP 1,000 due 2024-05-31, paid 2024-06-20; as of 2024-09-30, past the covered half-year.

    2024-06-01..06-19: 19 days x 1,000 x 13.25 % / 365 = 2,517.50 / 365 = 6.8972602... -> 6.90;
    after that nothing is owed, so the missing Jul-Dec 2024 row is not needed.
    """
    quote = statutory_interest("GB", debt("1000", "GBP", (date(2024, 6, 20), "1000")),
                               date(2024, 5, 31), date(2024, 9, 30))
    assert quote.total == D("6.90")
    assert len(quote.segments) == 1


def test_outstanding_runs() -> None:
    runs = outstanding_runs(D("100"), [(date(2026, 1, 5), D("30")), (date(2026, 1, 1), D("10")),
                                       (date(2026, 1, 9), D("80"))],
                            date(2026, 1, 2), date(2026, 1, 10))
    assert runs == [(date(2026, 1, 2), date(2026, 1, 4), D("90")),
                    (date(2026, 1, 5), date(2026, 1, 8), D("60")),
                    (date(2026, 1, 9), date(2026, 1, 10), D("0"))]
    assert outstanding_runs(D("100"), [], date(2026, 1, 2), date(2026, 1, 1)) == []


def test_money_rounds_half_up_to_the_minor_unit() -> None:
    assert round_money(D("0.125"), "EUR") == D("0.13")
    assert round_money(D("0.135"), "EUR") == D("0.14")
    assert round_money(D("1234.5"), "JPY") == D("1235")
    assert round_money(D("1.0005"), "KWD") == D("1.001")
    assert format_money(D("1234567.891"), "GBP") == "1,234,567.89 GBP"
    assert format_money(D("1234567.5"), "JPY") == "1,234,568 JPY"


def test_a_local_decimal_context_does_not_change_a_figure() -> None:
    import decimal

    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_DOWN)):
        quote = statutory_interest("DE", debt("1000"), date(2026, 1, 1), date(2026, 2, 1))
    assert quote.total == D("8.72")


# ----------------------------------------------------------------------------- compensation


@pytest.mark.parametrize(("amount", "expected"), [
    ("0.01", "40.00"), ("999.99", "40.00"), ("1000.00", "70.00"), ("9999.99", "70.00"),
    ("10000.00", "100.00"), ("2500000", "100.00"),
])
def test_gb_compensation_bands(amount: str, expected: str) -> None:
    """GB: GBP 40 below 1,000; 70 from 1,000 to 9,999.99; 100 from 10,000."""
    compensation = statutory_compensation("GB", D(amount), "GBP", date(2026, 3, 1))
    assert compensation is not None
    assert (compensation.amount, compensation.currency) == (D(expected), "GBP")
    assert compensation.fx_rate is None


def test_gb_compensation_reason_and_consumers() -> None:
    compensation = statutory_compensation("GB", D("1000"), "GBP", date(2026, 3, 1))
    assert compensation is not None
    assert compensation.reason == (
        "GB statutory compensation 70.00 GBP (debt of at least 1,000.00 GBP and below"
        " 10,000.00 GBP; debt 1,000.00 GBP)")
    with pytest.raises(NotApplicable, match="business debts only"):
        statutory_compensation("GB", D("1000"), "GBP", date(2026, 3, 1), b2c=True)
    assert statutory_compensation("GB", D("0"), "GBP", date(2026, 3, 1)) is None


def test_gb_compensation_for_a_debt_in_euros_needs_a_rate() -> None:
    """EUR 1,170 at GBP/EUR 1.17 is GBP 1,000: the 70 band; in EUR 70 x 1.17 = 81.90."""
    with pytest.raises(FxRateRequired, match=r"pass fx=\{\('EUR', 'GBP'\): rate\}"):
        statutory_compensation("GB", D("1170"), "EUR", date(2026, 3, 1))
    fx = {("GBP", "EUR"): D("1.17")}
    in_pounds = statutory_compensation("GB", D("1170"), "EUR", date(2026, 3, 1), fx=fx)
    assert in_pounds is not None and (in_pounds.amount, in_pounds.currency) == (D("70.00"), "GBP")
    below = statutory_compensation("GB", D("1169.99"), "EUR", date(2026, 3, 1), fx=fx)
    assert below is not None and below.amount == D("40.00")
    in_euros = statutory_compensation("GB", D("1170"), "EUR", date(2026, 3, 1), fx=fx,
                                      in_currency="EUR")
    assert in_euros is not None
    assert (in_euros.amount, in_euros.currency, in_euros.fx_rate) == (D("81.90"), "EUR",
                                                                      D("1.17"))
    assert (in_euros.statutory_amount, in_euros.statutory_currency) == (D("70.00"), "GBP")


@pytest.mark.parametrize(("amount", "expected"), [
    ("4999.99", "40.00"), ("5000.00", "40.00"), ("5000.01", "70.00"), ("49999.99", "70.00"),
    ("50000.00", "100.00"),
])
def test_pl_compensation_bands_in_pln_amounts_in_eur(amount: str, expected: str) -> None:
    """PL: EUR 40 up to PLN 5,000; 70 above it and below 50,000; 100 from PLN 50,000."""
    compensation = statutory_compensation("PL", D(amount), "PLN", date(2024, 3, 31))
    assert compensation is not None
    assert (compensation.amount, compensation.currency) == (D(expected), "EUR")


def test_pl_compensation_in_pln_needs_the_callers_eur_pln_rate() -> None:
    """PLN 5,000 due 2024-03-31 at the caller's NBP rate 4.2692: 40 x 4.2692 = 170.768 -> 170.77.
    """
    with pytest.raises(FxRateRequired) as error:
        statutory_compensation("PL", D("5000"), "PLN", date(2024, 3, 31), in_currency="PLN")
    assert str(error.value) == (
        "PL compensation is 40.00 EUR and was asked for in PLN: pass fx={('EUR', 'PLN'): rate}"
        " (the EUR/PLN rate; no rate is guessed)")
    compensation = statutory_compensation("PL", D("5000"), "PLN", date(2024, 3, 31),
                                          in_currency="PLN", fx={("EUR", "PLN"): D("4.2692")})
    assert compensation is not None
    assert (compensation.amount, compensation.currency) == (D("170.77"), "PLN")
    assert compensation.reason == (
        "PL statutory compensation 40.00 EUR (debt of up to 5,000.00 PLN; debt 5,000.00 PLN)"
        " = 170.77 PLN at EUR/PLN 4.2692")


def test_pl_compensation_for_a_debt_in_euros_is_banded_in_pln() -> None:
    """EUR 1,171.17 x 4.2692 = PLN 4,999.958964: 40; EUR 1,171.18 = PLN 5,000.001656: 70."""
    fx = {("EUR", "PLN"): D("4.2692")}
    low = statutory_compensation("PL", D("1171.17"), "EUR", date(2024, 3, 31), fx=fx)
    high = statutory_compensation("PL", D("1171.18"), "EUR", date(2024, 3, 31), fx=fx)
    assert low is not None and high is not None
    assert (low.amount, high.amount) == (D("40.00"), D("70.00"))
    with pytest.raises(NotApplicable):
        statutory_compensation("PL", D("100"), "PLN", date(2024, 3, 31), b2c=True)


def test_eu_and_de_compensation() -> None:
    de = statutory_compensation("DE", D("12.50"), "EUR", date(2026, 1, 1))
    eu = statutory_compensation("EU", D("1000000"), "EUR", date(2026, 1, 1))
    assert de is not None and eu is not None
    assert (de.amount, eu.amount) == (D("40.00"), D("40.00"))
    assert de.reason == "DE statutory compensation 40.00 EUR (any debt; debt 12.50 EUR)"
    with pytest.raises(NotApplicable, match="not a consumer"):
        statutory_compensation("DE", D("100"), "EUR", date(2026, 1, 1), b2c=True)


@pytest.mark.parametrize(("due", "expected"), [
    (date(2024, 6, 30), "460.00"), (date(2024, 12, 30), "460.00"),
    (date(2024, 12, 31), "470.00"),  # the first day of default is 2025-01-01
    (date(2025, 6, 30), "470.00"),
])
def test_no_standard_compensation_is_dated(due: date, expected: str) -> None:
    compensation = statutory_compensation("NO", D("10000"), "NOK", due)
    assert compensation is not None and compensation.amount == D(expected)


def test_no_standard_compensation_for_2026_is_not_covered() -> None:
    with pytest.raises(RateNotCovered) as error:
        statutory_compensation("NO", D("10000"), "NOK", date(2025, 12, 31))
    assert str(error.value) == (
        "No NO compensation amount for 2026-01-01 (a debt due 2025-12-31): add a compensation"
        " row for 2026-01-01..2026-12-31 to rules/rates/no.json.")


def test_no_reminder_fee_maximum_is_dated() -> None:
    assert reminder_fee_cap("NO", date(2024, 12, 31)) == (D("35.00"), "NOK")
    with pytest.raises(RateNotCovered,
                       match=re.escape("2025-01-01..2025-12-31 to rules/rates/no.json")):
        reminder_fee_cap("NO", date(2025, 1, 1))


def test_each_refusal_says_it_plainly_to_an_owner_without_files_or_options() -> None:
    """The messages name the file to extend, for whoever keeps the tables; `plain` is what an
    owner reads (the activity log), and the fields let a page word it in their language."""
    refusals: list[Exception] = []
    for call in (
            lambda: statutory_interest("GB", debt("10000", "GBP"), date(2026, 9, 30),
                                       date(2026, 10, 31)),
            lambda: statutory_interest("GB", debt("1000", "GBP"), date(2026, 12, 15),
                                       date(2027, 1, 10), allow_unverified=True),
            lambda: statutory_compensation("NO", D("10000"), "NOK", date(2025, 12, 31)),
            lambda: reminder_fee_cap("NO", date(2025, 1, 1)),
            lambda: statutory_interest("XX", debt("1"), date(2026, 1, 1), date(2026, 2, 1)),
            lambda: statutory_compensation("PL", D("1000"), "EUR", date(2024, 3, 1))):
        with pytest.raises((RateNotCovered, NotApplicable, FxRateRequired)) as error:
            call()
        refusals.append(error.value)
    plain = [r.plain for r in refusals]  # type: ignore[attr-defined]
    assert plain[:5] == [
        "The GB statutory interest rate for 2026-07-01..2026-12-31 (11.75 % a year for business"
        " debts) is not yet confirmed by a second source: nothing is charged at that rate until"
        " an owner or admin confirms it or chooses the last verified rate.",
        "There is no GB statutory interest rate for 2027-01-01..2027-06-30 yet, so nothing is"
        " charged for it.",
        "There is no NO statutory compensation for 2026-01-01..2026-12-31 yet, so nothing is"
        " charged for it.",
        "There is no NO reminder-fee maximum for 2025-01-01..2025-12-31 yet, so nothing is"
        " charged for it.",
        "There are no statutory rates for XX (there are for DE, EU, GB, NO, PL)."]
    assert "PLN/EUR exchange rate" in plain[5] or "EUR/PLN exchange rate" in plain[5]
    for text in plain:
        assert ".json" not in text and "allow_unverified" not in text and "--" not in text
        assert "fx=" not in text and "tables=" not in text
    unverified = refusals[0]
    assert isinstance(unverified, RateUnverified)
    assert (unverified.jurisdiction, unverified.start, unverified.end, unverified.rate,
            unverified.figure) == ("GB", date(2026, 7, 1), date(2026, 12, 31), D("11.75"),
                                   "interest")
