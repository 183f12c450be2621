"""`dunwell fees quote`, driven through click's CliRunner on the group itself: no Flask app.

Figures checked by hand (actual/365; interest from the day after the due date up to and
including as-of; only the total is rounded, half-up):

- GB, 10,000 GBP due 2026-01-01 as of 2026-03-02: 60 days (Jan 2-31 = 30, Feb = 28,
  Mar 1-2 = 2) at the shipped row for 2026 H1 (Bank Rate 3.75 % on 31 Dec 2025, after the cut
  of 18 Dec 2025 -> 11.75 %): 10,000 x 11.75 % x 60 / 365 = 70,500 / 365 = 193.1506...
  -> 193.15 GBP, plus 100 GBP compensation = 293.15 GBP.
- GB 2027: the shipped table ends on 2026-12-31, and its 2026 H2 row is unverified (news
  reports of the June 2026 decision only). The operator-table test adds a 2027 H1 row at
  base 3.75 (a fixture, flagged unverified): 10,000 GBP due 2027-01-01 as of 2027-03-02,
  60 days (Jan 2-31 = 30, Feb = 28, Mar 1-2 = 2): 193.15 GBP again.
- GB, 10,000 GBP due 2024-01-01 as of 2024-03-01, the shipped verified row (BoE base 5.25 %
  on 31 Dec 2023 -> 13.25 %): 60 days (Jan 2-31 = 30, Feb 2024 = 29, Mar 1 = 1);
  10,000 x 13.25 % x 60 / 365 = 79,500 / 365 = 217.8082... -> 217.81 GBP. Compensation: the
  band "10,000 or more" -> 100 GBP; total 317.81 GBP.
- DE consumer, 10,000 EUR due 2026-01-01 as of 2026-03-02, 4,000 paid on 2026-02-01: base
  1.27 % + 5 = 6.27 %. Jan 2-31 (30 days) on 10,000 = 51.5342...; Feb 1-Mar 2 (30 days) on
  6,000 = 30.9205...; 480,000 x 6.27 / 36,500 = 82.4547... -> 82.45 EUR. The EUR 40
  Pauschale is for business debtors only: no compensation.
- DE business, 10,000 EUR due 2025-12-01 as of 2026-01-30, across the rows of 2025 H2 and
  2026 H1 (both base 1.27 % + 9 = 10.27 %): 30 + 30 days; 10,000 x 10.27 % x 60 / 365 =
  168.8219... -> 168.82 EUR, plus 40 EUR compensation = 208.82 EUR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.cli import AppGroup

from app.fees_cli import fees_group

RATES = Path(__file__).resolve().parents[2] / "rules" / "rates"


def quote(*args: str) -> Result:
    return CliRunner().invoke(fees_group, ["quote", *args])


def as_json(*args: str) -> dict[str, Any]:
    result = quote(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def refused(result: Result) -> str:
    """Exit status 2, nothing on stdout, one line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


GB_2026 = ("--jurisdiction", "GB", "--amount", "10000", "--currency", "GBP",
           "--due", "2026-01-01", "--as-of", "2026-03-02")
GB_2027 = ("--jurisdiction", "GB", "--amount", "10000", "--currency", "GBP",
           "--due", "2027-01-01", "--as-of", "2027-03-02")
GB_2024 = ("--jurisdiction", "GB", "--amount", "10000", "--currency", "GBP",
           "--due", "2024-01-01", "--as-of", "2024-03-01")


# ----------------------------------------------------------------------------- figures


def test_gb_business_debt_in_the_shipped_verified_half_year() -> None:
    result = quote(*GB_2024)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "GB statutory interest (Late Payment of Commercial Debts (Interest) Act 1998),"
        " business debt",
        "  10,000.00 GBP due 2024-01-01, as of 2024-03-01",
        "  2024-01-02..2024-03-01   60 days on 10,000.00 GBP at 13.25 % p.a. (BoE base rate"
        " 5.25 % + 8, rate of 2024-01-01..2024-06-30)  217.81 GBP",
        "  rate 2024-01-01..2024-06-30: Base rate 5.25 % on 31 Dec 2023 -> 13.25 % for Jan-Jun"
        " 2024 (legislation.gov.uk, SI 1998/2480 note; reference note of 2026-11-22)",
        "interest: 217.81 GBP (actual/365, rounded once on the total)",
        "compensation: 100.00 GBP (debt of at least 10,000.00 GBP)",
        "  Fixed sums of the Act, per debt: GBP 40 below 1,000; 70 from 1,000 to 9,999.99;"
        " 100 from 10,000 (legislation.gov.uk)",
        "total: 317.81 GBP",
    ]


def test_gb_2026_in_the_shipped_table() -> None:
    data = as_json(*GB_2026)
    [segment] = data["interest"]["segments"]
    assert (segment["from"], segment["to"], segment["days"], segment["annual_rate"],
            segment["reference_rate"], segment["margin"]) == (
        "2026-01-02", "2026-03-02", 60, "11.75", "3.75", "8")
    assert segment["rate_period"]["unverified"] is False
    assert (data["interest"]["total"], data["compensation"]["amount"], data["total"]) == (
        "193.15", "100.00", "293.15")


