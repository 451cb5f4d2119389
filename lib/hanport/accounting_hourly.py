# The hourly list of hanport.accounting (NEK OBIS list 3): the hour boundary, the meter id, the meter clock and
# its DST placement, accepting, rejecting and retracting lists, hours spread over gaps, the day and month
# history. Imported by Accounting.update() on a list 3 (a board may unload it after; on a host that passes
# no time, for every reading: clock_ms); allocates nothing once loaded (host_tests/mp_accounting_heap_check.py).
from hanport import localtime as LT
from hanport import reading as R
from hanport.accounting import (
    C_GAP_HOURS,
    C_GAPS,
    C_HOURS,
    C_LISTS,
    C_METER_CHANGES,
    C_REANCHORS,
    C_REJ_BACKWARDS,
    C_REJ_CLOCK,
    C_REJ_CONFLICT,
    C_REJ_JUMP,
    C_REJ_UNIT,
    C_REPEATS,
    C_RETRACTIONS,
    C_UNASSIGNED,
    DAYS_KEPT,
    F_EST,
    F_MAX_EST,
    HOUR_MS,
    HOURS_KEPT,
    MAX_ID_BYTES,
    MAX_SPREAD_HOURS,
    MONTHS_KEPT,
    N_PENDING,
    RES_ANCHOR,
    RES_HOUR,
    RES_REJECT,
    RES_REPEAT,
)
from hanport.accounting_capacity import top
from hanport.buffers import const

_MIN_LIST3_SPACING_S = const(1800)  # two hourly lists closer than this mark the same boundary (list 3 is hourly)
_RETRACT_MAX_HOURS = const(24)  # an accepted list later proven to be a glitch is undone if its span was this short
_PERIOD_LIST1_AIDON_MS = const(2500)  # list 1 period (Aidon HAN Interface Description v11A) for clockless readings
_PERIOD_LIST1_MS = const(2000)  # Kaifa


def hourly(acc, rd, t):
    """Account an hourly list that came at internal time t (None: unknown). A RES_ code."""
    acc.changed = False
    res = _list3(acc, rd, t)
    # a new hour, reference or pending list is saved soon; a counter alone rides along later
    if acc.changed:
        acc.dirty = 2
    elif not acc.dirty:
        acc.dirty = 1
    return res


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


def clock(acc, t, n):
    # _list3's UTC hour of the list's clock (DST's repeated hour resolved), or -1 when it is rejected
    # (counted). (A function of its own: on a board a function's bytecode is one block of heap when the
    # module loads, and the heap is in pieces at an hourly list.)
    h = LT.utc_hour(acc.c_y, acc.c_mo, acc.c_d, acc.c_hh)
    if h < 0:
        acc.counts[C_REJ_CLOCK] += 1
        return -1
    if LT.is_repeated_h(h):  # the repeated hour of the autumn switch (02:00 local twice)
        ref = acc.a_h if acc.a_ok else None
        if n and (ref is None or acc.r_h[n - 1] > ref):
            ref = acc.r_h[n - 1]
        if ref is None:
            acc.counts[C_REJ_CLOCK] += 1  # no reference to tell summer from winter time: skip one list
            return -1
        if ref >= h:
            h += 1  # the summer-time one was seen: this is the winter-time one
        elif not (ref == acc.l_h and acc.l_on_time and acc.t_sure and ref + _hours_since_l(acc, t) == h):
            # Only a list that came on time after an on-time list is surely the summer-time one.
            # Otherwise it may be the winter-time one or the summer-time one repeated late
            # (docs/han-notes.md §meter-clock, §repeated-hourly-list): no way to tell, so no hour is built on it.
            acc.counts[C_REJ_CLOCK] += 1
            return -1
    if acc.l_h is None or h > acc.l_h:
        # on time: as many hours after the previous list as its clock says (a late repeat is not)
        acc.l_on_time = acc.t_sure and acc.l_t is not None and _hours_since_l(acc, t) == h - acc.l_h
        acc.l_h = h
        acc.l_t = None
        if acc.t_sure:
            acc.l_th = t // HOUR_MS
            acc.l_t = t % HOUR_MS
    return h


