"""Polish business days ("dni robocze") for KSeF offline deadlines (the Ministry's
ksef-docs ``tryby-offline.md``; public holidays: the Act of 18 January 1951 on public holidays).

The KSeF documentation does not define a business day; its worked example skips Saturday and
Sunday. We read it, as Polish law usually does, as Monday-Friday minus the statutory public
holidays of the Act of 18 January 1951, taken from the ``holidays`` package.
"""
import datetime
import functools

import holidays

# Christmas Eve became a statutory holiday from 2025 on (amendment of the 1951 Act). Recent
# versions of ``holidays`` know it; older ones (which an Odoo server may have) do not, so we add
# it ourselves for those years rather than depend on the installed version.
CHRISTMAS_EVE_FIRST_YEAR = 2025


def _as_date(value):
    # datetime is a subclass of date; a datetime here would break set look-ups and arithmetic
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    raise TypeError("expected a date, got %r" % (value,))


@functools.lru_cache(maxsize=None)
def holidays_in_year(year):
    """The Polish statutory public holidays of ``year`` as a frozenset of dates (cached)."""
    days = set(holidays.country_holidays("PL", years=year).keys())
    if year >= CHRISTMAS_EVE_FIRST_YEAR:
        days.add(datetime.date(year, 12, 24))
    return frozenset(days)


def is_holiday(day):
    day = _as_date(day)
    return day in holidays_in_year(day.year)


def is_business_day(day):
    """True for Monday-Friday that is not a Polish statutory public holiday."""
    day = _as_date(day)
    return day.weekday() < 5 and day not in holidays_in_year(day.year)


def next_business_day(day):
    """The first business day strictly after ``day``."""
    return add_business_days(day, 1)


def add_business_days(day, count):
    """The ``count``-th business day strictly after ``day`` (``day`` itself never counts).

    ``add_business_days(Wed, 1)`` is Thursday, ``add_business_days(Fri, 1)`` the next Monday,
    and ``add_business_days(day, 0)`` is ``day`` unchanged. ``day`` may itself be a weekend or
    a holiday: the count then starts with the first business day after it, as in the MF example
    where a failure ending on a Saturday gives Monday as business day 1.
    """
    day = _as_date(day)
    if not isinstance(count, int) or count < 0:
        raise ValueError("count of business days must be a non-negative integer, got %r" % (count,))
    one_day = datetime.timedelta(days=1)
    while count:
        day += one_day
        if is_business_day(day):
            count -= 1
    return day


def business_days_between(start, end):
    """How many business days lie in (start, end]; negative when ``end`` is before ``start``.

    Handy for "N business days left until the deadline".
    """
    start, end = _as_date(start), _as_date(end)
    if end < start:
        return -business_days_between(end, start)
    count, day, one_day = 0, start, datetime.timedelta(days=1)
    while day < end:
        day += one_day
        if is_business_day(day):
            count += 1
    return count
