# Energy accounting from the meter's hourly list (NEK OBIS list 3): exact hourly import/export from counter
# differences, hour/day/month history, the Norwegian capacity tariff, a running-hour estimate, saved to flash.
# This module is what runs per reading (time, the running hour's power); the rest is imported when needed:
# accounting_hourly (the hourly list), accounting_views (outputs), accounting_store (flash). A board may
# drop those from sys.modules after use (firmware/mem.py); nothing here holds on to them.
from hanport import reading as R
from hanport.buffers import const
from hanport.render import decimal

try:
    from time import ticks_diff  # MicroPython: ticks wrap (half the period is the useful range)
except ImportError:  # CPython: a ticks value is a plain millisecond count

    def ticks_diff(a, b):
        return a - b

# --- history kept: at least 72 hours, 62 days, 24 months ---
HOURS_KEPT = const(72)
DAYS_KEPT = const(62)  # two months: this and last month's capacity tariffs (docs/han-notes.md §capacity-tariff)
MONTHS_KEPT = const(24)

# --- capacity tariff (grid companies' tariff rules, docs/han-notes.md §capacity-tariff: steps differ per grid company,
# so both are configurable) ---
_DEFAULT_STEPS_KW = const((2, 5, 10, 15, 20, 25, 50, 75, 100))
_DEFAULT_TOP_DAYS = const(3)  # the month's value is the mean of the three highest daily maxima

# --- robustness ---
_DEFAULT_MAX_POWER_W = const(1000000)  # a counter step above this mean power over its hours is a glitch, not energy
MAX_SPREAD_HOURS = const(744)  # a gap between hourly lists up to 31 days is spread over its hours, longer is not
_DEFAULT_MAX_SAMPLE_GAP_S = const(120)  # power samples further apart are not integrated (estimate marked partial)
_HOUR_LATE_S = const(120)  # list 3 is due xx:00:05-10 (docs/han-notes.md §list-timing); this late, the hour rolls on
_MAX_ROLL_HOURS = const(48)  # a longer step in reading time is a jump of the time base, not hours without lists
_DEFAULT_SAVE_INTERVAL_S = const(900)  # at most one flash write per 15 minutes (wear); hourly lists come hourly

HOUR_S = const(3600)
HOUR_MS = const(3600000)
_WMS_PER_WH = const(3600000)  # watt-milliseconds in a watt-hour
# Internal times are ms from an origin that moves (every stored time shifted) once one passes
# REBASE_MS, so they stay small ints on 32-bit MicroPython (below 2**30) for any uptime. Stored times
# further than _STALE_MS from the origin are pinned there: that old, they act the same (gaps, rolls).
REBASE_MS = const(1 << 28)  # 3.1 days
_STALE_MS = const(1 << 29)  # 6.2 days

# --- results of update() ---
_RES_NONE = const(0)  # not an hourly list: its power went into the running-hour estimate
RES_HOUR = const(1)  # one or more hours were recorded
RES_ANCHOR = const(2)  # first usable hourly list: the reference for the next hour, no hour yet
RES_REPEAT = const(3)  # the same hourly list again (same clock, same counters): ignored
RES_REJECT = const(4)  # the hourly list was rejected (see the rejects_* counters)
# (their names, RESULT_NAMES, and COUNTER_NAMES below: in accounting_views, see __getattr__)

# --- counters (index into Accounting.counts; kept on flash) ---
C_LISTS = const(0)  # hourly lists seen
C_HOURS = const(1)  # hours recorded from two consecutive hourly lists (exact)
C_REPEATS = const(2)  # repeated hourly lists (known Aidon bug, docs/han-notes.md §repeated-hourly-list)
C_GAPS = const(3)  # gaps between accepted hourly lists (missing hours), spread over their hours
C_GAP_HOURS = const(4)  # hours filled by spreading (marked estimated)
C_REJ_BACKWARDS = const(5)  # a counter lower than the reference
C_REJ_JUMP = const(6)  # a counter step above max_power_w over the hours it spans
C_REJ_CLOCK = const(7)  # clock missing, not on the hour, skipped local time, earlier than the reference, ambiguous
C_REJ_CONFLICT = const(8)  # same clock as the reference but different counters
C_REJ_UNIT = const(9)  # counters missing or finer than 1 Wh
C_RETRACTIONS = const(10)  # an accepted list found to be a glitch later: its hours redone as a spread
C_REANCHORS = const(11)  # a new reference taken after N_PENDING consistent rejected lists
C_METER_CHANGES = const(12)  # the meter id changed: new reference
C_UNASSIGNED = const(13)  # gaps longer than MAX_SPREAD_HOURS: their energy is in no hour
N_COUNTERS = const(14)