def _list3(acc, rd, t):
    c = acc.counts
    c[C_LISTS] += 1
    # an hour boundary passed: a new one unless a list came less than _MIN_LIST3_SPACING_S ago
    new = acc.run_t0 is None or t is None or abs(t - acc.run_t0) >= _MIN_LIST3_SPACING_S * 1000
    if t is not None:
        if new:
            acc._clear_run()
            acc.run_partial = acc.smp_t[0] is None
        acc.run_t0 = t
    if new and acc.cur_h is not None:
        acc.cur_h += 1  # corrected below when the list is accepted
    imp = _counter_wh(rd, R.F_E_IMPORT)
    exp = _counter_wh(rd, R.F_E_EXPORT)
    if imp is None or exp is None:
        c[C_REJ_UNIT] += 1
        return RES_REJECT
    if not _read_clock(acc, rd) or acc.c_mi != 0:
        c[C_REJ_CLOCK] += 1
        return RES_REJECT
    _meter_id(acc, rd)
    # the same list again: the meter repeated it (docs/han-notes.md §repeated-hourly-list), detected by its clock
    if acc.a_ok and imp == acc.a_imp and exp == acc.a_exp and _shows(acc, acc.a_h):
        c[C_REPEATS] += 1
        if new and acc.cur_h is None:
            acc.cur_h = acc.a_h + 1
        return RES_REPEAT
    n = acc.r_n
    if n and imp == acc.r_imp[n - 1] and exp == acc.r_exp[n - 1] and _shows(acc, acc.r_h[n - 1]):
        c[C_REPEATS] += 1
        return RES_REPEAT
    h = clock(acc, t, n)
    if h < 0:
        return RES_REJECT
    if not acc.a_ok:
        _set_ref(acc, h, imp, exp)
        acc.p_ok = False
        acc.r_n = 0
        acc.cur_h = h
        return RES_ANCHOR
    why = _follows(acc, acc.a_h, acc.a_imp, acc.a_exp, h, imp, exp)
    if why == 0:
        _advance(acc, h, imp, exp)
        acc.cur_h = h
        return RES_HOUR
    if why == C_REJ_CLOCK and h == acc.a_h:
        why = C_REJ_CONFLICT
    c[why] += 1
    res = _pending(acc, h, imp, exp)
    if res == RES_HOUR:
        acc.cur_h = acc.a_h
    return res


def clock_ms(acc, rd):
    """Time of a reading in ms from its meter clock (Accounting.update without ticks_ms or now_s: a host
    replaying a file), else from the last one and the nominal period; None before any. t_sure cleared
    when it hinges on an ambiguous clock."""
    last = acc.t_last
    if _read_clock(acc, rd) and acc.c_mi < 60 and acc.c_s < 60:
        h = LT.utc_hour(acc.c_y, acc.c_mo, acc.c_d, acc.c_hh)
        if h >= 0:
            u = h * HOUR_MS + (acc.c_mi * 60 + acc.c_s) * 1000 + acc.c_hu * 10  # UTC ms
            if acc.org_ms is None:
                acc.org_ms = u
            u -= acc.org_ms
            if LT.is_repeated_h(h):  # the repeated hour in autumn: the one nearer the last reading
                v = u + HOUR_MS
                if last is not None and abs(v - last) < abs(u - last):
                    u = v
                acc.t_sure = last is not None and abs(u - last) < _MIN_LIST3_SPACING_S * 1000
            return u
    if rd.list_number == 1:  # the fastest list sets the pace: the others take its slots
        acc.period_ms = _PERIOD_LIST1_AIDON_MS if rd.manufacturer == "Aidon" else _PERIOD_LIST1_MS
    if last is None:
        acc.t_sure = False
        return None
    return last + acc.period_ms


def _read_clock(acc, rd):
    """The reading's meter clock into acc.c_y .. c_hu; False if absent or unspecified. The deviation
    byte is ignored: meters disagree on it (docs/han-notes.md §meter-clock)."""
    o = rd.time_offset
    if o < 0:
        return False
    p = rd.pool
    year = (p[o] << 8) | p[o + 1]
    if year < 2000 or year > 2199:
        return False
    acc.c_y = year
    acc.c_mo = p[o + 2]
    acc.c_d = p[o + 3]
    acc.c_hh = p[o + 5]
    acc.c_mi = p[o + 6]
    second = p[o + 7]
    acc.c_s = 0 if second == 0xFF else second
    hundredths = p[o + 8]
    acc.c_hu = 0 if hundredths > 99 else hundredths
    return True


