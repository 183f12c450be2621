"""The collections-agency case file: a deterministic ZIP with safe names."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rules.case_file import (
    CaseAction,
    CaseFacts,
    CaseFee,
    CaseFileError,
    CaseInvoice,
    CaseMessage,
    CaseParty,
    CasePayment,
    agency_case_file,
)

PDF = b"%PDF-1.7\n% a demand letter\n%%EOF\n"
CASE = CaseFacts(
    case_date=date(2026, 3, 20),
    time_zone="Europe/Oslo",
    creditor=CaseParty(name="Fjellbekk Design AS", address=("Storgata 1", "0155 Oslo"),
                       email="regnskap@fjellbekk.example", registration="NO 912 345 678"),
    debtor=CaseParty(name="Nordlys AS", address=("Strandveien 9", "9008 Tromsø"),
                     email="faktura@nordlys.example"),
    invoice=CaseInvoice(number="INV-0007", issue_date=date(2026, 1, 1),
                        due_date=date(2026, 1, 31), currency="NOK", total=Decimal("12500.00"),
                        amount_paid=Decimal("2500.00"), amount_due=Decimal("10640.00"),
                        reference="xero:6f1c"),
    policy={"reminders": [{"offset_days": 7, "tone": "firm"}],
            "late_fee": {"kind": "reminder_fee", "amount": Decimal("35.00")},
            "starts": date(2026, 1, 1)},
    payments=(CasePayment(paid_on=date(2026, 2, 20), amount=Decimal("2000.00"),
                          method="bank transfer", reference="KID 1234"),
              CasePayment(paid_on=date(2026, 2, 10), amount=Decimal("500.00"))),
    fees=(CaseFee(charged_on=date(2026, 3, 1), kind="interest",
                  period_start=date(2026, 2, 1), period_end=date(2026, 2, 28),
                  amount=Decimal("105.00"), reason="Forsinkelsesrente 12.50 % p.a."),
          CaseFee(charged_on=date(2026, 2, 14), kind="fee", period_start=date(2026, 2, 14),
                  period_end=date(2026, 2, 14), amount=Decimal("35.00"),
                  reason="Purregebyr (first reminder)")),
    messages=(
        CaseMessage(sent_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), kind="inkassovarsel",
                    channel="email", recipient="faktura@nordlys.example",
                    subject="Inkassovarsel: faktura INV-0007", text="Dette er et inkassovarsel.",
                    html="<p>Dette er et inkassovarsel.</p>"),
        CaseMessage(sent_at=datetime(2026, 2, 7, 23, 30, tzinfo=UTC), kind="reminder",
                    channel="email", recipient="faktura@nordlys.example",
                    subject="Purring: faktura INV-0007", text="Vi minner om fakturaen.\n"),
    ),
    timeline=(
        CaseAction(at=datetime(2026, 2, 7, 23, 30, tzinfo=UTC), kind="reminder", status="sent",
                   message="Purring sent to faktura@nordlys.example"),
        CaseAction(at=datetime(2026, 2, 14, 7, 0, tzinfo=UTC), kind="fee", status="written",
                   message="Purregebyr 35.00 NOK added as a line"),
    ),
    demand_letter_pdf=PDF,
)


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # spreadsheet programs need the BOM for UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_the_zip_holds_exactly_the_expected_entries_in_order() -> None:
    data = agency_case_file(CASE)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert names == [
        "README.txt",
        "demand-letter.pdf",
        "fees.csv",
        "invoice.json",
        "messages.csv",
        "messages/001-2026-02-08-reminder.txt",  # 23:30 UTC is the next day in Oslo
        "messages/002-2026-03-02-inkassovarsel.html",
        "messages/002-2026-03-02-inkassovarsel.txt",
        "payments.csv",
        "policy.json",
        "timeline.csv",
    ]
    assert {info.date_time for info in infos} == {(2026, 3, 20, 0, 0, 0)}
    assert unzip(data)["demand-letter.pdf"] == PDF


def test_the_zip_is_byte_identical_for_equal_facts() -> None:
    again = replace(CASE, policy=dict(CASE.policy), messages=tuple(reversed(CASE.messages)))
    assert agency_case_file(CASE) == agency_case_file(again)
    assert agency_case_file(CASE) != agency_case_file(replace(CASE, case_date=date(2026, 3, 21)))


def test_csv_files_hold_payments_fees_messages_and_timeline_in_date_order() -> None:
    files = unzip(agency_case_file(CASE))
    assert rows(files["payments.csv"]) == [
        ["paid_on", "amount", "currency", "method", "reference"],
        ["2026-02-10", "500.00", "NOK", "", ""],
        ["2026-02-20", "2000.00", "NOK", "bank transfer", "KID 1234"],
    ]
    assert rows(files["fees.csv"]) == [
        ["charged_on", "kind", "period_start", "period_end", "amount", "currency", "reason"],
        ["2026-02-14", "fee", "2026-02-14", "2026-02-14", "35.00", "NOK",
         "Purregebyr (first reminder)"],
        ["2026-03-01", "interest", "2026-02-01", "2026-02-28", "105.00", "NOK",
         "Forsinkelsesrente 12.50 % p.a."],
    ]
    assert rows(files["messages.csv"]) == [
        ["number", "sent_at", "kind", "channel", "recipient", "subject", "text_file",
         "html_file"],
        ["1", "2026-02-08T00:30:00+01:00", "reminder", "email", "faktura@nordlys.example",
         "Purring: faktura INV-0007", "messages/001-2026-02-08-reminder.txt", ""],
        ["2", "2026-03-02T09:00:00+01:00", "inkassovarsel", "email", "faktura@nordlys.example",
         "Inkassovarsel: faktura INV-0007", "messages/002-2026-03-02-inkassovarsel.txt",
         "messages/002-2026-03-02-inkassovarsel.html"],
    ]
    assert rows(files["timeline.csv"]) == [
        ["at", "kind", "status", "message"],
        ["2026-02-08T00:30:00+01:00", "reminder", "sent",
         "Purring sent to faktura@nordlys.example"],
        ["2026-02-14T08:00:00+01:00", "fee", "written", "Purregebyr 35.00 NOK added as a line"],
    ]
    assert files["fees.csv"].endswith(b"\r\n")


def test_each_message_is_kept_with_its_date_channel_recipient_and_subject() -> None:
    files = unzip(agency_case_file(CASE))
    assert files["messages/001-2026-02-08-reminder.txt"].decode() == (
        "Date: 2026-02-08T00:30:00+01:00\nKind: reminder\nChannel: email\n"
        "To: faktura@nordlys.example\nSubject: Purring: faktura INV-0007\n\n"
        "Vi minner om fakturaen.\n")
    assert files["messages/002-2026-03-02-inkassovarsel.html"] == (
        b"<p>Dette er et inkassovarsel.</p>")


def test_invoice_and_policy_json_keep_decimals_as_strings() -> None:
    files = unzip(agency_case_file(CASE))
    invoice = json.loads(files["invoice.json"])
    assert invoice == {
        "as_of": "2026-03-20", "time_zone": "Europe/Oslo", "number": "INV-0007",
        "reference": "xero:6f1c", "issue_date": "2026-01-01", "due_date": "2026-01-31",
        "days_overdue": 48, "currency": "NOK", "total": "12500.00", "amount_paid": "2500.00",
        "amount_due": "10640.00", "payments_total": "2500.00", "fees_total": "140.00",
        "creditor": {"name": "Fjellbekk Design AS", "address": ["Storgata 1", "0155 Oslo"],
                     "email": "regnskap@fjellbekk.example", "phone": "",
                     "registration": "NO 912 345 678"},
        "debtor": {"name": "Nordlys AS", "address": ["Strandveien 9", "9008 Tromsø"],
                   "email": "faktura@nordlys.example", "phone": "", "registration": ""},
    }
    assert json.loads(files["policy.json"]) == {
        "late_fee": {"amount": "35.00", "kind": "reminder_fee"},
        "reminders": [{"offset_days": 7, "tone": "firm"}], "starts": "2026-01-01"}
    assert "Tromsø".encode() in files["invoice.json"]  # UTF-8, not \u escapes


def test_readme_summarises_the_case_and_lists_what_is_enclosed() -> None:
    readme = unzip(agency_case_file(CASE))["README.txt"].decode()
    for line in (
        "Prepared: 2026-03-20",
        "Creditor: Fjellbekk Design AS\n  Storgata 1\n  0155 Oslo\n"
        "  Registration: NO 912 345 678\n  Email: regnskap@fjellbekk.example",
        "Debtor: Nordlys AS\n  Strandveien 9\n  9008 Tromsø\n  Email: faktura@nordlys.example",
        "Invoice INV-0007",
        "  Reference:         xero:6f1c",
        "  Issued:            2026-01-01",
        "  Due:               2026-01-31",
        "  Days overdue:      48 (as of 2026-03-20)",
        "  Invoice total:     12,500.00 NOK",
        "  Paid:              2,500.00 NOK (2 payments)",
        "  Fees and interest: 140.00 NOK (2 charges)",
        "  Amount due:        10,640.00 NOK",
        "  payments.csv       payments received (2)",
        "  messages.csv       every reminder, letter and note sent (2), indexing messages/",
        "  demand-letter.pdf  the final demand letter as sent",
        "Dates are calendar dates in the creditor's time zone (Europe/Oslo)",
    ):
        assert line in readme


def test_without_messages_or_letter_the_zip_says_so_and_holds_no_more() -> None:
    bare = replace(CASE, messages=(), demand_letter_pdf=None, payments=(), fees=(), timeline=())
    files = unzip(agency_case_file(bare))
    assert sorted(files) == ["README.txt", "fees.csv", "invoice.json", "messages.csv",
                             "payments.csv", "policy.json", "timeline.csv"]
    assert rows(files["payments.csv"]) == [["paid_on", "amount", "currency", "method",
                                            "reference"]]
    readme = files["README.txt"].decode()
    assert "demand-letter.pdf" not in readme and "  messages/ " not in readme
    assert "Paid:              2,500.00 NOK (0 payments)" in readme


def test_hostile_kinds_cannot_escape_the_zip_root_or_forge_lines() -> None:
    hostile = CaseMessage(sent_at=datetime(2026, 3, 3, 12, 0, tzinfo=UTC),
                          kind="../../etc/passwd", channel="email",
                          recipient="=HYPERLINK(\"http://evil.example\")",
                          subject="Hello\nTo: someone-else@example.com",
                          text="body", html="<p>body</p>")
    others = (replace(hostile, kind="/absolute\\windows\\..\\x"),
              replace(hostile, kind="..", sent_at=datetime(2026, 3, 4, 12, 0, tzinfo=UTC)),
              replace(hostile, kind="ÆØÅ æøå", sent_at=datetime(2026, 3, 5, 12, 0, tzinfo=UTC)))
    files = unzip(agency_case_file(replace(CASE, messages=(hostile, *others))))
    messages = sorted(name for name in files if name.startswith("messages/"))
    assert messages == [
        "messages/001-2026-03-03-etc-passwd.html",
        "messages/001-2026-03-03-etc-passwd.txt",
        "messages/002-2026-03-03-absolute-windows-x.html",
        "messages/002-2026-03-03-absolute-windows-x.txt",
        "messages/003-2026-03-04-message.html",
        "messages/003-2026-03-04-message.txt",
        "messages/004-2026-03-05-aeoa-aeoa.html",
        "messages/004-2026-03-05-aeoa-aeoa.txt",
    ]
    for name in files:
        assert not name.startswith(("/", "\\")) and ".." not in name and "\\" not in name
        assert name.count("/") <= 1
    text = files["messages/001-2026-03-03-etc-passwd.txt"].decode()
    assert "Subject: Hello To: someone-else@example.com\n\nbody" in text
    assert "\nTo: someone-else" not in text
    # A spreadsheet must not run the recipient as a formula.
    recipient = rows(files["messages.csv"])[1][4]
    assert recipient == "'=HYPERLINK(\"http://evil.example\")"


def test_extracting_the_zip_writes_only_inside_the_target(tmp_path: Path) -> None:
    root = tmp_path / "case"
    hostile = replace(CASE.messages[0], kind="../../../../tmp/evil")
    with zipfile.ZipFile(io.BytesIO(agency_case_file(replace(CASE, messages=(hostile,))))) as zf:
        zf.extractall(root)
    written = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    assert "messages/001-2026-03-02-tmp-evil.txt" in written
    assert all(path.resolve().is_relative_to(root.resolve()) for path in root.rglob("*"))


@pytest.mark.parametrize(("changes", "message"), [
    ({"case_date": date(1979, 12, 31)}, "from 1980-01-01 on"),
    ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
    ({"timeline": (CaseAction(at=datetime(2026, 2, 1, 9, 0), kind="x", status="y"),)},
     "aware datetime"),
    ({"payments": (CasePayment(paid_on=date(2026, 2, 1), amount=1.5),)},  # type: ignore[arg-type]
     "finite Decimal"),
    ({"invoice": replace(CASE.invoice, currency="kr")}, "ISO 4217"),
    ({"policy": {"rate": object()}}, "JSON cannot hold"),
])
def test_facts_a_case_file_cannot_be_built_from_are_refused(changes: dict[str, object],
                                                            message: str) -> None:
    with pytest.raises(CaseFileError, match=message):
        agency_case_file(replace(CASE, **changes))  # type: ignore[arg-type]
