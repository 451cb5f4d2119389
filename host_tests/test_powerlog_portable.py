# The dashboard's last hour of power: hanport.latest.PowerLog (minute means, filled per reading) and its
# reader in firmware/dash.py (/power.json); portable (CPython and MicroPython, test_micropython.py).

# isort: off
import firmware_path  # noqa: F401  (firmware/ on the import path, before its modules)
from dash import power_age, power_series
# isort: on

from hanport import reading as R
from hanport.latest import BUCKETS, NONE, STEP_MS, PowerLog


def _reading(imp=None, exp=None, imp_exp=0):
    rd = R.Reading()
    if imp is not None:
        rd.field_present[R.F_P_IMPORT] = 1
        rd.field_value[R.F_P_IMPORT] = imp
        rd.field_exp[R.F_P_IMPORT] = imp_exp
    if exp is not None:
        rd.field_present[R.F_P_EXPORT] = 1
        rd.field_value[R.F_P_EXPORT] = exp
    return rd


def test_each_bucket_is_the_mean_of_its_readings_and_export_counts_only_where_sent():
    p = PowerLog()
    t = 1000
    # Aidon-like messages in one minute: list 1 (import only) every 2.5 s, list 2 (both) every 10 s
    for i in range(8):
        p.add(t + i * 2500, _reading(1000 + i, 200 if i in (0, 4) else None))
    now = t + STEP_MS  # the bucket has just closed (for the reader; the log closes it at the next reading)
    assert power_age(p, now) == 0
    imp = list(power_series(p, True, now))
    exp = list(power_series(p, False, now))
    assert len(imp) == BUCKETS and imp[:-1] == [NONE] * (BUCKETS - 1)
    assert imp[-1] == sum(1000 + i for i in range(8)) // 8 and exp[-1] == 200  # not diluted by list 1
    assert list(power_series(p, True, t + 20000)) == [NONE] * BUCKETS  # the open bucket is not shown
    # two silent minutes, then a reading: empty buckets are NONE (null in /power.json), never 0
    p.add(t + 3 * STEP_MS + 10, _reading(500, 0))
    now = t + 4 * STEP_MS + 5
    assert power_age(p, now) == 5
    assert list(power_series(p, True, now))[-4:] == [1003, NONE, NONE, 500]
    assert list(power_series(p, False, now))[-4:] == [200, NONE, NONE, 0]


def test_the_reader_shows_what_the_log_stores_once_it_closes_the_buckets():
    p = PowerLog()
    for k in range(70):  # more minutes than the ring holds, every third one silent
        if k % 3:
            p.add(k * STEP_MS + 7, _reading(k * 10, k))
    now = 75 * STEP_MS + 8
    seen = (list(power_series(p, True, now)), list(power_series(p, False, now)), power_age(p, now))
    p.add(now, _reading(None, 1))  # the log closes the same buckets (export only: import stays empty)
    assert (list(power_series(p, True, now)), list(power_series(p, False, now)), power_age(p, now)) == seen
    # buckets start at the first reading (minute 1, +7 ms); minute 68's is the last with a reading, 69-74
    # are silent and the one from 75 min + 7 ms is open (not shown): 1 ms old at now
    assert seen[0][-8:] == [670, 680] + [NONE] * 6 and seen[1][-8:] == [67, 68] + [NONE] * 6
    assert seen[2] == 1


def test_scaled_power_and_a_long_silence():
    p = PowerLog()
    p.add(0, _reading(46, None, 2))  # 46 * 10**2 W
    p.add(STEP_MS * 2, _reading(1, None))
    assert list(power_series(p, True, STEP_MS * 2))[-2:] == [4600, NONE]
    later = STEP_MS * (BUCKETS + 10)
    assert power_age(p, later) is not None
    assert list(power_series(p, True, later)) == [NONE] * BUCKETS  # an hour and more without readings
    p.add(later, _reading(3, None))
    assert list(power_series(p, True, later)) == [NONE] * BUCKETS


def test_before_any_reading():
    p = PowerLog()
    assert power_age(p, 12345) is None and set(power_series(p, False, 12345)) == {NONE}
    p.add(5, R.Reading())  # a message without power (Kamstrup's list 3 has it; some do not): nothing
    assert p.start is None


def test_a_mean_above_the_rings_range_is_kept_at_its_top():
    # the rings hold unsigned 16-bit W: 65,535 marks an empty bucket, a larger mean is kept as 65,534
    p = PowerLog()
    p.add(0, _reading(70000, 65534))
    p.add(STEP_MS, _reading(100, 0))  # closes the first minute
    assert list(power_series(p, True, STEP_MS))[-1:] == [65534]
    assert list(power_series(p, False, STEP_MS))[-1:] == [65534]
    assert list(power_series(p, True, STEP_MS * 2))[-2:] == [65534, 100]  # the open minute, as the reader shows it
