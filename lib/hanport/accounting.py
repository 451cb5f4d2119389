# Energy accounting from the meter's hourly list (han-facts §4-5): exact hourly import/export from counter
# differences, hour/day/month history, the Norwegian capacity tariff, a running-hour estimate, saved to flash.
import struct
from array import array

from hanport import localtime as LT
from hanport import reading as R

try:
    from time import ticks_diff  # MicroPython: ticks wrap (half the period is the useful range)
except ImportError:  # CPython: a ticks value is a plain millisecond count

    def ticks_diff(a, b):
        return a - b

# --- history kept (issue 4: at least 72 hours, 62 days, 24 months) ---
HOURS_KEPT = 72
DAYS_KEPT = 62  # two whole months: the capacity tariff of this month and the last (han-facts §5)
MONTHS_KEPT = 24

# --- capacity tariff (han-facts §5: steps differ per grid company, so both are configurable) ---
DEFAULT_STEPS_KW = (2, 5, 10, 15, 20, 25, 50, 75, 100)
DEFAULT_TOP_DAYS = 3  # the month's value is the mean of the three highest daily maxima

# --- robustness ---
DEFAULT_MAX_POWER_W = 1000000  # a counter step above this mean power over its hours is a glitch, not energy
MAX_SPREAD_HOURS = 744  # a gap between hourly lists up to 31 days is spread over its hours, longer is not
RETRACT_MAX_HOURS = 24  # an accepted list later proven to be a glitch is undone if its span was this short
REANCHOR_AFTER = 3  # this many consistent rejected lists in a row: the last two are the new reference
MIN_LIST3_SPACING_S = 1800  # two hourly lists closer than this mark the same boundary (hourly, han-facts §4)
DEFAULT_MAX_SAMPLE_GAP_S = 120  # power samples further apart are not integrated (estimate marked partial)
HOUR_LATE_S = 120  # list 3 comes at xx:00:05-10 (han-facts §4); this late, the running hour rolls on
MAX_ROLL_HOURS = 48  # a longer step in reading time is a jump of the time base, not hours without lists
DEFAULT_SAVE_INTERVAL_S = 900  # at most one flash write per 15 minutes (wear); hourly lists come hourly
# Nominal message periods (han-facts §4), for timing readings that carry no clock when no now_s is given
PERIOD_LIST1_AIDON_MS = 2500
PERIOD_LIST1_MS = 2000  # Kaifa
PERIOD_LIST2_MS = 10000

HOUR_S = 3600
HOUR_MS = 3600000
DAY_S = 86400
WMS_PER_WH = 3600000  # watt-milliseconds in a watt-hour
# Internal times are ms from an origin that moves (every stored time shifted) once one passes
# REBASE_MS, so they stay small ints on 32-bit MicroPython (below 2**30) for any uptime. Stored times
# further than STALE_MS from the origin are pinned there: that old, they act the same (gaps, rolls).
REBASE_MS = 1 << 28  # 3.1 days
STALE_MS = 1 << 29  # 6.2 days

# --- results of update() ---
RES_NONE = 0  # not an hourly list: its power went into the running-hour estimate
RES_HOUR = 1  # one or more hours were recorded
RES_ANCHOR = 2  # first usable hourly list: the reference for the next hour, no hour yet
RES_REPEAT = 3  # the same hourly list again (same clock, same counters): ignored
RES_REJECT = 4  # the hourly list was rejected (see the rejects_* counters)
RESULT_NAMES = ("none", "hour", "anchor", "repeat", "reject")

# --- counters (index into Accounting.counts; kept on flash) ---
C_LISTS = 0  # hourly lists seen
C_HOURS = 1  # hours recorded from two consecutive hourly lists (exact)
C_REPEATS = 2  # repeated hourly lists (han-facts §4: known Aidon bug)
C_GAPS = 3  # gaps between accepted hourly lists (missing hours), spread over their hours
C_GAP_HOURS = 4  # hours filled by spreading (marked estimated)
C_REJ_BACKWARDS = 5  # a counter lower than the reference
C_REJ_JUMP = 6  # a counter step above max_power_w over the hours it spans
C_REJ_CLOCK = 7  # clock missing, not on the hour, skipped local time, earlier than the reference, ambiguous
C_REJ_CONFLICT = 8  # same clock as the reference but different counters
C_REJ_UNIT = 9  # counters missing or finer than 1 Wh
C_RETRACTIONS = 10  # an accepted list found to be a glitch later: its hours redone as a spread
C_REANCHORS = 11  # a new reference taken after REANCHOR_AFTER consistent rejected lists
C_METER_CHANGES = 12  # the meter id changed: new reference
C_UNASSIGNED = 13  # gaps longer than MAX_SPREAD_HOURS: their energy is in no hour
COUNTER_NAMES = ("lists", "hours", "repeats", "gaps", "gap_hours", "rejects_backwards", "rejects_jump",
                 "rejects_clock", "rejects_conflict", "rejects_unit", "retractions", "reanchors",
                 "meter_changes", "unassigned_gaps")
N_COUNTERS = 14
_REJECTS = (C_REJ_BACKWARDS, C_REJ_JUMP, C_REJ_CLOCK, C_REJ_CONFLICT, C_REJ_UNIT)

# --- flags ---
F_EST = 1  # hour: spread over a gap; day/month: holds such an hour
F_MAX_EST = 2  # day: its highest hour is an estimate

# --- flash image ---
STATE_VERSION = 1
MAX_ID_BYTES = 24
_HEAD = "<BBBB%ds" % MAX_ID_BYTES  # version, flags (1: reference, 2: previous), pending count, id length
_REF = "<iqq"  # boundary hour (UTC hours since 1970), import Wh, export Wh
_REF_BYTES = 20
N_PENDING = REANCHOR_AFTER


