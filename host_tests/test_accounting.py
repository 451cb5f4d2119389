# Accounting tests that need CPython: month-long generated streams of each meter with random glitches,
# reboots and torn writes against a reference dated with zoneinfo, fuzzing, real files, the decode CLI.
import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import accounting_gen as G
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hanport import accounting_report as AR
from hanport import localtime as LT
from hanport import persist
from hanport.accounting import (
    C_GAPS,
    C_REANCHORS,
    C_REJ_BACKWARDS,
    C_REJ_JUMP,
    C_REPEATS,
    C_RETRACTIONS,
    Accounting,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OSLO = ZoneInfo("Europe/Oslo")
EPOCH_DATE = datetime(1970, 1, 1).date()


def oslo_day(utc_s):
    """Day number of the Oslo calendar date at utc_s, from the system time-zone database."""
    return (datetime.fromtimestamp(utc_s, OSLO).date() - EPOCH_DATE).days


def oslo_iso(utc_s):
    return datetime.fromtimestamp(utc_s, OSLO).isoformat()


# ------------------------------------------------------------------ local time against tzdata
def test_localtime_matches_tzdata_1996_to_2040():
    start = int(datetime(1996, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2041, 1, 1, tzinfo=UTC).timestamp())
    probes = list(range(start, end, 7 * 3600 + 13 * 60 + 7))
    for y in range(1996, 2041):
        for edge in LT.dst_range_s(y):
            probes.extend(range(edge - 3 * 3600, edge + 3 * 3600, 600))
            probes.extend((edge - 1, edge, edge + 1))
    for u in probes:
        dt = datetime.fromtimestamp(u, OSLO)
        want = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, int(dt.utcoffset().total_seconds()))
        assert LT.local_fields(u) == want, u
        assert LT.iso_local(u) == dt.isoformat()
        assert u in LT.utc_candidates(*want[:6])


# ------------------------------------------------------------------ month-long streams
def _plan(rng, start, end, dst_hours):
    """Anomalies at least 6 hours apart, away from the DST switches; reboots and torn writes only in
    the quiet hours between them, so the reference can name the accepted lists plainly."""
    events = {}
    busy = set()
    for d in dst_hours:
        busy.update(range(d - 4, d + 5))
    kinds = [G.REPEAT] * 4 + [G.DROP] * 4 + [G.BACK] * 2 + [G.JUMP] * 2 + [G.UP] * 3
    rng.shuffle(kinds)
    k = 0
    h = start + 8
    while h < end - 8 and k < len(kinds):
        h += 6 + rng.randrange(30)
        if h in busy or h + 3 in busy or h >= end - 8:
            continue
        events[h] = kinds[k]
        if kinds[k] == G.DROP and rng.random() < 0.5:
            events[h + 1] = G.DROP  # two lists lost in a row
        busy.update(range(h - 1, h + 5))
        k += 1
    offline = []
    torn = {}
    quiet = [x for x in range(start + 2, end - 4) if x not in busy and x + 1 not in busy and x + 2 not in busy]
    for x in rng.sample(quiet, 6):
        a = x * 3600 + rng.randrange(3600)
        offline.append((a, a + rng.choice((30, 600, 3000, 5400, 7300))))
    for x in rng.sample(quiet, 6):
        if not any(a <= x * 3600 + 10 < b + 3600 for a, b in offline):
            torn[x] = 1 + rng.randrange(10)
    return events, offline, torn