# --- flags ---
F_EST = const(1)  # hour: spread over a gap; day/month: holds such an hour
F_MAX_EST = const(2)  # day: its highest hour is an estimate

MAX_ID_BYTES = const(24)  # meter id bytes kept (and saved)
N_PENDING = const(3)  # rejected lists kept: this many consistent ones in a row re-anchor


def __getattr__(name):
    # names for output (RESULT_NAMES, COUNTER_NAMES) are kept with the outputs: not resident on a board
    if name in ("RESULT_NAMES", "COUNTER_NAMES"):
        import hanport.accounting_views

        return getattr(hanport.accounting_views, name)
    raise AttributeError(name)


def _shifted(v, d):
    """A stored time v after the origin moved by d ms (None stays None), pinned within _STALE_MS."""
    if v is None:
        return None
    v -= d
    if v < -_STALE_MS:
        return -_STALE_MS
    if v > _STALE_MS:
        return _STALE_MS
    return v


class Accounting:
    """Hour, day and month energy and the capacity tariff from the hourly lists of one meter.

    acc = Accounting(store=persist.Store("/acc"))     # loads the saved state
    for each decoded Reading rd: acc.update(rd, ticks_ms=time.ticks_ms())  # saves after an hourly list
    once a second: acc.tick(time.ticks_ms())             # keeps the clock across silences
    acc.summary(), acc.prometheus_lines(); hanport.accounting_report.state_json(acc) on a host
    Energies are integer Wh throughout (exact on 32-bit-float MicroPython). With ticks_ms and no store,
    update() allocates nothing on 32-bit MicroPython once accounting_hourly is loaded (an hourly list
    imports it; host_tests/mp_accounting_heap_check.py). The methods below the running hour import
    their module on each call: accounting_views (outputs), accounting_store (the state's layout: also
    Accounting() itself, save, load)."""

    def __init__(self, store=None, steps_kw=_DEFAULT_STEPS_KW, top_days=_DEFAULT_TOP_DAYS,
                 max_power_w=_DEFAULT_MAX_POWER_W, max_sample_gap_s=_DEFAULT_MAX_SAMPLE_GAP_S,
                 save_interval_s=_DEFAULT_SAVE_INTERVAL_S):
        import hanport.accounting_store  # (the set-up is there: one-time code, out of the heap after)

        hanport.accounting_store.init(self, store, steps_kw, top_days, max_power_w, max_sample_gap_s,
                                      save_interval_s)
        if store is not None:
            self.load()

    # ------------------------------------------------------------------ per reading
    def update(self, rd, now_s=None, ticks_ms=None, save=True):
        """Account one decoded Reading. ticks_ms: time.ticks_ms() when it arrived (the firmware; ticks
        may wrap). Else now_s: device time in seconds (int, e.g. time.time()); only differences are
        used. Without either, the meter clock times the reading (or the nominal period of its list).
        save=False: the caller saves later with save_due(tick(ticks_ms)) (the firmware, after the
        hourly list's module has left the heap). Returns a RES_ code; never raises on bad data."""
        self.t_sure = True
        t = self.tick(ticks_ms) if ticks_ms is not None else self._time_ms(rd, now_s)
        if t is not None:
            t = self._rebase(t)
            self.t_last = t
            self._roll(t)
            for k in range(2):  # import, export power (fields F_P_IMPORT, F_P_EXPORT; not fixed(): no tuple)
                f = R.F_P_IMPORT + k
                if rd.field_present[f]:
                    t0 = self.smp_t[k]
                    if t0 is not None:
                        dt = t - t0
                        if 0 < dt <= self.max_gap_ms:
                            self._integrate(k, dt)
                        elif dt:
                            self.run_partial = True
                    self.smp_t[k] = t
                    v = rd.field_value[f]
                    e = rd.field_exp[f]
                    self.smp_w[k] = v * 10**e if e >= 0 else v // 10 ** (-e)
        res = _RES_NONE
        if rd.list_number == 3:
            import hanport.accounting_hourly

            res = hanport.accounting_hourly.hourly(self, rd, t)
        if save:
            self.save_due(t)
        return res

    def save_due(self, t):
        """Save if hours or references changed (dirty 2), unless the last save is not save_interval_ms
        old at internal time t (update()'s, or tick()'s). True if it saved."""
        if (self.dirty > 1 and self.store is not None
                and (self.saved_t is None or t is None or not 0 <= t - self.saved_t < self.save_interval_ms)
                and self.save()):
            self.saved_t = t
            return True
        return False

    def tick(self, ticks_ms):
        """The firmware's 1-s ticker: the clock follows ticks_ms through silences of any length (one
        ticks difference means something only within half the ticks period, ~6 days on 32-bit).
        Returns the internal time of ticks_ms."""
        t = 0 if self.tk_last is None else self.tk_t + ticks_diff(ticks_ms, self.tk_last)
        self.tk_last = ticks_ms
        self.tk_t = t
        return self._rebase(t)

    def _rebase(self, t):
        """Internal time t, after moving the origin to it if it has drifted REBASE_MS away."""
        if -REBASE_MS < t < REBASE_MS:
            return t
        self.t_last = _shifted(self.t_last, t)
        self.run_t0 = _shifted(self.run_t0, t)
        for k in range(2):
            self.smp_t[k] = _shifted(self.smp_t[k], t)
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

    def _time_ms(self, rd, now_s):
        """Time of a reading without ticks_ms, in ms: from now_s, else from the meter clock."""
        if now_s is not None:
            ms = int(now_s * 1000)
            if self.org_ms is None:
                self.org_ms = ms
            return ms - self.org_ms
        import hanport.accounting_hourly  # (a host replaying a file; the firmware passes ticks_ms)

        return hanport.accounting_hourly.clock_ms(self, rd)

    def _integrate(self, k, dt):
        """Add power sample k (0 import, 1 export) over dt ms to its running energy, exactly and with no
        product beyond a small int on 32-bit: W * whole seconds, W * the remaining ms."""
        w = self.smp_w[k]
        ws = w * (dt // 1000)
        r = self.run_wms[k] + ws % HOUR_S * 1000 + w * (dt % 1000)
        self.run_wh[k] += ws // HOUR_S + r // _WMS_PER_WH
        self.run_wms[k] = r % _WMS_PER_WH

    def _roll(self, t):
        """No hourly list came for the boundary that was due: start the next running hour anyway."""
        if self.run_t0 is None:
            return
        if t < self.run_t0 or t - self.run_t0 > _MAX_ROLL_HOURS * HOUR_MS:
            self.run_t0 = None  # the time base jumped (clock set): the boundary is unknown until a list
            self.run_partial = True
            return
        rolled = 0
        while t >= self.run_t0 + HOUR_MS + _HOUR_LATE_S * 1000:
            self.run_t0 += HOUR_MS
            rolled += 1
            if self.cur_h is not None:
                self.cur_h += 1
        if rolled:
            # the new hour began at b: it keeps the part of the last sample interval after b
            b = self.run_t0
            self.run_partial = rolled > 1
            self._clear_run()
            for k in range(2):
                t0 = self.smp_t[k]
                if t0 is not None and t - t0 <= self.max_gap_ms:
                    if t0 > b:
                        self._integrate(k, t0 - b)
                    else:
                        self.smp_t[k] = b

    def _clear_run(self):
        w = self.run_wh
        w[0] = w[1] = 0
        w = self.run_wms
        w[0] = w[1] = 0

    # ------------------------------------------------------------------ small views
    def now_hour(self):
        """Start of the running hour (UTC hours since 1970), None before any hourly list."""
        if self.cur_h is not None:
            return self.cur_h
        return self.a_h if self.a_ok else None

    def running_wh(self):
        """(import Wh, export Wh, partial) integrated from power since the last hour boundary."""
        return self.run_wh[0], self.run_wh[1], self.run_partial or self.run_t0 is None

    def live_values(self, rise, nxt):
        """The summary() values that change with every reading (accounting_json.LIVE_KEYS, in that
        order) now, from the headroom bases of the running hour (accounting_views.headroom_bases)."""
        ri, re, partial = self.running_wh()
        return (ri if self.smp_t[0] is not None else None, re if self.smp_t[1] is not None else None, partial,
                None if rise is None else max(0, rise - ri), None if nxt is None else max(0, nxt - ri))

    def live_json(self, template, rise, nxt):
        """The accounting object's JSON from accounting_json.json_template() (made in this local
        day, with no hourly list since) and the running hour's values now: what
        accounting_json(summary()) gives, without loading an output module."""
        v = self.live_values(rise, nxt)
        return template % ("null" if v[0] is None else decimal(v[0], -3), "null" if v[1] is None else decimal(v[1], -3),
                           "true" if v[2] else "false", "null" if v[3] is None else decimal(v[3], -3),
                           "null" if v[4] is None else decimal(v[4], -3))

    def rejects(self):
        """Hourly lists rejected, all reasons (the rejects_* counters)."""
        n = 0
        for k in range(C_REJ_BACKWARDS, C_REJ_UNIT + 1):
            n += self.counts[k]
        return n

    # ------------------------------------------------------------------ capacity tariff
    # ------------------------------------------------------------------ on demand: outputs (accounting_views)
    def summary(self):
        """Flat dict of the values for MQTT / Home Assistant and /data.json: integers in Wh and W
        (exact on every platform), booleans, text; None when not known yet."""
        import hanport.accounting_views

        return hanport.accounting_views.summary(self)

    def headroom(self, mi, today, used_wh):
        """(Wh more this hour before the month's value rises, Wh more before it reaches the next step
        or None on the top step), given used_wh imported so far in the running hour of day `today`."""
        import hanport.accounting_views

        return hanport.accounting_views.headroom(self, mi, today, used_wh)

    def hours(self):
        """[(start UTC s, import Wh, export Wh, estimated)] of the hours kept, oldest first."""
        import hanport.accounting_history

        return hanport.accounting_history.hours(self)

    def days(self):
        """[(day number, import Wh, export Wh, max hour Wh, max hour start UTC s, hours, flags)], oldest first."""
        import hanport.accounting_history

        return hanport.accounting_history.days(self)

    def months(self):
        """[(month index, import Wh, export Wh, capacity W, estimated)], oldest first."""
        import hanport.accounting_history

        return hanport.accounting_history.months(self)

    def prometheus_lines(self, prefix="han_"):
        """Prometheus text exposition format lines: gauges of summary() and the counters."""
        import hanport.accounting_views

        s = hanport.accounting_views.summary(self)
        names = hanport.accounting_views.COUNTER_NAMES
        from hanport import prom

        out = []
        prom.accounting_metrics(out, s, self.counts, names, prefix)
        return out

    # ------------------------------------------------------------------ on demand: flash (accounting_store)
    def pack(self):
        """The persistent state as a bytearray (little endian, accounting_store.STATE_BYTES long)."""
        import hanport.accounting_store

        return hanport.accounting_store.pack(self)

    def unpack(self, data):
        """Restore the state from pack() bytes. False (state untouched) if they are not of this version."""
        import hanport.accounting_store

        return hanport.accounting_store.unpack(self, data)

    def save(self):
        """Write the state to the store now (also: before a planned reboot). True on success."""
        import hanport.accounting_store

        return hanport.accounting_store.save(self)

    def load(self):
        """Read the state from the store. True if a saved state was restored."""
        import hanport.accounting_store

        return hanport.accounting_store.load(self)