def test_gb_after_the_shipped_table_is_refused() -> None:
    assert refused(quote(*GB_2027)) == (
        "Error: No GB statutory rate for 2027-01-02 (the table covers 2024-01-01..2026-12-31):"
        " add a row for 2027-01-01..2027-06-30 to rules/rates/gb.json.")


@pytest.fixture
def operator_rates(tmp_path: Path) -> Path:
    """A copy of gb.json with a 2027 H1 row, as an operator would add one (flagged unverified:
    a fixture, not a confirmed figure)."""
    table = json.loads((RATES / "gb.json").read_text(encoding="utf-8"))
    table["periods"].append({
        "from": "2027-01-01", "to": "2027-06-30", "reference_rate": "3.75",
        "source": "test fixture: a Bank Rate of 3.75 % assumed, not a published figure",
        "unverified": True})
    (tmp_path / "gb.json").write_text(json.dumps(table), encoding="utf-8")
    return tmp_path


def test_gb_2027_with_an_operator_table(operator_rates: Path) -> None:
    data = as_json(*GB_2027, "--rates-dir", str(operator_rates), "--allow-unverified")
    assert data["interest"]["total"] == "193.15"
    [segment] = data["interest"]["segments"]
    assert (segment["from"], segment["to"], segment["days"], segment["annual_rate"],
            segment["reference_rate"], segment["margin"]) == (
        "2027-01-02", "2027-03-02", 60, "11.75", "3.75", "8")
    assert segment["rate_period"]["unverified"] is True
    assert data["compensation"]["amount"] == "100.00"
    assert data["total"] == "293.15"


def test_an_unverified_row_needs_allow_unverified(operator_rates: Path) -> None:
    line = refused(quote(*GB_2027, "--rates-dir", str(operator_rates)))
    assert "is unverified" in line and line.endswith("or give --allow-unverified.")


def test_de_consumer_debt_with_a_part_payment() -> None:
    data = as_json("--jurisdiction", "DE", "--amount", "10000", "--currency", "EUR",
                   "--due", "2026-01-01", "--as-of", "2026-03-02", "--b2c",
                   "--paid", "2026-02-01:4000")
    assert data["b2c"] is True
    assert data["debt"]["payments"] == [{"date": "2026-02-01", "amount": "4000.00"}]
    assert [(s["from"], s["to"], s["days"], s["base"], s["annual_rate"], s["margin"])
            for s in data["interest"]["segments"]] == [
        ("2026-01-02", "2026-01-31", 30, "10000.00", "6.27", "5"),
        ("2026-02-01", "2026-03-02", 30, "6000.00", "6.27", "5")]
    assert data["interest"]["total"] == "82.45"
    assert data["compensation"] is None
    assert data["compensation_note"] == (
        "none for a consumer debt: the EUR 40 Pauschale of BGB § 288(5) is owed only by a"
        " debtor who is not a consumer")
    assert data["total"] == "82.45"


# ----------------------------------------------------------------------------- refusals


def test_a_period_the_table_does_not_cover_is_refused() -> None:
    """GB's table starts in 2024: a debt from before it names the first uncovered day."""
    line = refused(quote("--jurisdiction", "GB", "--amount", "5000", "--currency", "GBP",
                         "--due", "2023-12-15", "--as-of", "2024-02-01"))
    assert line == (
        "Error: No GB statutory rate for 2023-12-16 (the table covers 2024-01-01..2026-12-31):"
        " add a row for 2023-07-01..2023-12-31 to rules/rates/gb.json.")


def test_a_consumer_is_refused_under_the_gb_business_only_law() -> None:
    assert refused(quote(*GB_2024, "--b2c")) == (
        "Error: GB: the Late Payment Act applies to business debts only; no statutory"
        " interest for a consumer debt")


def test_an_unknown_jurisdiction_is_refused() -> None:
    line = refused(quote("--jurisdiction", "XX", "--amount", "100", "--currency", "EUR",
                         "--due", "2026-01-01", "--as-of", "2026-02-01"))
    assert line == ("Error: No statutory table for jurisdiction 'XX' (known: DE, EU, GB, NO,"
                    " PL): add rules/rates/xx.json or give --rates-dir with one.")


