import datetime

import pytest

from ksef import calendar

D = datetime.date


@pytest.mark.parametrize("day", [
    D(2025, 1, 1), D(2025, 1, 6),                   # New Year, Epiphany
    D(2025, 4, 21), D(2026, 4, 6),                  # Easter Monday
    D(2025, 5, 1), D(2026, 5, 1),                   # 1 May
    D(2025, 6, 19), D(2026, 6, 4),                  # Corpus Christi (Thursday)
    D(2025, 8, 15),                                 # Assumption (a Friday in 2025)
    D(2025, 11, 11), D(2026, 11, 11),               # Independence Day
    D(2025, 12, 24), D(2025, 12, 25), D(2025, 12, 26),
    D(2026, 12, 24), D(2026, 12, 25),
])
def test_weekday_holidays_are_not_business_days(day):
    assert day.weekday() < 5, "fixture should be a weekday so only the holiday rule can exclude it"
    assert calendar.is_holiday(day)
    assert not calendar.is_business_day(day)


@pytest.mark.parametrize("day", [
    D(2025, 5, 3), D(2026, 5, 3),                   # 3 May on Sat / Sun
    D(2026, 8, 15), D(2025, 11, 1), D(2026, 11, 1), D(2026, 12, 26),
])
def test_holidays_falling_on_weekends_are_still_holidays(day):
    assert day.weekday() >= 5
    assert calendar.is_holiday(day)
    assert not calendar.is_business_day(day)


def test_christmas_eve_is_a_holiday_from_2025_only():
    assert calendar.is_business_day(D(2024, 12, 24))   # Tuesday, still a working day in 2024
    assert not calendar.is_business_day(D(2025, 12, 24))
    assert D(2030, 12, 24) in calendar.holidays_in_year(2030)


@pytest.mark.parametrize("day", [D(2025, 7, 9), D(2025, 12, 23), D(2025, 12, 29), D(2026, 1, 2), D(2026, 6, 5)])
def test_ordinary_weekdays_are_business_days(day):
    assert calendar.is_business_day(day)


def test_weekends_are_not_business_days():
    assert not calendar.is_business_day(D(2025, 7, 12))
    assert not calendar.is_business_day(D(2025, 7, 13))


def test_add_business_days_counts_days_after_the_start():
    wed = D(2025, 7, 9)
    assert calendar.add_business_days(wed, 0) == wed
    assert calendar.add_business_days(wed, 1) == D(2025, 7, 10)
    assert calendar.add_business_days(D(2025, 7, 11), 1) == D(2025, 7, 14)   # Fri -> Mon
    assert calendar.next_business_day(D(2025, 7, 12)) == D(2025, 7, 14)      # Sat -> Mon


def test_add_business_days_skips_holidays():
    # Easter 2026: Fri 3 Apr -> (Sat, Sun, Easter Monday 6 Apr) -> Tue 7 Apr
    assert calendar.next_business_day(D(2026, 4, 3)) == D(2026, 4, 7)
    # Corpus Christi 2025 (Thu 19 Jun): Wed 18 Jun + 1 = Fri 20 Jun
    assert calendar.next_business_day(D(2025, 6, 18)) == D(2025, 6, 20)
    # 1 and 3 May 2026 (Fri, Sun): Thu 30 Apr + 1 = Mon 4 May
    assert calendar.next_business_day(D(2026, 4, 30)) == D(2026, 5, 4)
    # 15 Aug 2025 (Fri): Thu 14 Aug + 1 = Mon 18 Aug
    assert calendar.next_business_day(D(2025, 8, 14)) == D(2025, 8, 18)
    # 11 Nov 2025 (Tue): Mon 10 Nov + 1 = Wed 12 Nov
    assert calendar.next_business_day(D(2025, 11, 10)) == D(2025, 11, 12)


def test_christmas_and_year_boundaries():
    # 24-26 Dec 2025 are Wed-Fri, then the weekend
    assert calendar.next_business_day(D(2025, 12, 23)) == D(2025, 12, 29)
    # 31 Dec 2025 (Wed) -> 1 Jan 2026 holiday -> Fri 2 Jan
    assert calendar.next_business_day(D(2025, 12, 31)) == D(2026, 1, 2)
    # 7 business days from Tue 23 Dec 2025: 29, 30, 31 Dec, 2, 5, 7, 8 Jan (6 Jan Epiphany)
    assert calendar.add_business_days(D(2025, 12, 23), 7) == D(2026, 1, 8)
    # 2026: Wed 23 Dec -> 24 (Thu), 25 (Fri) holidays, weekend -> Mon 28 Dec
    assert calendar.next_business_day(D(2026, 12, 23)) == D(2026, 12, 28)


def test_datetime_is_taken_as_its_date():
    assert calendar.next_business_day(datetime.datetime(2025, 7, 11, 23, 59)) == D(2025, 7, 14)


def test_business_days_between():
    assert calendar.business_days_between(D(2025, 7, 12), D(2025, 7, 22)) == 7
    assert calendar.business_days_between(D(2025, 7, 22), D(2025, 7, 12)) == -7
    assert calendar.business_days_between(D(2025, 7, 9), D(2025, 7, 9)) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, "2"])
def test_add_business_days_rejects_bad_counts(bad):
    with pytest.raises(ValueError):
        calendar.add_business_days(D(2025, 7, 9), bad)


def test_rejects_non_dates():
    with pytest.raises(TypeError):
        calendar.is_business_day("2025-07-09")
