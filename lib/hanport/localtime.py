# Norwegian local time (CET/CEST) without a time-zone database: civil date arithmetic on day numbers
# since 1970-01-01 and the EU daylight saving rule. The meter clock is Norwegian local
# time (docs/han-notes.md §meter-clock).
# The *_h functions work in whole UTC hours since 1970 (small ints on 32-bit MicroPython, no tuples):
# the accounting's per-list path uses only those.

from hanport.buffers import const

_CET_OFFSET_S = const(3600)  # UTC+1 in winter (the meter clock is CET/CEST, docs/han-notes.md §meter-clock)
_CEST_OFFSET_S = const(7200)  # UTC+2 in summer
_DST_SWITCH_UTC_S = const(3600)  # EU rule: both switches at 01:00 UTC, on the last Sunday of March / October
_DAY_S = const(86400)
HOUR_S = 3600

# Days before the first of each month in a common year
_DAYS_BEFORE = const((0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334))
_DAYS_IN = const((31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31))


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


def year_of_day(n):
    """Calendar year of a day number."""
    year = 1970 + n // 366  # never past the answer: a year has at most 366 days
    while days_from_date(year + 1, 1, 1) <= n:
        year += 1
    return year


def _month_of_year_day(year, day_of_year):
    """Month (1..12) holding the 0-based day of the year."""
    extra = 1 if is_leap(year) else 0
    month = 12
    while month > 1:
        first = _DAYS_BEFORE[month - 1] + (extra if month > 2 else 0)
        if day_of_year >= first:
            break
        month -= 1
    return month


def date_from_days(n):
    """(year, month, day) of a day number."""
    year = year_of_day(n)
    day_of_year = n - days_from_date(year, 1, 1)
    month = _month_of_year_day(year, day_of_year)
    first = _DAYS_BEFORE[month - 1] + (1 if month > 2 and is_leap(year) else 0)
    return year, month, day_of_year - first + 1


def month_of_day(n):
    """month_index() of the calendar month holding day number n (no tuple)."""
    year = year_of_day(n)
    return year * 12 + _month_of_year_day(year, n - days_from_date(year, 1, 1)) - 1


def weekday(n):
    """0 = Monday .. 6 = Sunday for a day number (1970-01-01 was a Thursday)."""
    return (n + 3) % 7


def last_sunday(year, month):
    """Day of the month of the last Sunday."""
    last = days_in_month(year, month)
    back = (weekday(days_from_date(year, month, last)) - 6) % 7
    return last - back


_dst_year = 0  # the year whose summer time _dst_start_h.._dst_end_h holds (cached: ints, no tuple)
_dst_start_h = 0
_dst_end_h = 0


def _dst_for(year):
    global _dst_year, _dst_start_h, _dst_end_h
    if year != _dst_year:
        _dst_start_h = days_from_date(year, 3, last_sunday(year, 3)) * 24 + _DST_SWITCH_UTC_S // HOUR_S
        _dst_end_h = days_from_date(year, 10, last_sunday(year, 10)) * 24 + _DST_SWITCH_UTC_S // HOUR_S
        _dst_year = year


def dst_range_s(year):
    """(start, end) of summer time in UTC seconds: last Sunday of March and of October at 01:00 UTC."""
    _dst_for(year)
    return _dst_start_h * HOUR_S, _dst_end_h * HOUR_S


def offset_h(h):
    """Offset of Norwegian local time from UTC in hours (1 or 2) during UTC hour h (hours since 1970).
    Both switches fall on whole UTC hours, so a whole hour has one offset."""
    _dst_for(year_of_day(h // 24))
    return 2 if _dst_start_h <= h < _dst_end_h else 1


def offset_s(utc_s):
    """Offset of Norwegian local time from UTC at an instant (3600 or 7200)."""
    return offset_h(utc_s // HOUR_S) * HOUR_S


def local_fields(utc_s):
    """(year, month, day, hour, minute, second, offset_s) of Norwegian local time at utc_s."""
    off = offset_s(utc_s)
    local = utc_s + off
    y, m, d = date_from_days(local // _DAY_S)
    rest = local % _DAY_S
    return y, m, d, rest // HOUR_S, (rest % HOUR_S) // 60, rest % 60, off


def local_day(utc_s):
    """Day number of the local calendar date at utc_s."""
    return (utc_s + offset_s(utc_s)) // _DAY_S


def local_day_h(h):
    """Day number of the local calendar date during UTC hour h."""
    return (h + offset_h(h)) // 24


def utc_hour(year, month, day, hour):
    """The earliest UTC hour (hours since 1970) that shows this local date and hour; -1 in the skipped
    hour of the spring switch or when a field is out of range. See is_repeated_h for the autumn one."""
    if not (1 <= month <= 12 and 1 <= day <= days_in_month(year, month) and 0 <= hour < 24):
        return -1
    local_h = days_from_date(year, month, day) * 24 + hour
    if offset_h(local_h - 2) == 2:
        return local_h - 2
    if offset_h(local_h - 1) == 1:
        return local_h - 1
    return -1


def is_repeated_h(h):
    """True if UTC hour h shows the same local hour as h + 1 (the first 02:00 of the autumn switch)."""
    return offset_h(h) == 2 and offset_h(h + 1) == 1


def midnight_h(day):
    """UTC hour of 00:00 local time on a day number (midnight is never skipped or repeated)."""
    local_h = day * 24
    if offset_h(local_h - 2) == 2:
        return local_h - 2
    return local_h - 1


def utc_candidates(year, month, day, hour, minute, second):
    """UTC seconds that show this local time, ascending: one normally, two in the repeated hour of
    the autumn switch (summer time first), none in the skipped hour of the spring switch or when a
    field is out of range."""
    if not (0 <= minute < 60 and 0 <= second < 60):
        return ()
    h = utc_hour(year, month, day, hour)
    if h < 0:
        return ()
    u = h * HOUR_S + minute * 60 + second
    if is_repeated_h(h):
        return (u, u + HOUR_S)
    return (u,)


def local_midnight_s(day):
    """UTC seconds of 00:00 local time on a day number (midnight is never skipped or repeated)."""
    return midnight_h(day) * HOUR_S


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