def _meter_id(acc, rd):
    """meter_id from the reading (a change of meter starts over); no str when its bytes are those
    that set meter_id last."""
    i = rd.text_item[R.T_METER_ID]
    if i < 0:
        return
    off = rd.item_value[i]
    n = rd.item_len[i]
    p = rd.pool
    raw = acc.id_raw
    if n == acc.id_raw_n:
        k = 0
        while k < n and p[off + k] == raw[k]:
            k += 1
        if k == n:
            return
    mid = R.pool_text(p, off, n)[:MAX_ID_BYTES]
    if mid != acc.meter_id:
        acc.changed = True
        if acc.meter_id:
            acc.counts[C_METER_CHANGES] += 1
            acc.a_ok = acc.p_ok = False
            acc.r_n = 0
    acc.meter_id = mid
    acc.id_raw_n = -1
    if n <= MAX_ID_BYTES:
        for k in range(n):
            raw[k] = p[off + k]
        acc.id_raw_n = n


def _hours_since_l(acc, t):
    """Whole hours (rounded) from the time of list l_h to t."""
    return (t - acc.l_t + HOUR_MS // 2) // HOUR_MS - acc.l_th


def _shows(acc, h):
    """True if boundary hour h reads as the local date and hour of the clock (c_y .. c_hh)."""
    y = acc.c_y
    m = acc.c_mo
    d = acc.c_d
    if not (1 <= m <= 12 and 1 <= d <= LT.days_in_month(y, m)):
        return False
    local_h = h + LT.offset_h(h)
    return local_h // 24 == LT.days_from_date(y, m, d) and local_h % 24 == acc.c_hh


def _follows(acc, h0, i0, e0, h1, i1, e1):
    """0 if list 1 can follow list 0 (later hour, counters not lower, plausible steps), else the
    counter index of the reason it cannot."""
    if h1 <= h0:
        return C_REJ_CLOCK
    if i1 < i0 or e1 < e0:
        return C_REJ_BACKWARDS
    limit = acc.max_wh_per_h * (h1 - h0)
    if i1 - i0 > limit or e1 - e0 > limit:
        return C_REJ_JUMP
    return 0


def _set_ref(acc, h, imp, exp):
    acc.changed = True
    acc.a_ok = True
    acc.a_h = h
    acc.a_imp = imp
    acc.a_exp = exp


def _advance(acc, h, imp, exp):
    """Accept a list that follows the reference: record the hours between them."""
    if h - acc.a_h > MAX_SPREAD_HOURS:
        acc.counts[C_UNASSIGNED] += 1
        acc.p_ok = False
    else:
        _write_span(acc, acc.a_h, acc.a_imp, acc.a_exp, h, imp, exp)
        acc.p_ok = True
        acc.p_h = acc.a_h
        acc.p_imp = acc.a_imp
        acc.p_exp = acc.a_exp
    _set_ref(acc, h, imp, exp)
    acc.r_n = 0


def _pending(acc, h, imp, exp):
    """A rejected list with a usable clock: keep it; consistent ones in a row overrule the reference."""
    rh = acc.r_h
    ri = acc.r_imp
    re = acc.r_exp
    n = acc.r_n
    if not n or n >= N_PENDING or _follows(acc, rh[n - 1], ri[n - 1], re[n - 1], h, imp, exp):
        n = 0
    rh[n] = h
    ri[n] = imp
    re[n] = exp
    n += 1
    acc.changed = True
    acc.r_n = n
    # two lists agree that the reference was a glitch upwards, and follow the list before it
    if (n >= 2 and acc.p_ok and acc.a_h - acc.p_h <= _RETRACT_MAX_HOURS and rh[0] > acc.a_h
            and (ri[0] < acc.a_imp or re[0] < acc.a_exp)
            and not _follows(acc, acc.p_h, acc.p_imp, acc.p_exp, rh[0], ri[0], re[0])):
        acc.counts[C_RETRACTIONS] += 1
        first = 0
        _set_ref(acc, acc.p_h, acc.p_imp, acc.p_exp)
    elif n >= N_PENDING:
        # that many consistent rejected lists in a row: the last two are the new reference. The first of
        # them may itself be a glitch that happens to lead into the others: only the steps between the
        # later ones are trusted
        acc.counts[C_REANCHORS] += 1
        first = n - 1
        _set_ref(acc, rh[n - 2], ri[n - 2], re[n - 2])
    else:
        return RES_REJECT
    acc.p_ok = False
    for k in range(first, n):  # (_advance leaves r_h, r_imp, r_exp as they are)
        _advance(acc, rh[k], ri[k], re[k])
    acc.r_n = 0
    return RES_HOUR


# ------------------------------------------------------------------ history
def _write_span(acc, h0, i0, e0, h1, i1, e1):
    """Hours h0..h1-1 from the counters at both ends: exact for one hour; a longer gap is spread
    evenly (integer Wh, the remainder one Wh each to the first hours) and marked estimated."""
    n = h1 - h0
    di = i1 - i0
    de = e1 - e0
    est = n > 1
    if est:
        acc.counts[C_GAPS] += 1
        acc.counts[C_GAP_HOURS] += n
    else:
        acc.counts[C_HOURS] += 1
    qi, ri = di // n, di % n
    qe, re = de // n, de % n
    for j in range(n):
        _put_hour(acc, h0 + j, qi + (1 if j < ri else 0), qe + (1 if j < re else 0), est)


def _put_hour(acc, h, imp, exp, est):
    s = h % HOURS_KEPT
    held = acc.h_idx[s]
    if held > h:
        return  # older than the hours kept: its day and month were counted already
    old = held == h
    oi = acc.h_imp[s] if old else 0
    oe = acc.h_exp[s] if old else 0
    acc.h_idx[s] = h
    acc.h_imp[s] = imp
    acc.h_exp[s] = exp
    acc.h_flags[s] = F_EST if est else 0
    day = LT.local_day_h(h)
    ds = _day_slot(acc, day)
    if ds < 0:
        return
    acc.d_imp[ds] += imp - oi
    acc.d_exp[ds] += exp - oe
    start_h = LT.midnight_h(day)
    max_changed = old
    if old:
        _recompute_day(acc, ds, day, start_h)
    else:
        acc.d_nh[ds] += 1
        if est:
            acc.d_flags[ds] |= F_EST
        if acc.d_nh[ds] == 1 or imp > acc.d_max[ds]:
            acc.d_max[ds] = imp
            acc.d_maxh[ds] = h - start_h
            acc.d_flags[ds] = (acc.d_flags[ds] & ~F_MAX_EST) | (F_MAX_EST if est else 0)
            max_changed = True
    mi = LT.month_of_day(day)
    ms = _month_slot(acc, mi)
    if ms < 0:
        return
    acc.m_imp[ms] += imp - oi
    acc.m_exp[ms] += exp - oe
    if est:
        acc.m_flags[ms] |= F_EST
    if max_changed:
        acc.m_cap[ms] = top(acc, mi, acc.top_n)  # the month's capacity value


def _recompute_day(acc, ds, day, start_h):
    """Highest hour and flags of a day again from the hours kept (after an hour was rewritten)."""
    best = -1
    flags = 0
    for h in range(start_h, LT.midnight_h(day + 1)):
        s = h % HOURS_KEPT
        if acc.h_idx[s] != h:
            continue
        e = acc.h_flags[s] & F_EST
        flags |= e
        if acc.h_imp[s] > best:
            best = acc.h_imp[s]
            acc.d_maxh[ds] = h - start_h
            flags = (flags & ~F_MAX_EST) | (F_MAX_EST if e else 0)
    if best >= 0:
        acc.d_max[ds] = best
        acc.d_flags[ds] = flags


def _day_slot(acc, day):
    s = day % DAYS_KEPT
    held = acc.d_idx[s]
    if held == day:
        return s
    if held > day:
        return -1
    acc.d_idx[s] = day
    acc.d_imp[s] = acc.d_exp[s] = acc.d_max[s] = 0
    acc.d_maxh[s] = acc.d_nh[s] = acc.d_flags[s] = 0
    return s


def _month_slot(acc, mi):
    s = mi % MONTHS_KEPT
    held = acc.m_idx[s]
    if held == mi:
        return s
    if held > mi:
        return -1
    acc.m_idx[s] = mi
    acc.m_imp[s] = acc.m_exp[s] = acc.m_cap[s] = 0
    acc.m_flags[s] = 0
    return s
