from __future__ import annotations

from datetime import date

from collect.book import calendar_for
from store.models import Organisation


def test_an_english_business_keeps_easter_monday_and_the_august_bank_holiday() -> None:
    calendar = calendar_for(Organisation(name="x", country="GB", timezone="Europe/London",
                                         base_currency="GBP"))
    assert not calendar.is_business_day(date(2027, 3, 29))  # Easter Monday
    assert not calendar.is_business_day(date(2026, 8, 31))  # Summer bank holiday
    norway = calendar_for(Organisation(name="y", country="NO", timezone="Europe/Oslo",
                                       base_currency="NOK"))
    assert not norway.is_business_day(date(2027, 5, 17))