def _sizes():
    n = struct.calcsize(_HEAD) + _REF_BYTES * (2 + N_PENDING) + 4 * N_COUNTERS
    n += HOURS_KEPT * 13 + DAYS_KEPT * 19 + MONTHS_KEPT * 17
    return n


STATE_BYTES = _sizes()


def _counter_wh(rd, f):
    """Wh integer of a kWh register (Reading field f); None if absent, negative or finer than 1 Wh
    (no Norwegian meter is: Kaifa sends Wh, Aidon and Kamstrup 10 Wh)."""
    if not rd.field_present[f]:
        return None
    value = rd.field_value[f]
    shift = rd.field_exp[f] + 3
    if value < 0 or shift < 0:
        return None
    return value * 10**shift


def _watts(value, exp):
    if exp >= 0:
        return value * 10**exp
    return value // 10 ** (-exp)


def _shifted(v, d):
    """A stored time v after the origin moved by d ms (None stays None), pinned within STALE_MS."""
    if v is None:
        return None
    v -= d
    if v < -STALE_MS:
        return -STALE_MS
    if v > STALE_MS:
        return STALE_MS
    return v


class Accounting:
    """Hour, day and month energy and the capacity tariff from the hourly lists of one meter.

    acc = Accounting(store=persist.Store("/acc"))     # loads the saved state
    for each decoded Reading rd: acc.update(rd, ticks_ms=time.ticks_ms())  # saves after an hourly list
    once a second: acc.tick(time.ticks_ms())             # keeps the clock across silences
    acc.summary(), acc.prometheus_lines(); hanport.accounting_report.state_json(acc) on a host
    Energies are integer Wh throughout (exact on 32-bit-float MicroPython). With ticks_ms and no store,
    update() allocates nothing on 32-bit MicroPython (host_tests/mp_accounting_heap_check.py)."""

    def __init__(self, store=None, steps_kw=DEFAULT_STEPS_KW, top_days=DEFAULT_TOP_DAYS,
                 max_power_w=DEFAULT_MAX_POWER_W, max_sample_gap_s=DEFAULT_MAX_SAMPLE_GAP_S,
                 save_interval_s=DEFAULT_SAVE_INTERVAL_S):
        self.store = store
        self.steps_w = sorted(int(round(k * 1000)) for k in steps_kw)  # kW thresholds as W, ascending
        self.top_n = max(1, int(top_days))
        self.max_wh_per_h = max_power_w
        # (both below STALE_MS: a pinned time must still read as longer ago)
        self.max_gap_ms = min(max_sample_gap_s, DAY_S) * 1000
        self.save_interval_ms = min(save_interval_s, DAY_S) * 1000
        self.counts = array("I", [0] * N_COUNTERS)
        self.h_idx = array("i", [-1] * HOURS_KEPT)  # hour start, UTC hours since 1970; -1 = empty
        self.h_imp = array("i", [0] * HOURS_KEPT)  # Wh
        self.h_exp = array("i", [0] * HOURS_KEPT)
        self.h_flags = bytearray(HOURS_KEPT)
        self.d_idx = array("i", [-1] * DAYS_KEPT)  # local day number (days since 1970-01-01)
        self.d_imp = array("i", [0] * DAYS_KEPT)
        self.d_exp = array("i", [0] * DAYS_KEPT)
        self.d_max = array("i", [0] * DAYS_KEPT)  # highest hourly import of the day, Wh
        self.d_maxh = bytearray(DAYS_KEPT)  # that hour: hours after local midnight (0..24)
        self.d_nh = bytearray(DAYS_KEPT)  # hours recorded
        self.d_flags = bytearray(DAYS_KEPT)
        self.m_idx = array("i", [-1] * MONTHS_KEPT)  # LT.month_index of the local month
        self.m_imp = array("i", [0] * MONTHS_KEPT)
        self.m_exp = array("i", [0] * MONTHS_KEPT)
        self.m_cap = array("i", [0] * MONTHS_KEPT)  # capacity value, W (floor)
        self.m_flags = bytearray(MONTHS_KEPT)
        self.meter_id = ""
        self.id_raw = bytearray(MAX_ID_BYTES)  # the meter id's bytes in the reading that set meter_id
        self.id_raw_n = -1  # their length, -1: not known (compare as text)
        # meter clock of the reading being handled (no tuple per reading)
        self.c_y = self.c_mo = self.c_d = self.c_hh = self.c_mi = self.c_s = self.c_hu = 0
        self.taken = bytearray(DAYS_KEPT)  # scratch of _cap_value
        # reference (the last accepted hourly list), the one before it, rejected lists pending
        self.a_ok = False
        self.a_h = self.a_imp = self.a_exp = 0
        self.p_ok = False
        self.p_h = self.p_imp = self.p_exp = 0
        self.r_n = 0
        self.r_h = [0] * N_PENDING
        self.r_imp = [0] * N_PENDING
        self.r_exp = [0] * N_PENDING
        # running hour (RAM only); times are ms from the internal origin (see REBASE_MS)
        self.org_ms = None  # now_s * 1000 (or meter clock UTC ms) at the origin
        self.tk_last = None  # the last ticks_ms seen (update or tick) and its internal time
        self.tk_t = 0
        self.t_last = None  # time of the last reading
        self.period_ms = PERIOD_LIST2_MS  # time between messages, for readings without a clock
        self.t_sure = False  # the last reading's time is not in doubt (see _time_ms)
        self.run_t0 = None  # time of the last hour boundary seen
        self.run_wh = array("i", [0, 0])  # integrated power since then, [import, export]: whole Wh
        self.run_wms = array("i", [0, 0])  # and the rest, W*ms below WMS_PER_WH
        self.run_partial = True  # the estimate does not cover the whole running hour
        self.pi_t = None  # last import power sample: time, W
        self.pi_w = 0
        self.pe_t = None
        self.pe_w = 0
        self.cur_h = None  # start of the running hour, UTC hours
        self.l_h = None  # newest hour boundary of an accepted or pending list, and when it came (sure
        self.l_t = None  # times only): l_th hours + l_t ms (0..HOUR_MS), so the origin can move any
        self.l_th = 0  # distance; RAM only: after a boot the first 02:00 of autumn is not guessed
        self.l_on_time = False  # that list came as long after the one before as their clocks differ
        self.dirty = 0  # 2: hours or references changed (save soon), 1: only counters (save with the next)
        self.changed = False
        self.saved_t = None
        self.load_error = False  # the saved state was unreadable (wrong version): started empty
        if store is not None:
            self.load()

    # ------------------------------------------------------------------ input
    def update(self, rd, now_s=None, ticks_ms=None):
        """Account one decoded Reading. ticks_ms: time.ticks_ms() when it arrived (the firmware; ticks
        may wrap). Else now_s: device time in seconds (int, e.g. time.time()); only differences are
        used. Without either, the meter clock times the reading (or the nominal period of its list).
        Returns a RES_ code; never raises on bad data."""
        t = self._time_ms(rd, now_s, ticks_ms)
        if t is not None:
            t = self._rebase(t)
            self.t_last = t
            self._sample(rd, t)
        if rd.list_number != 3:
            self._autosave(t)
            return RES_NONE
        self.changed = False
        res = self._hourly(rd, t)
        # a new hour, reference or pending list is saved soon; a counter alone rides along later
        if self.changed:
            self.dirty = 2
        elif not self.dirty:
            self.dirty = 1
        self._autosave(t)
        return res

    def tick(self, ticks_ms):
        """The firmware's 1-s ticker: the clock follows ticks_ms through silences of any length (one
        ticks difference means something only within half the ticks period, ~6 days on 32-bit)."""
        self._rebase(self._ticks(ticks_ms))

    def _ticks(self, ticks_ms):
        t = 0 if self.tk_last is None else self.tk_t + ticks_diff(ticks_ms, self.tk_last)
        self.tk_last = ticks_ms
        self.tk_t = t
        return t

    def _rebase(self, t):
        """Internal time t, after moving the origin to it if it has drifted REBASE_MS away."""
        if -REBASE_MS < t < REBASE_MS:
            return t
        self.t_last = _shifted(self.t_last, t)
        self.run_t0 = _shifted(self.run_t0, t)
        self.pi_t = _shifted(self.pi_t, t)
        self.pe_t = _shifted(self.pe_t, t)
        self.saved_t = _shifted(self.saved_t, t)
        if self.tk_last is not None:
            self.tk_t -= t
        if self.l_t is not None:  # whole hours apart: exact for any age
            self.l_t -= t
            self.l_th += self.l_t // HOUR_MS
            self.l_t %= HOUR_MS
        if self.org_ms is not None:
            self.org_ms += t
        return 0

    def _time_ms(self, rd, now_s, ticks_ms):
        """Time of a reading in ms; sets t_sure when it does not hinge on an ambiguous meter clock."""
        self.t_sure = True
        if ticks_ms is not None:
            return self._ticks(ticks_ms)
        if now_s is not None:
            ms = int(now_s * 1000)
            if self.org_ms is None:
                self.org_ms = ms
            return ms - self.org_ms
        last = self.t_last
        if self._read_clock(rd) and self.c_mi < 60 and self.c_s < 60:
            h = LT.utc_hour(self.c_y, self.c_mo, self.c_d, self.c_hh)
            if h >= 0:
                u = h * HOUR_MS + (self.c_mi * 60 + self.c_s) * 1000 + self.c_hu * 10  # UTC ms (host path)
                if self.org_ms is None:
                    self.org_ms = u
                u -= self.org_ms
                if LT.is_repeated_h(h):  # the repeated hour in autumn: the one nearer the last reading
                    v = u + HOUR_MS
                    if last is not None and abs(v - last) < abs(u - last):
                        u = v
                    self.t_sure = last is not None and abs(u - last) < MIN_LIST3_SPACING_S * 1000
                return u
        if rd.list_number == 1:  # the fastest list sets the pace: the others take its slots
            self.period_ms = PERIOD_LIST1_AIDON_MS if rd.manufacturer == "Aidon" else PERIOD_LIST1_MS
        if last is None:
            self.t_sure = False
            return None
        return last + self.period_ms

    def _read_clock(self, rd):
        """The reading's meter clock into c_y .. c_hu; False if absent or unspecified. The deviation
        byte is ignored: meters disagree on it (han-facts §4)."""
        o = rd.time_offset
        if o < 0:
            return False
        p = rd.pool
        year = (p[o] << 8) | p[o + 1]
        if year < 2000 or year > 2199:
            return False
        self.c_y = year
        self.c_mo = p[o + 2]
        self.c_d = p[o + 3]
        self.c_hh = p[o + 5]
        self.c_mi = p[o + 6]
        second = p[o + 7]
        self.c_s = 0 if second == 0xFF else second
        hundredths = p[o + 8]
        self.c_hu = 0 if hundredths > 99 else hundredths
        return True

    def _integrate(self, k, w, dt):
        """Add w W over dt ms to running energy k (0 import, 1 export), exactly and with no product
        beyond a small int on 32-bit: w * whole seconds, w * the remaining ms."""
        ws = w * (dt // 1000)
        r = self.run_wms[k] + ws % HOUR_S * 1000 + w * (dt % 1000)
        self.run_wh[k] += ws // HOUR_S + r // WMS_PER_WH
        self.run_wms[k] = r % WMS_PER_WH

    def _sample(self, rd, t):
        self._roll(t)
        if rd.field_present[R.F_P_IMPORT]:  # (not fixed(): no tuple per reading)
            if self.pi_t is not None:
                dt = t - self.pi_t
                if 0 < dt <= self.max_gap_ms:
                    self._integrate(0, self.pi_w, dt)
                elif dt:
                    self.run_partial = True
            self.pi_t = t
            self.pi_w = _watts(rd.field_value[R.F_P_IMPORT], rd.field_exp[R.F_P_IMPORT])
        if rd.field_present[R.F_P_EXPORT]:
            if self.pe_t is not None:
                dt = t - self.pe_t
                if 0 < dt <= self.max_gap_ms:
                    self._integrate(1, self.pe_w, dt)
                elif dt:
                    self.run_partial = True
            self.pe_t = t
            self.pe_w = _watts(rd.field_value[R.F_P_EXPORT], rd.field_exp[R.F_P_EXPORT])

    def _roll(self, t):
        """No hourly list came for the boundary that was due: start the next running hour anyway."""
        if self.run_t0 is None:
            return
        if t < self.run_t0 or t - self.run_t0 > MAX_ROLL_HOURS * HOUR_MS:
            self.run_t0 = None  # the time base jumped (clock set): the boundary is unknown until a list
            self.run_partial = True
            return
        rolled = 0
        while t >= self.run_t0 + HOUR_MS + HOUR_LATE_S * 1000:
            self.run_t0 += HOUR_MS
            rolled += 1
            if self.cur_h is not None:
                self.cur_h += 1
        if rolled:
            # the new hour began at b: it keeps the part of the last sample interval after b
            b = self.run_t0
            self.run_partial = rolled > 1
            self._clear_run()
            if self.pi_t is not None and t - self.pi_t <= self.max_gap_ms:
                if self.pi_t > b:
                    self._integrate(0, self.pi_w, self.pi_t - b)
                else:
                    self.pi_t = b
            if self.pe_t is not None and t - self.pe_t <= self.max_gap_ms:
                if self.pe_t > b:
                    self._integrate(1, self.pe_w, self.pe_t - b)
                else:
                    self.pe_t = b

    def _clear_run(self):
        w = self.run_wh
        w[0] = w[1] = 0
        w = self.run_wms
        w[0] = w[1] = 0

    def _boundary(self, t):
        """An hourly list arrived: an hour boundary passed. True if it is a new one."""
        new = self.run_t0 is None or t is None or abs(t - self.run_t0) >= MIN_LIST3_SPACING_S * 1000
        if t is not None:
            if new:
                self._clear_run()
                self.run_partial = self.pi_t is None
            self.run_t0 = t
        return new

    def _hourly(self, rd, t):
        c = self.counts
        c[C_LISTS] += 1
        new = self._boundary(t)
        if new and self.cur_h is not None:
            self.cur_h += 1  # corrected below when the list is accepted
        imp = _counter_wh(rd, R.F_E_IMPORT)
        exp = _counter_wh(rd, R.F_E_EXPORT)
        if imp is None or exp is None:
            c[C_REJ_UNIT] += 1
            return RES_REJECT
        if not self._read_clock(rd) or self.c_mi != 0:
            c[C_REJ_CLOCK] += 1
            return RES_REJECT
        self._meter_id(rd)
        # the same list again: the meter repeated it (han-facts §4), detected by its clock
        if self.a_ok and imp == self.a_imp and exp == self.a_exp and self._shows(self.a_h):
            c[C_REPEATS] += 1
            if new and self.cur_h is None:
                self.cur_h = self.a_h + 1
            return RES_REPEAT
        n = self.r_n
        if n and imp == self.r_imp[n - 1] and exp == self.r_exp[n - 1] and self._shows(self.r_h[n - 1]):
            c[C_REPEATS] += 1
            return RES_REPEAT
        h = LT.utc_hour(self.c_y, self.c_mo, self.c_d, self.c_hh)
        if h < 0:
            c[C_REJ_CLOCK] += 1
            return RES_REJECT
        if LT.is_repeated_h(h):  # the repeated hour of the autumn switch (02:00 local twice)
            h1 = h + 1
            ref = self.a_h if self.a_ok else None
            if n and (ref is None or self.r_h[n - 1] > ref):
                ref = self.r_h[n - 1]
            if ref is None:
                c[C_REJ_CLOCK] += 1  # no reference to tell summer from winter time: skip one list
                return RES_REJECT
            if ref >= h:
                h = h1  # the summer-time one was seen: this is the winter-time one
            elif not (ref == self.l_h and self.l_on_time and self.t_sure
                      and ref + self._hours_since_l(t) == h):
                # Only a list that came on time after an on-time list is surely the summer-time one.
                # Otherwise it may be the winter-time one or the summer-time one repeated late
                # (han-facts §4): no way to tell, so no hour is built on it.
                c[C_REJ_CLOCK] += 1
                return RES_REJECT
        if self.l_h is None or h > self.l_h:
            # on time: as many hours after the previous list as its clock says (a late repeat is not)
            self.l_on_time = (self.t_sure and self.l_t is not None
                              and self._hours_since_l(t) == h - self.l_h)
            self.l_h = h
            self.l_t = None
            if self.t_sure:
                self.l_th = t // HOUR_MS
                self.l_t = t % HOUR_MS
        if not self.a_ok:
            self._set_ref(h, imp, exp)
            self.p_ok = False
            self.r_n = 0
            self.cur_h = h
            return RES_ANCHOR
        why = self._follows(self.a_h, self.a_imp, self.a_exp, h, imp, exp)
        if why == 0:
            self._advance(h, imp, exp)
            self.cur_h = h
            return RES_HOUR
        if why == C_REJ_CLOCK and h == self.a_h:
            why = C_REJ_CONFLICT
        c[why] += 1
        res = self._pending(h, imp, exp)
        if res == RES_HOUR:
            self.cur_h = self.a_h
        return res

    def _meter_id(self, rd):
        """meter_id from the reading (a change of meter starts over); no str when its bytes are those
        that set meter_id last."""
        i = rd.text_item[R.T_METER_ID]
        if i < 0:
            return
        off = rd.item_value[i]
        n = rd.item_len[i]
        p = rd.pool
        raw = self.id_raw
        if n == self.id_raw_n:
            k = 0
            while k < n and p[off + k] == raw[k]:
                k += 1
            if k == n:
                return
        mid = R.pool_text(p, off, n)[:MAX_ID_BYTES]
        if self.meter_id and mid != self.meter_id:
            self.counts[C_METER_CHANGES] += 1
            self.a_ok = False
            self.p_ok = False
            self.r_n = 0
        if mid != self.meter_id:
            self.changed = True
        self.meter_id = mid
        self.id_raw_n = -1
        if n <= MAX_ID_BYTES:
            for k in range(n):
                raw[k] = p[off + k]
            self.id_raw_n = n

    def _hours_since_l(self, t):
        """Whole hours (rounded) from the time of list l_h to t."""
        return (t - self.l_t + HOUR_MS // 2) // HOUR_MS - self.l_th

    def _shows(self, h):
        """True if boundary hour h reads as the local date and hour of the clock (c_y .. c_hh)."""
        y = self.c_y
        m = self.c_mo
        d = self.c_d
        if not (1 <= m <= 12 and 1 <= d <= LT.days_in_month(y, m)):
            return False
        local_h = h + LT.offset_h(h)
        return local_h // 24 == LT.days_from_date(y, m, d) and local_h % 24 == self.c_hh

    def _follows(self, h0, i0, e0, h1, i1, e1):
        """0 if list 1 can follow list 0 (later hour, counters not lower, plausible steps), else the
        counter index of the reason it cannot."""
        if h1 <= h0:
            return C_REJ_CLOCK
        if i1 < i0 or e1 < e0:
            return C_REJ_BACKWARDS
        limit = self.max_wh_per_h * (h1 - h0)
        if i1 - i0 > limit or e1 - e0 > limit:
            return C_REJ_JUMP
        return 0

    def _set_ref(self, h, imp, exp):
        self.changed = True
        self.a_ok = True
        self.a_h = h
        self.a_imp = imp
        self.a_exp = exp

    def _advance(self, h, imp, exp):
        """Accept a list that follows the reference: record the hours between them."""
        n = h - self.a_h
        if n > MAX_SPREAD_HOURS:
            self.counts[C_UNASSIGNED] += 1
            self.p_ok = False
        else:
            self._write_span(self.a_h, self.a_imp, self.a_exp, h, imp, exp)
            self.p_ok = True
            self.p_h = self.a_h
            self.p_imp = self.a_imp
            self.p_exp = self.a_exp
        self._set_ref(h, imp, exp)
        self.r_n = 0

    def _pending(self, h, imp, exp):
        """A rejected list with a usable clock: keep it; consistent ones in a row overrule the reference."""
        n = self.r_n
        if n and n < N_PENDING and not self._follows(self.r_h[n - 1], self.r_imp[n - 1], self.r_exp[n - 1],
                                                     h, imp, exp):
            pass
        else:
            n = 0
        self.r_h[n] = h
        self.r_imp[n] = imp
        self.r_exp[n] = exp
        n += 1
        self.changed = True
        self.r_n = n
        # two lists agree that the reference was a glitch upwards, and follow the list before it
        if (n >= 2 and self.p_ok and self.a_h - self.p_h <= RETRACT_MAX_HOURS and self.r_h[0] > self.a_h
                and (self.r_imp[0] < self.a_imp or self.r_exp[0] < self.a_exp)
                and not self._follows(self.p_h, self.p_imp, self.p_exp, self.r_h[0], self.r_imp[0],
                                      self.r_exp[0])):
            self.counts[C_RETRACTIONS] += 1
            self._set_ref(self.p_h, self.p_imp, self.p_exp)
            self.p_ok = False
            self._replay_pending(0, n)
            return RES_HOUR
        if n >= REANCHOR_AFTER:
            # the first of them may itself be a glitch that happens to lead into the others: only the
            # steps between the later ones are trusted
            self.counts[C_REANCHORS] += 1
            self._set_ref(self.r_h[n - 2], self.r_imp[n - 2], self.r_exp[n - 2])
            self.p_ok = False
            self._replay_pending(n - 1, n)
            return RES_HOUR
        return RES_REJECT

    def _replay_pending(self, first, n):
        for k in range(first, n):  # (_advance leaves r_h, r_imp, r_exp as they are)
            self._advance(self.r_h[k], self.r_imp[k], self.r_exp[k])
        self.r_n = 0

    # ------------------------------------------------------------------ history
    def _write_span(self, h0, i0, e0, h1, i1, e1):
        """Hours h0..h1-1 from the counters at both ends: exact for one hour; a longer gap is spread
        evenly (integer Wh, the remainder one Wh each to the first hours) and marked estimated."""
        n = h1 - h0
        di = i1 - i0
        de = e1 - e0
        est = n > 1
        if est:
            self.counts[C_GAPS] += 1
            self.counts[C_GAP_HOURS] += n
        else:
            self.counts[C_HOURS] += 1
        qi, ri = di // n, di % n
        qe, re = de // n, de % n
        for j in range(n):
            self._put_hour(h0 + j, qi + (1 if j < ri else 0), qe + (1 if j < re else 0), est)

    def _put_hour(self, h, imp, exp, est):
        s = h % HOURS_KEPT
        held = self.h_idx[s]
        if held > h:
            return  # older than the hours kept: its day and month were counted already
        old = held == h
        oi = self.h_imp[s] if old else 0
        oe = self.h_exp[s] if old else 0
        self.h_idx[s] = h
        self.h_imp[s] = imp
        self.h_exp[s] = exp
        self.h_flags[s] = F_EST if est else 0
        day = LT.local_day_h(h)
        ds = self._day_slot(day)
        if ds < 0:
            return
        self.d_imp[ds] += imp - oi
        self.d_exp[ds] += exp - oe
        start_h = LT.midnight_h(day)
        max_changed = old
        if old:
            self._recompute_day(ds, day, start_h)
        else:
            self.d_nh[ds] += 1
            if est:
                self.d_flags[ds] |= F_EST
            if self.d_nh[ds] == 1 or imp > self.d_max[ds]:
                self.d_max[ds] = imp
                self.d_maxh[ds] = h - start_h
                self.d_flags[ds] = (self.d_flags[ds] & ~F_MAX_EST) | (F_MAX_EST if est else 0)
                max_changed = True
        mi = LT.month_of_day(day)
        ms = self._month_slot(mi)
        if ms < 0:
            return
        self.m_imp[ms] += imp - oi
        self.m_exp[ms] += exp - oe
        if est:
            self.m_flags[ms] |= F_EST
        if max_changed:
            self.m_cap[ms] = self._cap_value(mi)

    def _recompute_day(self, ds, day, start_h):
        """Highest hour and flags of a day again from the hours kept (after an hour was rewritten)."""
        end_h = LT.midnight_h(day + 1)
        best = -1
        flags = 0
        for h in range(start_h, end_h):
            s = h % HOURS_KEPT
            if self.h_idx[s] != h:
                continue
            e = self.h_flags[s] & F_EST
            flags |= e
            if self.h_imp[s] > best:
                best = self.h_imp[s]
                self.d_maxh[ds] = h - start_h
                flags = (flags & ~F_MAX_EST) | (F_MAX_EST if e else 0)
        if best >= 0:
            self.d_max[ds] = best
            self.d_flags[ds] = flags

    def _day_slot(self, day):
        s = day % DAYS_KEPT
        held = self.d_idx[s]
        if held == day:
            return s
        if held > day:
            return -1
        self.d_idx[s] = day
        self.d_imp[s] = 0
        self.d_exp[s] = 0
        self.d_max[s] = 0
        self.d_maxh[s] = 0
        self.d_nh[s] = 0
        self.d_flags[s] = 0
        return s

    def _month_slot(self, mi):
        s = mi % MONTHS_KEPT
        held = self.m_idx[s]
        if held == mi:
            return s
        if held > mi:
            return -1
        self.m_idx[s] = mi
        self.m_imp[s] = 0
        self.m_exp[s] = 0
        self.m_cap[s] = 0
        self.m_flags[s] = 0
        return s

    # ------------------------------------------------------------------ capacity tariff
    def _month_days(self, mi):
        """[(max Wh, day number, slot)] of the days of month mi with recorded hours, highest first."""
        y = mi // 12
        m = mi % 12 + 1
        first = LT.days_from_date(y, m, 1)
        last = first + LT.days_in_month(y, m)
        out = []
        for s in range(DAYS_KEPT):
            d = self.d_idx[s]
            if first <= d < last and self.d_nh[s]:
                out.append((self.d_max[s], d, s))
        out.sort(key=lambda x: (-x[0], x[1]))
        return out

    def _cap_value(self, mi):
        """The capacity value of month mi (W, floor) as _capacity() gives it, without a list."""
        y = mi // 12
        m = mi % 12 + 1
        first = LT.days_from_date(y, m, 1)
        last = first + LT.days_in_month(y, m)
        taken = self.taken
        for s in range(DAYS_KEPT):
            taken[s] = 0
        total = 0
        k = 0
        while k < self.top_n:
            best = -1
            for s in range(DAYS_KEPT):
                d = self.d_idx[s]
                if first <= d < last and self.d_nh[s] and not taken[s]:
                    if best < 0 or self.d_max[s] > self.d_max[best]:
                        best = s
            if best < 0:
                break
            taken[best] = 1
            total += self.d_max[best]
            k += 1
        return total // k if k else 0

    def _capacity(self, mi):
        """(days, value W floor, step index, sum of the top days Wh, their count) of month mi."""
        days = self._month_days(mi)
        k = min(self.top_n, len(days))
        total = 0
        for j in range(k):
            total += days[j][0]
        value = total // k if k else 0
        step = 0
        for w in self.steps_w:
            if k and total >= w * k:
                step += 1
        return days, value, step, total, k

    def _step_range(self, step):
        lo = self.steps_w[step - 1] if step > 0 else 0
        hi = self.steps_w[step] if step < len(self.steps_w) else None
        return lo, hi

    def headroom(self, mi, today, used_wh):
        """(Wh more this hour before the month's value rises, Wh more before it reaches the next step
        or None on the top step), given used_wh imported so far in the running hour of day `today`."""
        days, _, step, total, k = self._capacity(mi)
        others = [x[0] for x in days if x[1] != today]
        k2 = min(self.top_n, len(others) + 1)  # days counted once this hour is part of today
        a = 0
        for j in range(k2 - 1):
            a += others[j]
        rise = 0
        if k:
            # (a + max(today, X)) / k2 <= total / k  <=>  X <= (total * k2 - a * k) / k
            rise = max(0, (total * k2 - a * k) // k - used_wh)
        nxt = None
        if step < len(self.steps_w):
            nxt = max(0, self.steps_w[step] * k2 - a - used_wh)
        return rise, nxt

    # ------------------------------------------------------------------ views
    def now_hour(self):
        """Start of the running hour (UTC hours since 1970), None before any hourly list."""
        if self.cur_h is not None:
            return self.cur_h
        if self.a_ok:
            return self.a_h
        return None

    def running_wh(self):
        """(import Wh, export Wh, partial) integrated from power since the last hour boundary."""
        return self.run_wh[0], self.run_wh[1], self.run_partial or self.run_t0 is None

    def hours(self):
        """[(start UTC s, import Wh, export Wh, estimated)] of the hours kept, oldest first."""
        out = []
        newest = max(self.h_idx)
        for h in range(newest - HOURS_KEPT + 1, newest + 1):
            s = h % HOURS_KEPT
            if h >= 0 and self.h_idx[s] == h:
                out.append((h * HOUR_S, self.h_imp[s], self.h_exp[s], bool(self.h_flags[s] & F_EST)))
        return out

    def days(self):
        """[(day number, import Wh, export Wh, max hour Wh, max hour start UTC s, hours, flags)], oldest first."""
        out = []
        newest = max(self.d_idx)
        for d in range(newest - DAYS_KEPT + 1, newest + 1):
            s = d % DAYS_KEPT
            if d >= 0 and self.d_idx[s] == d:
                start = LT.local_midnight_s(d) + self.d_maxh[s] * HOUR_S
                out.append((d, self.d_imp[s], self.d_exp[s], self.d_max[s], start, self.d_nh[s], self.d_flags[s]))
        return out

    def months(self):
        """[(month index, import Wh, export Wh, capacity W, estimated)], oldest first."""
        out = []
        newest = max(self.m_idx)
        for mi in range(newest - MONTHS_KEPT + 1, newest + 1):
            s = mi % MONTHS_KEPT
            if mi >= 0 and self.m_idx[s] == mi:
                out.append((mi, self.m_imp[s], self.m_exp[s], self.m_cap[s], bool(self.m_flags[s] & F_EST)))
        return out

    def _day_totals(self, day):
        s = day % DAYS_KEPT
        if self.d_idx[s] == day:
            return self.d_imp[s], self.d_exp[s]
        return 0, 0

    def summary(self):
        """Flat dict of the values for MQTT / Home Assistant and /data.json: integers in Wh and W
        (exact on every platform), booleans, text; None when not known yet."""
        last = None
        hs = self.hours()
        if hs:
            last = hs[-1]
        ri, re, partial = self.running_wh()
        d = {
            "last_hour_start": LT.iso_local(last[0]) if last else None,
            "last_hour_import_wh": last[1] if last else None,
            "last_hour_export_wh": last[2] if last else None,
            "last_hour_estimated": last[3] if last else None,
            "current_hour_import_wh_est": ri if self.pi_t is not None else None,  # None: no power seen yet
            "current_hour_export_wh_est": re if self.pe_t is not None else None,
            "current_hour_partial": partial,
        }
        nh = self.now_hour()
        keys = ("today_import_wh", "today_export_wh", "today_estimated", "month_import_wh", "month_export_wh",
                "month_estimated", "capacity_w", "capacity_estimated", "capacity_step", "capacity_step_low_w",
                "capacity_step_high_w", "capacity_headroom_wh", "capacity_next_step_headroom_wh",
                "last_month_capacity_w")
        for k in keys:
            d[k] = None
        if nh is not None:
            today = LT.local_day_h(nh)
            mi = LT.month_of_day(today)
            d["today_import_wh"], d["today_export_wh"] = self._day_totals(today)
            s = today % DAYS_KEPT
            d["today_estimated"] = self.d_idx[s] == today and bool(self.d_flags[s] & F_EST)
            s = mi % MONTHS_KEPT
            have = self.m_idx[s] == mi
            d["month_import_wh"] = self.m_imp[s] if have else 0
            d["month_export_wh"] = self.m_exp[s] if have else 0
            d["month_estimated"] = have and bool(self.m_flags[s] & F_EST)
            days, value, step, _, k = self._capacity(mi)
            est = False
            for j in range(k):  # a top day whose highest hour was spread over a gap
                if self.d_flags[days[j][2]] & F_MAX_EST:
                    est = True
            lo, hi = self._step_range(step)
            d["capacity_w"] = value
            d["capacity_estimated"] = est
            d["capacity_step"] = step
            d["capacity_step_low_w"] = lo
            d["capacity_step_high_w"] = hi
            d["capacity_headroom_wh"], d["capacity_next_step_headroom_wh"] = self.headroom(mi, today, ri)
            d["last_month_capacity_w"] = self._capacity(mi - 1)[1]
        c = self.counts
        d["repeats"] = c[C_REPEATS]
        d["gaps"] = c[C_GAPS]
        d["rejects"] = self.rejects()
        return d

    def rejects(self):
        n = 0
        for k in _REJECTS:
            n += self.counts[k]
        return n

    def prometheus_lines(self, prefix="han_"):
        """Prometheus text exposition lines (han-facts §6): gauges of summary() and the counters."""
        s = self.summary()
        out = []
        gauges = (
            ("last_hour_import_wh", "Import in the last complete hour (meter counters), Wh"),
            ("last_hour_export_wh", "Export in the last complete hour (meter counters), Wh"),
            ("current_hour_import_wh_est", "Import so far in the running hour, estimated from power, Wh"),
            ("today_import_wh", "Import today, complete hours, Wh"),
            ("today_export_wh", "Export today, complete hours, Wh"),
            ("month_import_wh", "Import this month, complete hours, Wh"),
            ("capacity_w", "Capacity tariff value of this month: mean of the top daily hourly maxima, W"),
            ("capacity_step", "Capacity tariff step index (0 = lowest)"),
            ("capacity_headroom_wh", "Import left in this hour before the month's capacity value rises, Wh"),
            ("capacity_next_step_headroom_wh", "Import left in this hour before the next capacity step, Wh"),
            ("last_month_capacity_w", "Capacity tariff value of last month, W"),
        )
        for name, text in gauges:
            v = s[name]
            if v is None:
                continue
            out.append("# HELP %s%s %s" % (prefix, name, text))
            out.append("# TYPE %s%s gauge" % (prefix, name))
            out.append("%s%s %d" % (prefix, name, v))
        for k in range(N_COUNTERS):
            name = "%saccounting_%s_total" % (prefix, COUNTER_NAMES[k])
            out.append("# HELP %s Hourly-list accounting: %s" % (name, COUNTER_NAMES[k].replace("_", " ")))
            out.append("# TYPE %s counter" % name)
            out.append("%s %d" % (name, self.counts[k]))
        return out

    # ------------------------------------------------------------------ flash
    def _autosave(self, t):
        if self.dirty < 2 or self.store is None:
            return
        if self.saved_t is not None and t is not None and 0 <= t - self.saved_t < self.save_interval_ms:
            return
        if self.save():
            self.saved_t = t

    def save(self):
        """Write the state to the store now (also: before a planned reboot). True on success."""
        if self.store is None:
            return False
        ok = self.store.save(self.pack())
        if ok:
            self.dirty = 0
        return ok

    def load(self):
        """Read the state from the store. True if a saved state was restored."""
        data = self.store.load()
        if data is None:
            return False
        if not self.unpack(data):
            self.load_error = True
            return False
        self.cur_h = None
        self.l_h = None
        self.l_t = None
        self.l_on_time = False
        return True

    def pack(self):
        """The persistent state as bytes (little endian, STATE_BYTES long)."""
        buf = bytearray(STATE_BYTES)
        mid = self.meter_id.encode()[:MAX_ID_BYTES]
        flags = (1 if self.a_ok else 0) | (2 if self.p_ok else 0)
        struct.pack_into(_HEAD, buf, 0, STATE_VERSION, flags, self.r_n, len(mid), mid)
        o = struct.calcsize(_HEAD)
        struct.pack_into(_REF, buf, o, self.a_h, self.a_imp, self.a_exp)
        o += _REF_BYTES
        struct.pack_into(_REF, buf, o, self.p_h, self.p_imp, self.p_exp)
        o += _REF_BYTES
        for k in range(N_PENDING):
            struct.pack_into(_REF, buf, o, self.r_h[k], self.r_imp[k], self.r_exp[k])
            o += _REF_BYTES
        o = _put(buf, o, "I", self.counts)
        for arr in (self.h_idx, self.h_imp, self.h_exp):
            o = _put(buf, o, "i", arr)
        o = _put_bytes(buf, o, self.h_flags)
        for arr in (self.d_idx, self.d_imp, self.d_exp, self.d_max):
            o = _put(buf, o, "i", arr)
        for arr in (self.d_maxh, self.d_nh, self.d_flags):
            o = _put_bytes(buf, o, arr)
        for arr in (self.m_idx, self.m_imp, self.m_exp, self.m_cap):
            o = _put(buf, o, "i", arr)
        _put_bytes(buf, o, self.m_flags)
        return buf

    def unpack(self, data):
        """Restore the state from pack() bytes. False (state untouched) if they are not of this version."""
        if len(data) != STATE_BYTES or data[0] != STATE_VERSION:
            return False
        _, flags, rn, idlen, mid = struct.unpack_from(_HEAD, data, 0)
        if rn > N_PENDING or idlen > MAX_ID_BYTES:
            return False
        self.meter_id = bytes(mid[:idlen]).decode()
        self.id_raw_n = -1
        self.a_ok = bool(flags & 1)
        self.p_ok = bool(flags & 2)
        self.r_n = rn
        o = struct.calcsize(_HEAD)
        self.a_h, self.a_imp, self.a_exp = struct.unpack_from(_REF, data, o)
        o += _REF_BYTES
        self.p_h, self.p_imp, self.p_exp = struct.unpack_from(_REF, data, o)
        o += _REF_BYTES
        for k in range(N_PENDING):
            self.r_h[k], self.r_imp[k], self.r_exp[k] = struct.unpack_from(_REF, data, o)
            o += _REF_BYTES
        o = _get(data, o, "I", self.counts)
        for arr in (self.h_idx, self.h_imp, self.h_exp):
            o = _get(data, o, "i", arr)
        o = _get_bytes(data, o, self.h_flags)
        for arr in (self.d_idx, self.d_imp, self.d_exp, self.d_max):
            o = _get(data, o, "i", arr)
        for arr in (self.d_maxh, self.d_nh, self.d_flags):
            o = _get_bytes(data, o, arr)
        for arr in (self.m_idx, self.m_imp, self.m_exp, self.m_cap):
            o = _get(data, o, "i", arr)
        _get_bytes(data, o, self.m_flags)
        return True


def _put(buf, o, code, arr):
    for v in arr:
        struct.pack_into("<" + code, buf, o, v)
        o += 4
    return o


def _get(data, o, code, arr):
    for k in range(len(arr)):
        arr[k] = struct.unpack_from("<" + code, data, o)[0]
        o += 4
    return o


def _put_bytes(buf, o, arr):
    n = len(arr)
    buf[o : o + n] = arr
    return o + n


def _get_bytes(data, o, arr):
    n = len(arr)
    arr[0:n] = data[o : o + n]
    return o + n