@pytest.mark.parametrize("kind,first_day,seed", [
    ("aidon", (2024, 10, 3), 1),  # autumn switch 27 Oct, month end
    ("kaifa", (2024, 3, 6), 2),  # spring switch 31 Mar, month end on the switch day
    ("kamstrup", (2025, 10, 8), 3),  # autumn switch 26 Oct
    ("kaifa", (2025, 10, 1), 4),
    ("aidon", (2026, 3, 10), 5),
])
def test_month_stream_against_reference(kind, first_day, seed):
    rng = random.Random(seed)
    start = LT.days_from_date(*first_day) * 24
    end = start + 35 * 24
    y = first_day[0]
    dst = [s // 3600 for s in LT.dst_range_s(y)]
    events, offline, torn = _plan(rng, start, end, dst)
    meter = G.Meter(kind, seed, start, prosumer=seed % 2 == 1)
    dev = G.Device(G.MemFs(fat=seed % 2 == 0), chunk_seed=seed, max_sample_gap_s=1000)
    kept, delivered = G.run_stream(dev, meter, start, end, events, offline, torn, now_offset_s=-946684800)
    assert dev.reboots >= 6
    lists = G.accepted_lists(meter, kept, delivered)
    hours, days, months, caps = G.reference(lists, local_day=oslo_day)
    acc = dev.acc
    # hours: exact counter differences, gaps spread and marked
    want = [(oslo_iso(h * 3600), hours[h][0], hours[h][1], hours[h][2]) for h in sorted(hours)][-72:]
    assert [(LT.iso_local(u), i, e, est) for u, i, e, est in acc.hours()] == want
    # days and months
    got_days = [(d, i, e, mx, mxu // 3600, nh) for d, i, e, mx, mxu, nh, _ in acc.days()]
    assert got_days == [(d, r[0], r[1], r[2], r[3], r[4]) for d, r in sorted(days.items())]
    assert [(mi, i, e, cap) for mi, i, e, cap, _ in acc.months()] == [
        (mi, months[mi][0], months[mi][1], caps[mi][0]) for mi in sorted(months)]
    # a day holds 23, 24 or 25 hours; the DST days do
    full = [r[4] for d, r in sorted(days.items())][1:-1]
    assert set(full) <= {23, 24, 25} and (23 in full or 25 in full)
    # the capacity tariff of this and last month
    state = json.loads(AR.state_json(acc))
    last_day = oslo_day(lists[-1][0] * 3600)
    y, m, _ = LT.date_from_days(last_day)
    mi = LT.month_index(y, m)
    for key, month in (("capacity", mi), ("last_month_capacity", mi - 1)):
        cap = state[key]
        assert cap["month"] == LT.iso_month(month)
        assert [(t["date"], round(t["kwh"] * 1000)) for t in cap["top_days"]] == [
            (LT.iso_date(d), wh) for d, wh in caps[month][1]]
        hours_of_top = [t["hour"] for t in cap["top_days"]]
        assert hours_of_top == [datetime.fromtimestamp(days[d][3] * 3600, OSLO).hour for d, _ in caps[month][1]]
        assert round(cap["value_kw"] * 1000) == caps[month][0]
    # counters: every anomaly seen and named
    n = {}
    for ev in delivered.values():
        n[ev] = n.get(ev, 0) + 1
    c = acc.counts
    assert c[C_REPEATS] == n.get(G.REPEAT, 0)
    assert c[C_REJ_BACKWARDS] == n.get(G.BACK, 0) + 2 * n.get(G.UP, 0)
    assert c[C_REJ_JUMP] == n.get(G.JUMP, 0) and c[C_RETRACTIONS] == n.get(G.UP, 0) and c[C_REANCHORS] == 0
    assert c[C_GAPS] == sum(1 for k in range(1, len(lists)) if lists[k][0] - lists[k - 1][0] > 1)
    assert state["repeats"] == c[C_REPEATS] and state["gaps"] == c[C_GAPS]
    assert state["rejects"] == c[C_REJ_BACKWARDS] + c[C_REJ_JUMP]
    assert state["last_hour_import_kwh"] == hours[max(hours)][0] / 1000
    # the flash holds what RAM holds
    dev.reboot()
    assert dev.acc.hours() == acc.hours() and dev.acc.days() == acc.days()


# ------------------------------------------------------------------ fuzzing
EVENT = st.sampled_from([G.NORMAL] * 6 + [G.DROP, G.REPEAT, G.BACK, G.JUMP, "up3", "reboot", "torn"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), plan=st.lists(EVENT, min_size=30, max_size=90),
       day=st.sampled_from([(2024, 10, 26), (2024, 3, 30), (2025, 6, 29), (2025, 12, 31)]),
       kind=st.sampled_from(G.METERS), step=st.integers(1, 10))
def test_fuzz_exact_hours_are_never_wrong(seed, plan, day, kind, step):
    """Whatever the meter and the device do, an hour not marked estimated is the true counter
    difference, estimated runs hold the true energy, and the saved state reloads equal."""
    start = LT.days_from_date(*day) * 24
    fb = LT.dst_range_s(day[0])[1] // 3600
    events = {}
    offline = []
    torn = {}
    h = start + 1
    for p in plan:
        if p == "up3":
            # a plausible glitch upwards is found by the two honest lists after it, so they must be
            # placeable: not the two 02:00 lists of an autumn night (which a reboot makes unplaceable)
            if fb - 1 not in (h + 1, h + 2) and fb not in (h + 1, h + 2):
                events[h] = G.UP
            h += 3
            continue
        if p == "reboot":
            offline.append((h * 3600 - 1200, h * 3600 + 5 + (seed % 3) * 3600))
        elif p == "torn":
            torn[h] = step
        elif p == G.BACK and G.BACK in [events.get(x) for x in range(h - 4, h)]:
            pass  # glitches that agree with each other (all 48 h late) would pass for a swapped meter
        else:
            events[h] = p
        h += 1
    end = h + 2
    meter = G.Meter(kind, seed, start)
    dev = G.Device(G.MemFs(fat=seed % 2 == 1), chunk_seed=seed)
    G.run_stream(dev, meter, start, end, events, offline, torn)
    acc = dev.acc
    hs = acc.hours()
    unit = meter.unit_wh

    def true_wh(h0, h1):
        (a0, b0), (a1, b1) = meter.registers(h0), meter.registers(h1)
        return (a1 - a0) * unit, (b1 - b0) * unit

    k = 0
    while k < len(hs):
        h = hs[k][0] // 3600
        assert hs[k][1] >= 0 and hs[k][2] >= 0
        if not hs[k][3]:
            assert hs[k][1:3] == true_wh(h, h + 1), oslo_iso(h * 3600)
            k += 1
            continue
        j = k  # a run of estimated hours: spread between two accepted lists, so it holds their difference
        si = se = 0
        while j < len(hs) and hs[j][3] and hs[j][0] // 3600 == h + j - k:
            si += hs[j][1]
            se += hs[j][2]
            j += 1
        if k > 0:  # (the first run may have begun before the hours kept)
            assert (si, se) == true_wh(h, h + j - k), oslo_iso(h * 3600)
        k = j
    packed = bytes(acc.pack())
    dev.reboot()
    assert bytes(dev.acc.pack()) == packed


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.binary(min_size=0, max_size=3000), min_size=2, max_size=5),
       cut=st.integers(1, 14), fat=st.booleans())
def test_fuzz_store_power_cut(payloads, cut, fat):
    fs = G.MemFs(fat)
    store = persist.Store("/s", fs)
    assert store.load() is None
    for p in payloads[:-1]:
        assert store.save(p)
    fs.crash_at = fs.steps + cut
    try:
        store.save(payloads[-1])
    except G.PowerCut:
        pass
    fs.crash_at = -1
    got = persist.Store("/s", fs).load()
    assert got in (payloads[-2], payloads[-1])


# ------------------------------------------------------------------ real files
def test_real_files_with_reboots_and_leftovers(tmp_path):
    base = str(tmp_path / "acc")
    meter = G.Meter("kamstrup", 8, LT.days_from_date(2024, 12, 30) * 24)
    h0 = meter.start_h

    def boot():
        return Accounting(store=persist.Store(base))

    acc = boot()
    from hanport import HanReader

    for k in range(60):
        h = h0 + k
        for rd in HanReader().feed(meter.list3(h)):
            acc.update(rd, h * 3600 + 10)
        if k % 7 == 3:
            acc = boot()  # reboot
    names = sorted(os.listdir(tmp_path))
    assert names == ["acc.a", "acc.b"]
    hours = acc.hours()
    assert len(hours) == 59 and not any(x[3] for x in hours)
    # a FAT swap cut after the newest copy was moved aside (acc.a.old) and before its successor was
    # renamed in: the finished temporary file is put in place at boot
    newest = max(("acc.a", "acc.b"), key=lambda n: persist.decode(open(tmp_path / n, "rb").read())[0])
    shutil.copyfile(tmp_path / newest, tmp_path / (newest + ".tmp"))
    os.rename(tmp_path / newest, tmp_path / (newest + ".old"))
    again = boot()
    assert again.hours() == hours and sorted(os.listdir(tmp_path)) == ["acc.a", "acc.b"]
    # a temporary file that never got in place (cut before the swap): dropped, the copies stay
    with open(tmp_path / (newest + ".tmp"), "wb") as f:
        f.write(b"HANs\x01")
    again = boot()
    assert again.hours() == hours and sorted(os.listdir(tmp_path)) == ["acc.a", "acc.b"]
    # a corrupt newest copy: the older one (one hour behind) is used
    with open(tmp_path / newest, "r+b") as f:
        f.seek(40)
        f.write(b"\x00\x01\x02")
    older = boot()
    assert older.hours() == hours[:-1]
    assert older.store.bad_copies == 1


# ------------------------------------------------------------------ tools/decode.py --accounting
def test_decode_cli_replays_a_capture(tmp_path):
    fb = LT.dst_range_s(2024)[1] // 3600
    start = fb - 24 * 3 - 5
    end = fb + 24 * 6
    meter = G.Meter("kaifa", 77, start)
    events = {start + 10: G.REPEAT, start + 30: G.DROP, start + 40: G.BACK, fb + 30: G.UP, fb + 50: G.JUMP}
    data = bytearray()
    kept = []
    delivered = {}
    for _, frame, h, ev in G.frames(meter, start, end, events):
        data.extend(frame)
        if h is not None:
            kept.append(h)
            delivered[h] = ev
    path = tmp_path / "capture.bin"
    path.write_bytes(bytes(data))
    hexpath = tmp_path / "capture.hex"
    hexpath.write_text(bytes(data).hex())
    outs = []
    for args in (["--accounting", str(path)], ["--accounting", "--hex", str(hexpath)]):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "decode.py")] + args,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert len(p.stdout.splitlines()) == 1
        outs.append(p.stdout)
    assert outs[0] == outs[1]
    state = json.loads(outs[0])
    lists = G.accepted_lists(meter, kept, delivered)
    hours, days, months, caps = G.reference(lists, local_day=oslo_day)
    last = max(hours)
    assert state["last_hour_import_kwh"] == hours[last][0] / 1000
    assert state["last_hour_export_kwh"] == hours[last][1] / 1000
    want = [{"start": oslo_iso(h * 3600), "import_kwh": hours[h][0] / 1000, "export_kwh": hours[h][1] / 1000,
             "estimated": hours[h][2]} for h in sorted(hours)][-72:]
    assert state["hours"] == want
    assert [(d["date"], round(d["import_kwh"] * 1000)) for d in state["days"]] == [
        (LT.iso_date(d), r[0]) for d, r in sorted(days.items())]
    mi = LT.month_index(2024, 11)
    assert state["capacity"]["month"] == "2024-11"
    assert round(state["capacity"]["value_kw"] * 1000) == caps[mi][0]
    assert [t["date"] for t in state["capacity"]["top_days"]] == [LT.iso_date(d) for d, _ in caps[mi][1]]
    assert state["repeats"] == 1 and state["rejects"] == 1 + 2 + 1 and state["counters"]["retractions"] == 1
    assert state["gaps"] == sum(1 for k in range(1, len(lists)) if lists[k][0] - lists[k - 1][0] > 1)
    # both 02:00 lists of the autumn night were placed by the meter clock alone (list 2 every 15 min)
    night = [d for d in state["days"] if d["date"] == "2024-10-27"][0]
    assert night["hours"] == 25 and night["estimated"] is False
    assert state["counters"]["rejects_clock"] == 0


# ------------------------------------------------------------------ the host report (accounting_report)
def test_report_dict_is_the_json_as_floats():
    meter = G.Meter("aidon", 12, LT.days_from_date(2025, 1, 30) * 24)
    dev = G.Device(G.MemFs())
    for k in range(60):  # into February
        h = meter.start_h + k
        dev.feed(meter.list3(h), h * 3600 + 10)
    text = AR.state_json(dev.acc)
    assert AR.state_dict(dev.acc) == json.loads(text)
    assert AR.to_json(AR.state(dev.acc)) == text
    state = json.loads(text)
    assert state["capacity"]["month"] == "2025-02" and state["last_month_capacity"]["month"] == "2025-01"
    import hanport.accounting as A

    assert not hasattr(A, "json") and not hasattr(A.Accounting, "state_json")  # host-only code moved out
