# Norwegian local time (CET/CEST) without a time-zone database: civil date arithmetic on day numbers
# since 1970-01-01 and the EU daylight saving rule. The meter clock is Norwegian local time (han-facts §4).

CET_OFFSET_S = 3600  # UTC+1 in winter (the meter clock is CET/CEST, han-facts §4)
CEST_OFFSET_S = 7200  # UTC+2 in summer
DST_SWITCH_UTC_S = 3600  # EU rule: both switches at 01:00 UTC, on the last Sunday of March / October
DAY_S = 86400
HOUR_S = 3600

# Days before the first of each month in a common year
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_DAYS_IN = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year, month):
    if month == 2 and is_leap(year):
        return 29
    return _DAYS_IN[month - 1]


def _leap_years_before(year):
    """Leap years in 1..year-1 (proleptic Gregorian)."""
    y = year - 1
    return y // 4 - y // 100 + y // 400


_LEAPS_BEFORE_1970 = _leap_years_before(1970)


def days_from_date(year, month, day):
    """Day number (days since 1970-01-01) of a calendar date."""
    n = 365 * (year - 1970) + _leap_years_before(year) - _LEAPS_BEFORE_1970
    n += _DAYS_BEFORE[month - 1] + day - 1
    if month > 2 and is_leap(year):
        n += 1
    return n


def date_from_days(n):
    """(year, month, day) of a day number."""
    year = 1970 + n // 366  # never past the answer: a year has at most 366 days
    while days_from_date(year + 1, 1, 1) <= n:
        year += 1
    day_of_year = n - days_from_date(year, 1, 1)
    extra = 1 if is_leap(year) else 0
    month = 12
    while month > 1:
        first = _DAYS_BEFORE[month - 1] + (extra if month > 2 else 0)
        if day_of_year >= first:
            break
        month -= 1
    first = _DAYS_BEFORE[month - 1] + (extra if month > 2 else 0)
    return year, month, day_of_year - first + 1


def weekday(n):
    """0 = Monday .. 6 = Sunday for a day number (1970-01-01 was a Thursday)."""
    return (n + 3) % 7


def last_sunday(year, month):
    """Day of the month of the last Sunday."""
    last = days_in_month(year, month)
    back = (weekday(days_from_date(year, month, last)) - 6) % 7
    return last - back


_dst_cache_year = None
_dst_cache = (0, 0)


def dst_range_s(year):
    """(start, end) of summer time in UTC seconds: last Sunday of March and of October at 01:00 UTC."""
    global _dst_cache_year, _dst_cache
    if year != _dst_cache_year:
        start = days_from_date(year, 3, last_sunday(year, 3)) * DAY_S + DST_SWITCH_UTC_S
        end = days_from_date(year, 10, last_sunday(year, 10)) * DAY_S + DST_SWITCH_UTC_S
        _dst_cache = (start, end)
        _dst_cache_year = year
    return _dst_cache


def offset_s(utc_s):
    """Offset of Norwegian local time from UTC at an instant (3600 or 7200)."""
    year = date_from_days(utc_s // DAY_S)[0]
    start, end = dst_range_s(year)
    return CEST_OFFSET_S if start <= utc_s < end else CET_OFFSET_S


def local_fields(utc_s):
    """(year, month, day, hour, minute, second, offset_s) of Norwegian local time at utc_s."""
    off = offset_s(utc_s)
    local = utc_s + off
    y, m, d = date_from_days(local // DAY_S)
    rest = local % DAY_S
    return y, m, d, rest // HOUR_S, (rest % HOUR_S) // 60, rest % 60, off


def local_day(utc_s):
    """Day number of the local calendar date at utc_s."""
    return (utc_s + offset_s(utc_s)) // DAY_S


def utc_candidates(year, month, day, hour, minute, second):
    """UTC seconds that show this local time, ascending: one normally, two in the repeated hour of
    the autumn switch (summer time first), none in the skipped hour of the spring switch or when a
    field is out of range."""
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month)):
        return ()
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
        return ()
    local = days_from_date(year, month, day) * DAY_S + hour * HOUR_S + minute * 60 + second
    a = local - CEST_OFFSET_S
    b = local - CET_OFFSET_S
    a_ok = offset_s(a) == CEST_OFFSET_S
    b_ok = offset_s(b) == CET_OFFSET_S
    if a_ok and b_ok:
        return (a, b)
    if a_ok:
        return (a,)
    if b_ok:
        return (b,)
    return ()


def local_midnight_s(day):
    """UTC seconds of 00:00 local time on a day number (midnight is never skipped or repeated)."""
    y, m, d = date_from_days(day)
    c = utc_candidates(y, m, d, 0, 0, 0)
    return c[0]


def iso_local(utc_s):
    """ISO 8601 local time with its offset, "2024-10-27T02:00:00+02:00"."""
    y, m, d, hh, mm, ss, off = local_fields(utc_s)
    return "%04d-%02d-%02dT%02d:%02d:%02d+%02d:00" % (y, m, d, hh, mm, ss, off // HOUR_S)


def iso_date(day):
    """"YYYY-MM-DD" of a day number."""
    y, m, d = date_from_days(day)
    return "%04d-%02d-%02d" % (y, m, d)


def month_index(year, month):
    """Months since year 0 (year * 12 + month - 1): consecutive months differ by one."""
    return year * 12 + month - 1


def iso_month(index):
    """"YYYY-MM" of a month index."""
    return "%04d-%02d" % (index // 12, index % 12 + 1)