def test_compensation_in_another_currency_needs_a_rate() -> None:
    line = refused(quote("--jurisdiction", "GB", "--amount", "10000", "--currency", "EUR",
                         "--due", "2024-01-01", "--as-of", "2024-03-01"))
    assert line.endswith("give --fx EUR/GBP=RATE (the EUR/GBP rate; no rate is guessed)")


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--amount", "abc", "--amount 'abc' is not an amount"),
    ("--amount", "10,000", "--amount '10,000' is not an amount"),
    ("--amount", "-5", "--amount '-5' must be an amount above 0"),
    ("--amount", "0", "--amount '0' must be an amount above 0"),
    ("--amount", "NaN", "--amount 'NaN' must be an amount above 0"),
    ("--amount", "10.005", "--amount '10.005' has more decimals than GBP has (2)"),
    ("--amount", "1e20", "--amount '1e20' is too large to be a debt"),
    ("--currency", "pounds", "--currency 'POUNDS' is not an ISO 4217 code"),
    ("--due", "2026-02-30", "--due '2026-02-30' is not a date written as YYYY-MM-DD"),
    ("--paid", "2024-02-01", "--paid '2024-02-01' must be DATE:AMOUNT"),
    ("--paid", "2024-02-01:-1", "--paid amount '-1' must be an amount above 0"),
    ("--fx", "EURGBP=1", "--fx 'EURGBP=1' must be BASE/QUOTE=RATE"),
])
def test_bad_input_is_one_line_and_exit_status_2(option: str, value: str, says: str) -> None:
    args = dict(zip(GB_2024[::2], GB_2024[1::2], strict=True))
    args[option] = value
    line = refused(quote(*(part for pair in args.items() for part in pair)))
    assert line.startswith(f"Error: {says}")


# ----------------------------------------------------------------------------- JSON shape


def test_json_shape_across_two_rate_periods() -> None:
    data = as_json("--jurisdiction", "de", "--amount", "10000", "--currency", "eur",
                   "--due", "2025-12-01", "--as-of", "2026-01-30")
    assert list(data) == ["jurisdiction", "law", "b2c", "debt", "as_of", "interest",
                          "compensation", "compensation_note", "total"]
    assert data["jurisdiction"] == "DE" and data["b2c"] is False
    assert data["debt"] == {"amount": "10000.00", "currency": "EUR", "due": "2025-12-01",
                            "payments": []}
    assert data["as_of"] == "2026-01-30"
    interest = data["interest"]
    assert list(interest) == ["total", "currency", "exact_total", "day_count", "segments",
                              "reason"]
    assert (interest["total"], interest["currency"], interest["day_count"]) == (
        "168.82", "EUR", "actual/365")
    assert interest["exact_total"].startswith("168.8219178")
    first, second = interest["segments"]
    assert list(first) == ["from", "to", "days", "base", "annual_rate", "reference_rate_name",
                           "reference_rate", "margin", "rate_period", "exact_amount"]
    assert (first["from"], first["to"], first["days"], first["rate_period"]["from"],
            first["rate_period"]["to"]) == ("2025-12-02", "2025-12-31", 30, "2025-07-01",
                                            "2025-12-31")
    assert (second["from"], second["to"], second["days"], second["rate_period"]["from"],
            second["rate_period"]["to"]) == ("2026-01-01", "2026-01-30", 30, "2026-01-01",
                                             "2026-06-30")
    assert {(s["annual_rate"], s["reference_rate_name"], s["reference_rate"], s["margin"])
            for s in (first, second)} == {("10.27", "base", "1.27", "9")}
    assert set(first["rate_period"]) == {"from", "to", "source", "unverified"}
    assert data["compensation"] == {
        "amount": "40.00", "currency": "EUR", "band": "any debt", "statutory_amount": "40.00",
        "statutory_currency": "EUR", "fx_rate": None,
        "source": ("BGB § 288(5): EUR 40 Pauschale per claim when the debtor is not a consumer"
                   " (haufe.de)"),
        "unverified": False,
        "reason": "DE statutory compensation 40.00 EUR (any debt; debt 10,000.00 EUR)"}
    assert data["compensation_note"] is None
    assert data["total"] == "208.82"
    # Every figure is a string: a float never carries money.
    assert all(isinstance(s[key], str) for s in interest["segments"]
               for key in ("base", "annual_rate", "exact_amount"))


def test_nothing_is_owed_before_the_debt_is_late() -> None:
    data = as_json("--jurisdiction", "GB", "--amount", "500", "--currency", "GBP",
                   "--due", "2024-03-01", "--as-of", "2024-03-01")
    assert data["interest"]["total"] == "0.00" and data["interest"]["segments"] == []
    assert data["compensation"] is None
    assert data["compensation_note"] == "not late on 2024-03-01: due 2024-03-01"


def test_the_group_needs_no_flask_app() -> None:
    """A plain click group: registered anywhere, it is not wrapped in an app context."""
    assert not isinstance(fees_group, AppGroup)
    assert fees_group.name == "fees" and "quote" in fees_group.commands


def test_dunwell_fees_quote_runs_before_anything_is_configured() -> None:
    from app.cli import cli

    result = CliRunner().invoke(cli, [
        "fees", "quote", "--jurisdiction", "DE", "--amount", "1000", "--currency", "EUR",
        "--due", "2026-01-01", "--as-of", "2026-03-02"], env={"SECRET_KEY": ""})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "total: 56.88 EUR"  # 16.88 interest + 40.00
