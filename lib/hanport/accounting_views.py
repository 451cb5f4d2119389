# The outputs of hanport.accounting: the capacity tariff of a month and the summary (MQTT / Home Assistant,
# /data.json, /metrics). Imported when an output is asked for (a board may unload it after); its JSON
# object is made by accounting_json, the history lists by accounting_history, the Prometheus lines by prom.
from hanport import localtime as LT
from hanport.accounting import (
    C_GAPS,
    C_REPEATS,
    DAYS_KEPT,
    F_EST,
    F_MAX_EST,
    HOUR_S,
    HOURS_KEPT,
    MONTHS_KEPT,
)
from hanport.accounting_capacity import marked, top

RESULT_NAMES = ("none", "hour", "anchor", "repeat", "reject")  # of the RES_ codes of Accounting.update()
COUNTER_NAMES = ("lists", "hours", "repeats", "gaps", "gap_hours", "rejects_backwards", "rejects_jump",
                 "rejects_clock", "rejects_conflict", "rejects_unit", "retractions", "reanchors",
                 "meter_changes", "unassigned_gaps")  # of Accounting.counts (index C_*)

# ------------------------------------------------------------------ capacity tariff
def capacity(acc, mi):
    """(top days [(max Wh, day number, slot)] highest first, value W floor, step index, sum of the top
    days Wh) of month mi."""
    value = top(acc, mi, acc.top_n)
    days, total = marked(acc)
    step = 0
    for w in acc.steps_w:
        if days and total >= w * len(days):
            step += 1
    return days, value, step, total


def step_range(acc, step):
    """(low W, high W or None on the top step) of a capacity step."""
    s = acc.steps_w
    return s[step - 1] if step > 0 else 0, s[step] if step < len(s) else None


def headroom_bases(acc, mi, today):
    """(R, N): the running hour of day `today` may import max(0, R - used Wh) more before the month's
    value rises and max(0, N - used Wh) before it reaches the next step (N None on the top step). Both
    hold for the whole hour: the history changes only with an hourly list."""
    days, _, step, total = capacity(acc, mi)
    k = len(days)
    top(acc, mi, acc.top_n - 1, today)  # the other days counted once this hour is part of today
    others, a = marked(acc)
    k2 = len(others) + 1
    # (a + max(today, X)) / k2 <= total / k  <=>  X <= (total * k2 - a * k) / k
    rise = (total * k2 - a * k) // k if k else 0
    nxt = acc.steps_w[step] * k2 - a if step < len(acc.steps_w) else None
    return rise, nxt


def headroom(acc, mi, today, used_wh):
    """(Wh more this hour before the month's value rises, Wh more before it reaches the next step
    or None on the top step), given used_wh imported so far in the running hour of day `today`."""
    rise, nxt = headroom_bases(acc, mi, today)
    return max(0, rise - used_wh), None if nxt is None else max(0, nxt - used_wh)


# ------------------------------------------------------------------ summary and its renderings
def summary(acc):
    """Flat dict of the values for MQTT / Home Assistant and /data.json: integers in Wh and W
    (exact on every platform), booleans, text; None when not known yet."""
    h = max(acc.h_idx)  # the newest hour kept (-1: none)
    s = h % HOURS_KEPT
    ri, re, partial = acc.running_wh()
    d = {
        "last_hour_start": LT.iso_local(h * HOUR_S) if h >= 0 else None,
        "last_hour_import_wh": acc.h_imp[s] if h >= 0 else None,
        "last_hour_export_wh": acc.h_exp[s] if h >= 0 else None,
        "last_hour_estimated": bool(acc.h_flags[s] & F_EST) if h >= 0 else None,
        "current_hour_import_wh_est": ri if acc.smp_t[0] is not None else None,  # None: no power seen yet
        "current_hour_export_wh_est": re if acc.smp_t[1] is not None else None,
        "current_hour_partial": partial,
    }
    for k in ("today_import_wh", "today_export_wh", "today_estimated", "month_import_wh", "month_export_wh",
              "month_estimated", "capacity_w", "capacity_estimated", "capacity_step", "capacity_step_low_w",
              "capacity_step_high_w", "capacity_headroom_wh", "capacity_next_step_headroom_wh",
              "last_month_capacity_w", "headroom_base_wh", "next_step_base_wh"):
        d[k] = None
    nh = acc.now_hour()
    if nh is not None:
        month(acc, d, nh)
    d["repeats"] = acc.counts[C_REPEATS]
    d["gaps"] = acc.counts[C_GAPS]
    d["rejects"] = acc.rejects()
    return d


def month(acc, d, hour):
    # summary()'s values of today, this month and the capacity tariff in the UTC hour `hour` (a function of
    # its own: on a board a function's bytecode is one block of heap when the module loads, the heap is in pieces)
    ri = acc.run_wh[0]  # (Accounting.running_wh's import Wh)
    today = LT.local_day_h(hour)
    mi = LT.month_of_day(today)
    s = today % DAYS_KEPT
    have = acc.d_idx[s] == today
    d["today_import_wh"] = acc.d_imp[s] if have else 0
    d["today_export_wh"] = acc.d_exp[s] if have else 0
    d["today_estimated"] = have and bool(acc.d_flags[s] & F_EST)
    s = mi % MONTHS_KEPT
    have = acc.m_idx[s] == mi
    d["month_import_wh"] = acc.m_imp[s] if have else 0
    d["month_export_wh"] = acc.m_exp[s] if have else 0
    d["month_estimated"] = have and bool(acc.m_flags[s] & F_EST)
    days, value, step, _ = capacity(acc, mi)
    est = False
    for x in days:  # a top day whose highest hour was spread over a gap
        if acc.d_flags[x[2]] & F_MAX_EST:
            est = True
    d["capacity_w"] = value
    d["capacity_estimated"] = est
    d["capacity_step"] = step
    d["capacity_step_low_w"], d["capacity_step_high_w"] = step_range(acc, step)
    rise, nxt = headroom_bases(acc, mi, today)
    d["headroom_base_wh"], d["next_step_base_wh"] = rise, nxt  # (for Accounting.live_json)
    d["capacity_headroom_wh"] = max(0, rise - ri)
    d["capacity_next_step_headroom_wh"] = None if nxt is None else max(0, nxt - ri)
    lm = top(acc, mi - 1, acc.top_n)
    d["last_month_capacity_w"] = lm if max(acc.taken) else None  # null, not 0, without a day of it


def next_day_hour(h):
    """The first UTC hour of the local day after the one of UTC hour h (None for None): a summary made
    in hour h holds until then, unless an hourly list changes the history."""
    if h is None:
        return None
    day = LT.local_day_h(h)
    h += 1
    while LT.local_day_h(h) == day:
        h += 1
    return h


