from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from rules import OrgCalendar

UK = OrgCalendar("Europe/London", "GB")


def test_uk_christmas_and_the_substitute_boxing_day() -> None:
    # 2026: Christmas is a Friday, Boxing Day a Saturday -> Monday 28th is the bank holiday.
    assert UK.is_business_day(date(2026, 12, 24))
    assert not UK.is_business_day(date(2026, 12, 25))
    assert not UK.is_business_day(date(2026, 12, 26))
    assert not UK.is_business_day(date(2026, 12, 28))
    assert UK.is_business_day(date(2026, 12, 29))
    assert UK.next_business_day(date(2026, 12, 24)) == date(2026, 12, 24)
    assert UK.next_business_day(date(2026, 12, 25)) == date(2026, 12, 29)


def test_uk_easter_and_new_year_across_the_year_end() -> None:
    # Good Friday 3 April 2026 (Easter Monday is not UK-wide: see the subdivision test).
    assert UK.next_business_day(date(2026, 4, 3)) == date(2026, 4, 6)
    # New Year's Day 2028 is a Saturday: the bank holiday moves to Monday 3 January.
    assert UK.next_business_day(date(2027, 12, 31)) == date(2027, 12, 31)
    assert UK.next_business_day(date(2028, 1, 1)) == date(2028, 1, 4)


def test_norway_constitution_day() -> None:
    norway = OrgCalendar("Europe/Oslo", "NO")
    assert not norway.is_business_day(date(2027, 5, 17))  # a Monday
    assert norway.next_business_day(date(2027, 5, 15)) == date(2027, 5, 18)
    assert UK.is_business_day(date(2027, 5, 17))


def test_israel_rests_on_friday_and_saturday() -> None:
    israel = OrgCalendar("Asia/Jerusalem", "IL")
    assert israel.weekend == frozenset({4, 5})
    assert not israel.is_business_day(date(2026, 11, 27))  # Friday
    assert not israel.is_business_day(date(2026, 11, 28))  # Saturday
    assert israel.is_business_day(date(2026, 11, 29))  # Sunday
    assert israel.next_business_day(date(2026, 11, 27)) == date(2026, 11, 29)
    assert not israel.is_business_day(date(2026, 9, 21))  # Yom Kippur, a Monday


def test_other_countries_follow_the_holidays_package() -> None:
    germany = OrgCalendar("Europe/Berlin", "DE")
    assert not germany.is_business_day(date(2026, 4, 6))  # Easter Monday
    assert not germany.is_business_day(date(2026, 5, 1))
    poland = OrgCalendar("Europe/Warsaw", "PL")
    assert not poland.is_business_day(date(2026, 11, 11))  # Independence Day, a Wednesday
    us = OrgCalendar("America/New_York", "US")
    assert not us.is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert us.next_business_day(date(2026, 7, 3)) == date(2026, 7, 6)  # 4 July observed Fri


def test_country_codes_are_normalised() -> None:
    lower = OrgCalendar("Europe/London", " gb ")
    assert lower.country == "GB"
    assert not lower.is_business_day(date(2026, 12, 28))


def test_local_times_across_daylight_saving_changes() -> None:
    assert UK.at_local(date(2026, 3, 28), time(9)) == datetime(2026, 3, 28, 9, tzinfo=UTC)
    assert UK.at_local(date(2026, 3, 29), time(9)) == datetime(2026, 3, 29, 8, tzinfo=UTC)
    assert UK.at_local(date(2026, 10, 24), time(9)) == datetime(2026, 10, 24, 8, tzinfo=UTC)
    assert UK.at_local(date(2026, 10, 25), time(9)) == datetime(2026, 10, 25, 9, tzinfo=UTC)
    assert UK.at_local(date(2026, 10, 25), time(9)).tzinfo is UTC


def test_a_nonexistent_local_time_moves_forward_and_an_ambiguous_one_takes_the_first() -> None:
    # 01:30 does not exist on 29 March 2026 in London: it becomes 02:30 BST (01:30 UTC).
    assert UK.at_local(date(2026, 3, 29), time(1, 30)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 01:30 happens twice on 25 October 2026: the first (BST, 00:30 UTC) is taken...
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert UK.at_local(date(2026, 10, 25), time(1, 30)) == first
    # ...even when the time asks for the second one.
    assert UK.at_local(date(2026, 10, 25), time(1, 30, fold=1)) == first


def test_a_time_with_an_offset_is_read_as_wall_time_in_the_org_zone() -> None:
    tokyo = time(9, tzinfo=timezone(timedelta(hours=9)))
    assert UK.at_local(date(2026, 7, 1), tokyo) == datetime(2026, 7, 1, 8, tzinfo=UTC)


def test_today_is_the_local_date() -> None:
    oslo = OrgCalendar("Europe/Oslo", "NO")
    assert oslo.today(datetime(2026, 11, 24, 22, 59, tzinfo=UTC)) == date(2026, 11, 24)
    assert oslo.today(datetime(2026, 11, 24, 23, 30, tzinfo=UTC)) == date(2026, 11, 25)
    auckland = OrgCalendar("Pacific/Auckland", "NZ")
    assert auckland.today(datetime(2026, 11, 24, 12, tzinfo=UTC)) == date(2026, 11, 25)
    with pytest.raises(ValueError, match="must be an aware datetime"):
        oslo.today(datetime(2026, 11, 24, 23, 30))


def test_unknown_zone_and_unknown_country() -> None:
    for bad in ("Mars/Olympus", "", "/etc/localtime", "Europe"):
        with pytest.raises(ValueError, match="unknown time zone"):
            OrgCalendar(bad, "GB")
    nowhere = OrgCalendar("UTC", "ZZ")
    assert nowhere.weekend == frozenset({5, 6})
    assert nowhere.is_business_day(date(2026, 12, 25))  # weekends only
    assert not nowhere.is_business_day(date(2026, 12, 26))
    assert nowhere.next_business_day(date(2026, 12, 26)) == date(2026, 12, 28)


def test_calendars_are_values() -> None:
    assert OrgCalendar("Europe/London", "gb") == UK
    assert hash(OrgCalendar("Europe/London", "GB")) == hash(UK)


def test_a_subdivision_adds_its_own_bank_holidays() -> None:
    # Easter Monday is not a bank holiday in Scotland, so the UK-wide table leaves it out.
    assert UK.is_business_day(date(2026, 4, 6))
    england = OrgCalendar("Europe/London", "GB", subdivision="eng")
    assert england.subdivision == "ENG"
    assert england.next_business_day(date(2026, 4, 3)) == date(2026, 4, 7)
    assert not england.is_business_day(date(2026, 8, 31))  # late summer bank holiday
    scotland = OrgCalendar("Europe/London", "GB", subdivision="SCT")
    assert scotland.is_business_day(date(2026, 8, 31))
    assert not scotland.is_business_day(date(2026, 8, 3))  # Scotland's summer bank holiday
    with pytest.raises(ValueError) as caught:
        OrgCalendar("Europe/London", "GB", subdivision="XX")
    assert str(caught.value) == "unknown subdivision 'XX' of GB: expected one of ENG, NIR, SCT, WLS"
    assert OrgCalendar("UTC", "ZZ", subdivision="XX").is_business_day(date(2026, 12, 25))
