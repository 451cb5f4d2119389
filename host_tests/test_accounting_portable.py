# Accounting tests that run unchanged under CPython (pytest) and MicroPython (host_tests/mp_runner.py):
# DST rule, generated streams of each meter against a plain reference, power cuts at every flash step.
import json

import accounting_gen as G

from hanport import accounting_report as AR
from hanport import accounting_views as V
from hanport import localtime as LT
from hanport import persist
from hanport import reading as R
from hanport.accounting import (
    C_GAPS,
    C_METER_CHANGES,
    C_REANCHORS,
    C_REJ_BACKWARDS,
    C_REJ_CLOCK,
    C_REJ_JUMP,
    C_REPEATS,
    C_RETRACTIONS,
    C_UNASSIGNED,
    REBASE_MS,
    RES_ANCHOR,
    RES_HOUR,
    RES_REJECT,
    RES_REPEAT,
    Accounting,
)


def _h(y, m, d, hh=0):
    """UTC hour index of a UTC date and hour."""
    return LT.days_from_date(y, m, d) * 24 + hh


def _fall_back_h(year):
    """UTC hour of the autumn switch (02:00 CET, the second 02:00); the first 02:00 is one hour earlier."""
    return LT.dst_range_s(year)[1] // 3600


def _list3(kind, h, imp, exp=0):
    return G.templates(kind)[0].make(h * 3600, G.LIST3_SECOND[kind], imp, exp, 0, 0)


def _feed(dev, data, t):
    return dev.feed(data, t)


