from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from rules import OrgCalendar

UK = OrgCalendar("Europe/London", "GB")


def test_uk_christmas_and_the_substitute_boxing_day() -> None:
    # 2026: Christmas is a Friday, Boxing Day a Saturday -> Monday 28th is the bank holiday.
    assert not UK.is_business_day(date(2026, 12, 25))
    assert not UK.is_business_day(date(2026, 12, 28))
    assert UK.next_business_day(date(2026, 12, 24)) == date(2026, 12, 24)
    assert UK.next_business_day(date(2026, 12, 25)) == date(2026, 12, 29)


def test_norway_constitution_day_and_israel_weekend() -> None:
    norway = OrgCalendar("Europe/Oslo", "NO")
    assert not norway.is_business_day(date(2027, 5, 17))  # a Monday
    israel = OrgCalendar("Asia/Jerusalem", "IL")
    assert not israel.is_business_day(date(2026, 11, 27))  # Friday
    assert not israel.is_business_day(date(2026, 11, 28))  # Saturday
    assert israel.is_business_day(date(2026, 11, 29))  # Sunday


def test_local_times_across_daylight_saving_changes() -> None:
    assert UK.at_local(date(2026, 3, 28), time(9)) == datetime(2026, 3, 28, 9, tzinfo=UTC)
    assert UK.at_local(date(2026, 3, 30), time(9)) == datetime(2026, 3, 30, 8, tzinfo=UTC)
    # 01:30 does not exist on 29 March 2026 in London: it moves forward to 02:30 BST.
    assert UK.at_local(date(2026, 3, 29), time(1, 30)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 01:30 happens twice on 25 October 2026: the first (BST) is taken.
    assert UK.at_local(date(2026, 10, 25), time(1, 30)) == datetime(2026, 10, 25, 0, 30,
                                                                     tzinfo=UTC)


def test_today_is_the_local_date() -> None:
    oslo = OrgCalendar("Europe/Oslo", "NO")
    assert oslo.today(datetime(2026, 11, 24, 23, 30, tzinfo=UTC)) == date(2026, 11, 25)
    with pytest.raises(ValueError, match="aware"):
        oslo.today(datetime(2026, 11, 24, 23, 30))


def test_unknown_zone_and_unknown_country() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        OrgCalendar("Mars/Olympus", "GB")
    nowhere = OrgCalendar("UTC", "ZZ")
    assert nowhere.is_business_day(date(2026, 12, 25))  # weekends only
    assert not nowhere.is_business_day(date(2026, 12, 26))
