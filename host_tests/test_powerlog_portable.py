# The dashboard's last hour of power (hanport.latest.PowerLog): 20-s bucket means, empty buckets, silences;
# portable (CPython and MicroPython, host_tests/test_micropython.py).
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
    # one 20 s bucket of Aidon-like messages: list 1 (import only) every 2.5 s, list 2 (both) at 10 s
    for i in range(8):
        p.add_reading(t + i * 2500, _reading(1000 + i, 200 if i in (0, 4) else None))
    assert p.age_ms(t + STEP_MS) == 0  # the bucket just closed
    imp = list(p.series(p.imp))
    exp = list(p.series(p.exp))
    assert len(imp) == BUCKETS and imp[:-1] == [NONE] * (BUCKETS - 1)
    assert imp[-1] == sum(1000 + i for i in range(8)) // 8 and exp[-1] == 200  # not diluted by list 1
    # two silent buckets, then a reading: empty buckets are NONE (null in /power.json), never 0
    p.add_reading(t + 3 * STEP_MS + 10, _reading(500, 0))
    assert p.age_ms(t + 4 * STEP_MS + 5) == 5
    imp = list(p.series(p.imp))
    assert imp[-4:] == [1003, NONE, NONE, 500]


def test_scaled_power_and_a_long_silence():
    p = PowerLog()
    p.add_reading(0, _reading(46, None, 2))  # 46 * 10**2 W
    p.add_reading(STEP_MS * 2, _reading(1, None))
    assert list(p.series(p.imp))[-2:] == [4600, NONE]
    assert p.age_ms(STEP_MS * (BUCKETS + 10)) is not None
    assert list(p.series(p.imp)) == [NONE] * BUCKETS  # an hour and more without readings: all empty


def test_before_any_reading():
    p = PowerLog()
    assert p.age_ms(12345) is None and set(p.series(p.exp)) == {NONE}