def _check_against_reference(dev, meter, kept, delivered):
    lists = G.accepted_lists(meter, kept, delivered)
    hours, days, months, caps = G.reference(lists)
    acc = dev.acc
    want = [(h * 3600, hours[h][0], hours[h][1], hours[h][2]) for h in sorted(hours)][-72:]
    assert acc.hours() == want, "hours differ"
    got_days = [(d, i, e, mx, mxu // 3600, nh, bool(fl & 1)) for d, i, e, mx, mxu, nh, fl in acc.days()]
    want_days = [(d, r[0], r[1], r[2], r[3], r[4], r[5]) for d, r in sorted(days.items())][-62:]
    assert got_days == want_days, "days differ"
    got_months = [(mi, i, e, cap) for mi, i, e, cap, _ in acc.months()]
    want_months = [(mi, months[mi][0], months[mi][1], caps[mi][0]) for mi in sorted(months)]
    assert got_months == want_months, (got_months, want_months)
    # the capacity of the current month, from the state JSON (exact decimal text)
    state = json.loads(AR.state_json(acc))
    mi = LT.month_index(*LT.date_from_days(LT.local_day(lists[-1][0] * 3600))[0:2])
    cap = state["capacity"]
    assert cap["month"] == LT.iso_month(mi)
    top = [(t["date"], round(t["kwh"] * 1000)) for t in cap["top_days"]]
    assert top == [(LT.iso_date(d), wh) for d, wh in caps[mi][1]]
    assert round(cap["value_kw"] * 1000) == caps[mi][0]
    return lists, hours


# ------------------------------------------------------------------ local time
def test_eu_dst_rule_known_dates():
    # (year, spring switch day, autumn switch day): last Sundays of March and October
    for y, spring, autumn in ((2023, 26, 29), (2024, 31, 27), (2025, 30, 26), (2026, 29, 25), (2030, 31, 27)):
        start, end = LT.dst_range_s(y)
        assert start == (LT.days_from_date(y, 3, spring) * 24 + 1) * 3600
        assert end == (LT.days_from_date(y, 10, autumn) * 24 + 1) * 3600
        assert LT.offset_s(start - 1) == 3600 and LT.offset_s(start) == 7200
        assert LT.offset_s(end - 1) == 7200 and LT.offset_s(end) == 3600
        assert LT.utc_candidates(y, 3, spring, 2, 30, 0) == ()  # skipped hour
        assert LT.utc_candidates(y, 10, autumn, 2, 30, 0) == (end - 1800, end + 1800)
        assert LT.utc_candidates(y, 10, autumn, 3, 0, 0) == (end + 3600,)
    assert LT.iso_local(LT.dst_range_s(2024)[1] - 3600) == "2024-10-27T02:00:00+02:00"
    assert LT.iso_local(LT.dst_range_s(2024)[1]) == "2024-10-27T02:00:00+01:00"
    assert LT.utc_candidates(2024, 2, 30, 0, 0, 0) == ()


def test_dates_round_trip():
    assert LT.days_from_date(1970, 1, 1) == 0
    assert LT.days_from_date(2000, 3, 1) == 11017
    assert LT.weekday(LT.days_from_date(2024, 10, 27)) == 6  # a Sunday
    for n in range(0, 60000, 97):
        y, m, d = LT.date_from_days(n)
        assert LT.days_from_date(y, m, d) == n
    for y in (1999, 2000, 2023, 2024, 2100):
        n = LT.days_from_date(y, 12, 31) - LT.days_from_date(y, 1, 1) + 1
        assert n == (366 if LT.is_leap(y) else 365)


# ------------------------------------------------------------------ streams of each meter
def test_aidon_stream_fall_back_repeats_gaps_glitches():
    fb = _fall_back_h(2024)
    start = fb - 24 * 5 - 7
    end = fb + 24 * 6 + 3  # into November: a month boundary
    meter = G.Meter("aidon", 11, start)
    events = {start + 9: G.REPEAT, start + 20: G.DROP, start + 33: G.BACK, start + 47: G.JUMP,
              start + 60: G.UP, fb: G.REPEAT, fb + 30: G.DROP, fb + 31: G.DROP, fb + 50: G.REPEAT}
    dev = G.Device(G.MemFs(), max_sample_gap_s=1000)
    offline = (((start + 80) * 3600 + 700, (start + 81) * 3600 + 200),)  # one list lost, a reboot
    kept, delivered = G.run_stream(dev, meter, start, end, events, offline, torn={fb + 70: 4})
    _check_against_reference(dev, meter, kept, delivered)
    c = dev.acc.counts
    assert c[C_REPEATS] == 3 and c[C_REJ_BACKWARDS] == 1 + 2 and c[C_REJ_JUMP] == 1 and c[C_RETRACTIONS] == 1
    assert dev.reboots == 2


def test_kaifa_stream_spring_forward_and_month_end():
    spring = LT.dst_range_s(2024)[0] // 3600
    start = spring - 24 * 5
    end = spring + 24 * 4
    meter = G.Meter("kaifa", 5, start)
    events = {start + 5: G.DROP, start + 6: G.DROP, start + 7: G.DROP, spring - 1: G.REPEAT,
              spring + 1: G.BACK, spring + 12: G.UP, spring + 40: G.JUMP}
    dev = G.Device(G.MemFs(fat=True), chunk_seed=3, max_sample_gap_s=1000)
    kept, delivered = G.run_stream(dev, meter, start, end, events, torn={start + 30: 2, start + 50: 7})
    lists, hours = _check_against_reference(dev, meter, kept, delivered)
    # the spring day has 23 local hours
    day = LT.local_day(spring * 3600)
    for d, _, _, _, _, nh, _ in dev.acc.days():
        if d == day:
            assert nh == 23


def test_kamstrup_stream_reboots_and_torn_writes():
    fb = _fall_back_h(2025)
    start = fb - 24 * 3
    end = fb + 24 * 4
    meter = G.Meter("kamstrup", 23, start, prosumer=False)
    events = {start + 10: G.REPEAT, fb - 1: G.BACK, fb + 5: G.UP, fb + 20: G.DROP}
    offline = ((start * 3600 + 3000, start * 3600 + 3100), ((start + 40) * 3600 + 5, (start + 42) * 3600))
    dev = G.Device(G.MemFs(), chunk_seed=9, max_sample_gap_s=1000)
    torn = {start + 20: 1, start + 21: 3, start + 22: 6, start + 23: 9, fb + 40: 5}
    kept, delivered = G.run_stream(dev, meter, start, end, events, offline, torn)
    _check_against_reference(dev, meter, kept, delivered)
    assert dev.reboots >= 5


# ------------------------------------------------------------------ daylight saving corner cases
def _fall_back_run(events, reboot_before=None):
    fb = _fall_back_h(2024)
    start = fb - 6
    meter = G.Meter("aidon", 2, start)
    dev = G.Device(G.MemFs())
    offline = ()
    if reboot_before is not None:
        offline = ((reboot_before * 3600 - 900, reboot_before * 3600 - 800),)  # one list 2 lost
    kept, delivered = G.run_stream(dev, meter, start, fb + 4, events, offline)
    return dev, meter, kept, delivered, fb


def test_fall_back_both_two_oclock_lists_are_exact():
    dev, meter, kept, delivered, fb = _fall_back_run({})
    _check_against_reference(dev, meter, kept, delivered)
    starts = [LT.iso_local(u) for u, _, _, est in dev.acc.hours() if not est]
    assert "2024-10-27T02:00:00+02:00" in starts and "2024-10-27T02:00:00+01:00" in starts
    assert dev.acc.counts[C_GAPS] == 0


def test_fall_back_repeat_of_first_two_oclock_is_a_repeat():
    # the Aidon bug on the worst hour: at the second 02:00 the meter repeats the first 02:00 list
    dev, meter, kept, delivered, fb = _fall_back_run({_fall_back_h(2024): G.REPEAT})
    assert dev.acc.counts[C_REPEATS] == 1
    _check_against_reference(dev, meter, kept, delivered)


def test_fall_back_first_two_oclock_lost_never_guesses():
    # the first 02:00 list lost: the second cannot be told from a late repeat of the first
    fb = _fall_back_h(2024)
    dev, meter, kept, delivered, _ = _fall_back_run({fb - 1: G.DROP})
    assert dev.acc.counts[C_REJ_CLOCK] == 1
    kept.remove(fb)  # rejected on purpose: the hours around it are spread, marked estimated
    _check_against_reference(dev, meter, kept, delivered)


def test_fall_back_after_reboot_never_guesses():
    fb = _fall_back_h(2024)
    dev, meter, kept, delivered, _ = _fall_back_run({}, reboot_before=fb - 1)
    assert dev.acc.counts[C_REJ_CLOCK] == 2  # no time since the reference: both 02:00 lists skipped
    kept.remove(fb - 1)
    kept.remove(fb)
    _check_against_reference(dev, meter, kept, delivered)


# ------------------------------------------------------------------ counters and references
def test_meter_swap_without_id_change_reanchors():
    dev = G.Device(G.MemFs())
    h = _h(2024, 5, 6, 8)
    res = []
    regs = (500000, 500100, 500230, 120, 250, 420, 600)  # 10 Wh units; the counter restarts at 120
    for k, r in enumerate(regs):
        res.extend(_feed(dev, _list3("kamstrup", h + k, r), (h + k) * 3600 + 10))
    assert res == [RES_ANCHOR, RES_HOUR, RES_HOUR, RES_REJECT, RES_REJECT, RES_HOUR, RES_HOUR]
    c = dev.acc.counts
    assert c[C_REJ_BACKWARDS] == 3 and c[C_REANCHORS] == 1
    hours = [(u // 3600 - h, i) for u, i, _, _ in dev.acc.hours()]
    assert hours == [(0, 1000), (1, 1300), (4, 1700), (5, 1800)]  # the first list after the swap not trusted


def test_meter_id_change_starts_over():
    dev = G.Device(G.MemFs())
    h = _h(2024, 5, 6, 8)
    _feed(dev, _list3("kaifa", h, 1000000), h * 3600 + 10)
    _feed(dev, _list3("kaifa", h + 1, 1001000), h * 3600 + 3610)
    other = bytearray(_list3("kaifa", h + 2, 5000))
    i = bytes(other).find(b"6970631401753985")
    other[i + 15] = ord("6")
    G.fix_fcs(other)
    assert _feed(dev, bytes(other), h * 3600 + 7210) == [RES_ANCHOR]
    assert dev.acc.counts[C_METER_CHANGES] == 1 and dev.acc.meter_id == "6970631401753986"


def test_long_gap_is_not_spread():
    dev = G.Device(G.MemFs())
    h = _h(2024, 1, 2, 8)
    _feed(dev, _list3("aidon", h, 1000), 0)
    _feed(dev, _list3("aidon", h + 800, 90000), 800 * 3600)
    assert dev.acc.counts[C_UNASSIGNED] == 1 and dev.acc.hours() == []
    assert _feed(dev, _list3("aidon", h + 801, 90100), 801 * 3600) == [RES_HOUR]


def test_clock_off_the_hour_and_garbage_rejected():
    dev = G.Device(G.MemFs())
    h = _h(2024, 1, 2, 8)
    t3 = G.templates("kaifa")[0]
    assert _feed(dev, t3.make(h * 3600 + 1800, 10, 1000, 0), 0) == [RES_REJECT]
    assert dev.acc.counts[C_REJ_CLOCK] == 1
    assert _feed(dev, _list3("kaifa", h, 1000), 10) == [RES_ANCHOR]
    assert _feed(dev, _list3("kaifa", h, 1000), 20) == [RES_REPEAT]
    assert _feed(dev, _list3("kaifa", h, 1200), 30)[0] == RES_REJECT  # same clock, other counters


def test_hour_values_exact_in_kwh_text():
    dev = G.Device(G.MemFs())
    h = _h(2024, 2, 1, 10)
    _feed(dev, _list3("kaifa", h, 79591144, 5), 0)
    _feed(dev, _list3("kaifa", h + 1, 79594021, 5), 3600)
    s = AR.state_json(dev.acc)
    assert '"last_hour_import_kwh":2.877' in s and '"last_hour_export_kwh":0.000' in s
    assert dev.acc.summary()["last_hour_import_wh"] == 2877


# ------------------------------------------------------------------ running hour and capacity
def test_running_hour_estimate_from_power():
    t3, t2 = G.templates("kaifa")
    dev = G.Device(G.MemFs())
    h = _h(2024, 2, 1, 10)
    dev.feed(t3.make(h * 3600, 10, 1000000, 0, 3600, 0), h * 3600 + 10)
    for k in range(1, 181):  # list 2 every 10 s for 30 minutes at 3600 W
        t = h * 3600 + 10 + 10 * k
        dev.feed(t2.make(t, None, None, None, 3600, 120), t)
    ri, re, partial = dev.acc.running_wh()
    assert (ri, re, partial) == (1800, 59, False)  # export: 120 W from the first list 2 on
    s = dev.acc.summary()
    assert s["current_hour_import_wh_est"] == 1800 and s["current_hour_partial"] is False
    # no hourly list for the next boundary: the running hour rolls on by itself
    for k in range(181, 400):
        t = h * 3600 + 10 + 10 * k
        dev.feed(t2.make(t, None, None, None, 3600, 0), t)
    assert dev.acc.now_hour() == h + 1
    assert dev.acc.running_wh()[0] < 400


def _value_with(maxima, today, x, n):
    """Capacity value (sum of the top n daily maxima, and how many) with today's max raised to x."""
    m = dict(maxima)
    m[today] = max(m.get(today, 0), x)
    top = sorted(m.values(), reverse=True)[:n]
    return sum(top), len(top)


def _largest(ok, lo):
    """Largest x >= lo with ok(x) (ok monotone: true, then false), lo - 1 if ok(lo) is false."""
    if not ok(lo):
        return lo - 1
    step = 1
    while ok(lo + step):
        step *= 2
    a, b = lo + step // 2, lo + step  # ok(a), not ok(b)
    while b - a > 1:
        m = (a + b) // 2
        if ok(m):
            a = m
        else:
            b = m
    return a


def _check_headroom(acc, today, used_wh, n=3):
    mi = LT.month_index(*LT.date_from_days(today)[0:2])
    maxima = [(d, mx) for d, _, _, mx, _, nh, _ in acc.days() if LT.month_of_day(d) == mi and nh]
    top = sorted([mx for _, mx in maxima], reverse=True)[:n]
    total, k = sum(top), len(top)
    step = len([w for w in acc.steps_w if k and total >= w * k])
    assert V.capacity(acc, mi)[2:] == (step, total)
    rise, nxt = acc.headroom(mi, today, used_wh)
    if k:

        def not_raised(x):
            s, c = _value_with(maxima, today, x, n)
            return s * k <= total * c

        assert rise == max(0, _largest(not_raised, used_wh) - used_wh), (rise, used_wh)
    else:
        assert rise == 0
    if nxt is not None:
        goal = acc.steps_w[step]

        def below(x):
            s, c = _value_with(maxima, today, x, n)
            return s < goal * c

        assert nxt == _largest(below, used_wh) + 1 - used_wh, (nxt, used_wh)


def test_capacity_step_and_headroom_against_plain_search():
    dev = G.Device(G.MemFs())
    h = _h(2024, 9, 1, 0) - 2  # 00:00 local on 1 September (CEST)
    reg = 100000
    t = 0
    _feed(dev, _list3("aidon", h, reg), t)
    rng = G.Lcg(4)
    best = {}  # plain reference: highest hour (Wh) of each local day
    for k in range(1, 24 * 5 + 6):
        step = rng.next(250)
        if k in (30, 55, 80):
            step += 400 + rng.next(300)  # peaks, in 10 Wh units
        reg += step
        d = LT.local_day((h + k - 1) * 3600)
        best[d] = max(best.get(d, 0), step * 10)
        t += 3600
        _feed(dev, _list3("aidon", h + k, reg), t)
        today = LT.local_day((h + k) * 3600)
        if k % 7 == 0:
            for used in (0, 500, 2500, 7000, 30000):
                _check_headroom(dev.acc, today, used)
    s = dev.acc.summary()
    # the month's value against the hours themselves: mean of the three highest daily maxima
    top = sorted(best.values(), reverse=True)[:3]
    assert s["capacity_w"] == sum(top) // 3
    assert s["capacity_step_low_w"] <= s["capacity_w"] < s["capacity_step_high_w"]
    assert s["last_month_capacity_w"] is None  # no day of last month in the history: not known (not 0)
    # first hour of a month: nothing yet, any import raises the value
    acc = Accounting(steps_kw=(2, 5), top_days=2)
    assert acc.headroom(LT.month_index(2024, 10), LT.days_from_date(2024, 10, 1), 0) == (0, 2000)


# ------------------------------------------------------------------ flash
def _stream_dev(fs, hours=6):
    meter = G.Meter("kaifa", 1, _h(2024, 11, 3, 5))
    dev = G.Device(fs)
    for k in range(hours):
        dev.feed(meter.list3(meter.start_h + k), (meter.start_h + k) * 3600 + 10)
    return meter, dev


def _copy_fs(fs):
    new = G.MemFs(fs.fat)
    for k in fs.files:
        new.files[k] = bytearray(fs.files[k])
    return new


def test_power_cut_at_every_flash_step():
    for fat in (False, True):
        meter, dev = _stream_dev(G.MemFs(fat))
        before = bytes(dev.acc.pack())
        snap = _copy_fs(dev.fs)
        h = meter.start_h + 6
        clean = G.Device(_copy_fs(snap))
        clean.feed(meter.list3(h), h * 3600 + 10)
        after = bytes(clean.acc.pack())
        clean.feed(meter.list3(h + 1), h * 3600 + 3610)
        after2 = bytes(clean.acc.pack())
        assert before != after
        cut_seen = 0
        for k in range(1, 32):  # (a save writes its header, each array and its CRC: every step is cut once)
            fs = _copy_fs(snap)
            d = G.Device(fs)
            fs.crash_at = fs.steps + k
            try:
                d.feed(meter.list3(h), h * 3600 + 10)
            except G.PowerCut:
                cut_seen += 1
            fs.crash_at = -1
            d.reboot()
            got = bytes(d.acc.pack())
            assert got == before or got == after, (fat, k)  # never corrupt, at most this hour lost
            # a power cut while finishing a left-over rename at boot, then on as usual
            fs.crash_at = fs.steps + 1
            try:
                d.reboot()
            except G.PowerCut:
                pass
            fs.crash_at = -1
            d.reboot()
            d.feed(meter.list3(h + 1), h * 3600 + 3610)
            d.reboot()
            got = bytes(d.acc.pack())
            if got != after2:  # the hour h was lost: h+1 then closed a two-hour gap
                assert got != before and d.acc.counts[C_GAPS] == 1, (fat, k)
        assert cut_seen >= 9


def test_whole_file_write_survives_a_power_cut_at_every_step():
    # persist.write_file (config.json, its cache, each accounting copy): after a cut at any step and
    # the boot-time recover(), the file holds the old content or the new one, whole, never none
    old = b'{"wifi": {"ssid": "home"}}' * 30  # longer than one 512-byte chunk
    new = b'{"wifi": {"ssid": "cabin"}, "mqtt": {"host": "10.0.0.2"}}' * 20
    for fat in (False, True):
        cuts = 0
        for k in range(1, 20):
            fs = G.MemFs(fat)
            fs.files["/config.json"] = bytearray(old)
            fs.crash_at = k
            try:
                persist.write_file("/config.json", [new[:700], new[700:]], fs)
            except G.PowerCut:
                cuts += 1
            fs.crash_at = -1
            persist.recover("/config.json", fs)
            assert bytes(fs.files["/config.json"]) in (old, new), (fat, k)
            assert sorted(fs.files) == ["/config.json"], (fat, k)
            # a cut while recover() itself runs: the next start finishes it
            fs2 = G.MemFs(fat)
            fs2.files["/config.json"] = bytearray(old)
            fs2.crash_at = k
            try:
                persist.write_file("/config.json", [new], fs2)
            except G.PowerCut:
                pass
            for j in range(1, 4):
                fs2.crash_at = fs2.steps + j
                try:
                    persist.recover("/config.json", fs2)
                except G.PowerCut:
                    pass
                fs2.crash_at = -1
                persist.recover("/config.json", fs2)
                assert bytes(fs2.files["/config.json"]) in (old, new), (fat, k, j)
        assert cuts >= 6, (fat, cuts)  # open, writes, close, renames (FAT: two), remove: each cut once
    # never written before (first save): a cut leaves no file or the new one, and no stray temporary
    fs = G.MemFs(True)
    fs.crash_at = 2
    try:
        persist.write_file("/config.json", [new], fs)
    except G.PowerCut:
        pass
    fs.crash_at = -1
    persist.recover("/config.json", fs)
    assert sorted(fs.files) == []


def test_torn_or_corrupt_copy_falls_back():
    meter, dev = _stream_dev(G.MemFs(), hours=5)
    newest = dev.store.seq
    older_state = None
    for name in ("/acc.a", "/acc.b"):
        rec = persist.decode(bytes(dev.fs.files[name]))
        if rec[0] == newest - 1:
            older_state = rec[1]
        else:
            target = name
    dev.fs.files[target][100] ^= 0x40  # one bit flipped in the newest copy
    dev.reboot()
    assert dev.store.seq == newest - 1 and dev.store.bad_copies == 1
    assert bytes(dev.acc.pack()) == older_state
    dev.fs.files[target] = dev.fs.files[target][:50]  # torn: cut short
    dev.reboot()
    assert dev.store.seq == newest - 1
    for name in ("/acc.a", "/acc.b"):
        dev.fs.files[name] = bytearray(b"\xff" * 64)
    dev.reboot()  # nothing valid: starts empty, does not raise
    assert dev.store.seq == 0 and dev.acc.hours() == [] and not dev.acc.a_ok
    assert dev.feed(meter.list3(meter.start_h + 5), 0) == [RES_ANCHOR]


def test_flash_writes_at_most_a_few_per_hour():
    meter, dev = _stream_dev(G.MemFs(), hours=1)
    start = dev.fs.writes
    h = meter.start_h
    for k in range(1, 25):
        for q in range(60):  # list 2 every minute
            t = (h + k - 1) * 3600 + 20 + q * 60
            dev.feed(meter.list2(t), t)
        dev.feed(meter.list3(h + k), (h + k) * 3600 + 10)
        dev.feed(meter.list3(h + k), (h + k) * 3600 + 12)  # a repeat right after: no extra write
    assert 24 <= dev.fs.writes - start <= 25


def test_pack_round_trip_and_version_check():
    meter, dev = _stream_dev(G.MemFs(), hours=30)
    data = dev.acc.pack()
    acc = Accounting()
    assert acc.unpack(data)
    assert bytes(acc.pack()) == bytes(data)
    assert acc.hours() == dev.acc.hours() and acc.days() == dev.acc.days()
    bad = bytearray(data)
    bad[0] = 99
    assert not Accounting().unpack(bad) and not Accounting().unpack(data[:-1])


# ------------------------------------------------------------------ parts loaded on demand
PARTS = ("accounting_hourly", "accounting_views", "accounting_store", "accounting_capacity",
         "accounting_history", "localtime")


def _unload_parts():
    """As the firmware does after use (firmware/mem.py unload): the next use imports them again."""
    import sys

    import hanport

    for leaf in PARTS:
        sys.modules.pop("hanport." + leaf, None)
        try:
            delattr(hanport, leaf)
        except (AttributeError, KeyError, TypeError):
            pass


def _parts_loaded():
    import sys

    return [leaf for leaf in PARTS if "hanport." + leaf in sys.modules]


def test_parts_load_on_demand_and_may_be_unloaded_between_uses():
    meter = G.Meter("kaifa", 3, _h(2024, 10, 30, 5))
    kept = G.Device(G.MemFs())
    dropped = G.Device(G.MemFs())
    for k in range(40):
        h = meter.start_h + k
        t = h * 3600 + 10
        kept.feed(meter.list3(h), t)
        kept.feed(meter.list2(t + 20), t + 20)
        _unload_parts()
        dropped.feed(meter.list2(t - 20), t - 20)  # list 1 and 2 need none of the parts
        assert _parts_loaded() == [], _parts_loaded()
        dropped.feed(meter.list3(h), t)  # the hourly list (and its save) loads them
        _unload_parts()
        dropped.feed(meter.list2(t + 20), t + 20)
        if k % 6 == 0:
            assert dropped.acc.summary() == kept.acc.summary()
            _unload_parts()
    assert bytes(dropped.acc.pack()) == bytes(kept.acc.pack())
    assert dropped.acc.prometheus_lines() == kept.acc.prometheus_lines()
    dropped.reboot()
    _unload_parts()
    assert bytes(dropped.acc.pack()) == bytes(kept.acc.pack())


# ------------------------------------------------------------------ outputs
def test_summary_and_prometheus_lines():
    meter, dev = _stream_dev(G.MemFs(), hours=30)
    s = dev.acc.summary()
    for k in ("last_hour_import_wh", "last_hour_export_wh", "today_import_wh", "capacity_w", "capacity_step",
              "capacity_headroom_wh", "capacity_next_step_headroom_wh", "current_hour_import_wh_est"):
        assert isinstance(s[k], int), k
    lines = dev.acc.prometheus_lines()
    names = set()
    for line in lines:
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif not line.startswith("# HELP "):
            name, value = line.split(" ")
            assert name in names and int(value) >= 0
    assert "han_last_hour_import_wh %d" % s["last_hour_import_wh"] in lines
    assert "han_accounting_repeats_total 0" in lines
    state = json.loads(AR.state_json(dev.acc))
    for k in ("last_hour_import_kwh", "last_hour_export_kwh", "hours", "days", "capacity", "repeats", "gaps",
              "rejects"):
        assert k in state, k
    assert len(state["hours"]) == 29 and state["hours"][-1]["estimated"] is False
    assert len(state["capacity"]["step_range_kw"]) == 2 and state["capacity"]["step_index"] >= 0


# ------------------------------------------------------------------ device ticks (the firmware's time)
def _twin_run(silence=None, days=5, tick_every_s=60, start_tk=-(2 * 3600 + 17 * 60 + 3) * 1000, before_fb_h=60):
    """The same Kaifa stream (days long: the origin moves; an autumn switch; list 2 every 5 minutes) into
    two devices: one timed by now_s, one by ticks that wrap 2:17:03 in (and tick() every tick_every_s).
    silence: (from_s, to_s) when the meter sends nothing. Compares summary (running-hour estimates too),
    history and flash image after every frame."""
    fb = _fall_back_h(2024)
    start = fb - before_fb_h
    end = start + 24 * days
    meter = G.Meter("kaifa", 21, start)
    events = {start + 7: G.REPEAT, start + 30: G.DROP, start + 80: G.BACK}
    by_now = G.Device(G.MemFs(), chunk_seed=2, max_sample_gap_s=400)
    by_ticks = G.Device(G.MemFs(), chunk_seed=2, max_sample_gap_s=400)
    clock = G.TicksClock(start * 3600, G.ticks_add(0, start_tk))
    next_tick = start * 3600
    wrapped = False
    ticks_seen = 0
    last_tk = clock.tk
    for t, data, h, _ in G.frames(meter, start, end, events, list2_per_hour=12):
        if silence is not None and silence[0] <= t < silence[1]:
            continue
        while next_tick < t:  # the firmware's ticker (its silence too: the device stays on)
            by_ticks.acc.tick(clock.at(next_tick))
            ticks_seen += 1
            next_tick += tick_every_s
        tk = clock.at(t)
        wrapped = wrapped or tk < last_tk
        last_tk = tk
        a = by_now.feed(data, t + 1700000000)
        b = by_ticks.feed(data, ticks_ms=tk)
        assert a == b, (t, a, b)
        assert by_now.acc.summary() == by_ticks.acc.summary(), t
        assert by_now.acc.running_wh() == by_ticks.acc.running_wh(), t
        if h is not None:
            assert bytes(by_now.acc.pack()) == bytes(by_ticks.acc.pack()), t
    assert wrapped and ticks_seen > 0
    assert by_now.fs.writes == by_ticks.fs.writes
    assert by_now.acc.hours() == by_ticks.acc.hours() and by_now.acc.days() == by_ticks.acc.days()
    assert AR.state_json(by_now.acc) == AR.state_json(by_ticks.acc)
    return by_now.acc, by_ticks.acc


def test_ticks_give_the_same_hours_and_estimates_as_now_s():
    acc, tacc = G.with_device_ticks(_twin_run)
    # the 5 days moved the internal origin: times stay small (2**30 is where a 32-bit small int ends)
    assert abs(tacc.t_last) < REBASE_MS and abs(acc.t_last) < REBASE_MS
    # the repeat stands for a lost list, as do the drop and the rejected one: three two-hour gaps
    assert acc.counts[C_REPEATS] == 1 and acc.counts[C_GAPS] == 3 and acc.counts[C_REJ_BACKWARDS] == 1
    assert acc.summary()["current_hour_partial"] is False


def test_ticks_across_a_week_of_silence_with_tick():
    # A week without frames (more than half the 32-bit ticks period) that ends just before the first
    # 02:00 list of an autumn night: tick() kept the clock, so the device knows a week passed, as many
    # hours as the meter clocks differ, and places that list as the summer-time one (docs/han-notes.md §meter-clock).
    fb = _fall_back_h(2024)
    silence = ((fb - 1 - 7 * 24) * 3600 + 100, (fb - 1) * 3600 - 100)
    acc, tacc = G.with_device_ticks(lambda: _twin_run(silence, days=10, before_fb_h=200))
    assert acc.counts[C_REJ_CLOCK] == 0
    exact = [LT.iso_local(u) for u, _, _, est in acc.hours() if not est]
    assert "2024-10-27T02:00:00+02:00" in exact and "2024-10-27T02:00:00+01:00" in exact
    assert acc.summary()["current_hour_partial"] is False


def test_tick_before_any_reading_and_ticks_backwards():
    acc = Accounting()
    acc.tick(123456)
    acc.tick(124456)
    h = _h(2024, 2, 1, 10)
    t3, t2 = G.templates("kaifa")
    rd = G.decode_one(t3.make(h * 3600, 10, 1000000, 0, 3600, 0))
    assert acc.update(rd, ticks_ms=125456) == RES_ANCHOR
    assert acc.t_last == 2000
    for k in range(1, 10):
        acc.update(G.decode_one(t2.make(h * 3600 + 10 * k, None, None, None, 3600, 0)), ticks_ms=125456 + 10000 * k)
    assert acc.running_wh() == (90, 0, False)
    # ticks that go back (a caller's mistake) are a time jump: the running hour is marked partial
    acc.update(G.decode_one(t2.make(h * 3600 + 100, None, None, None, 3600, 0)), ticks_ms=100)
    assert acc.running_wh()[2] is True


def test_running_energy_exact_in_wh_and_remainder():
    """Power integration keeps whole Wh and a W*ms remainder: the same as the plain product sum."""
    rng = G.Lcg(17)
    acc = Accounting(max_sample_gap_s=1000)
    t2 = G.templates("kaifa")[1]
    h = _h(2024, 2, 1, 10)
    rds = [G.decode_one(t2.make(h * 3600, None, None, None, w, w // 3)) for w in (0, 1, 999, 3601, 47000, 250000)]
    ws = [rd.field_value[R.F_P_IMPORT] for rd in rds]
    t = 5
    total = 0
    last_w = None
    for _ in range(400):
        k = rng.next(len(rds))
        if last_w is not None:
            dt = 1 + rng.next(20000)
            t += dt
            total += last_w * dt
        acc.update(rds[k], ticks_ms=t)
        last_w = ws[k]
        assert acc.running_wh()[0] == total // 3600000
    assert total > 3 * 3600000
