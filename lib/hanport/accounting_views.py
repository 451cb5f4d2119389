# The outputs of hanport.accounting: the capacity tariff of a month, the summary (MQTT / Home Assistant,
# /data.json, /metrics) and its JSON object. Imported when an output is asked for (a board may unload it
# after); the history lists are in accounting_history, the Prometheus lines in prom.
import json

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
from hanport.render import decimal

# The accounting object: (key, summary() key, exponent, from history). An exponent renders the Wh / W
# integer as kWh / kW exactly (decimal(value, -3), never a float); None copies the value (bool, int,
# text). Every key is always present, null while unknown (never 0 for unknown).
# Values from the history are unknown (null) until the first complete hour is recorded: before it the
# hours of the day and month ahead of the first hourly list are not known (a 0 would be a guess).
ACCOUNTING_FIELDS = (
    ("last_hour_start", "last_hour_start", None, False),
    ("last_hour_import_kwh", "last_hour_import_wh", -3, False),
    ("last_hour_export_kwh", "last_hour_export_wh", -3, False),
    ("last_hour_estimated", "last_hour_estimated", None, False),
    ("current_hour_import_kwh_est", "current_hour_import_wh_est", -3, False),
    ("current_hour_export_kwh_est", "current_hour_export_wh_est", -3, False),
    ("current_hour_partial", "current_hour_partial", None, False),
    ("today_import_kwh", "today_import_wh", -3, True),
    ("today_export_kwh", "today_export_wh", -3, True),
    ("today_estimated", "today_estimated", None, True),
    ("month_import_kwh", "month_import_wh", -3, True),
    ("month_export_kwh", "month_export_wh", -3, True),
    ("month_estimated", "month_estimated", None, True),
    ("month_capacity_kw", "capacity_w", -3, True),
    ("capacity_estimated", "capacity_estimated", None, True),
    ("capacity_step", "capacity_step", None, True),
    ("capacity_step_low_kw", "capacity_step_low_w", -3, True),
    ("capacity_step_high_kw", "capacity_step_high_w", -3, True),
    ("capacity_headroom_kwh", "capacity_headroom_wh", -3, True),
    ("next_step_headroom_kwh", "capacity_next_step_headroom_wh", -3, True),
    ("last_month_capacity_kw", "last_month_capacity_w", -3, True),
)

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
        today = LT.local_day_h(nh)
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
    d["repeats"] = acc.counts[C_REPEATS]
    d["gaps"] = acc.counts[C_GAPS]
    d["rejects"] = acc.rejects()
    return d


def _json_value(v, exp):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if exp is not None:
        return decimal(v, exp)
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)


def _parts(summary, live=False):
    known = summary.get("last_hour_import_wh") is not None
    parts = []
    for key, src, exp, history in ACCOUNTING_FIELDS:
        if live and src in LIVE_KEYS:
            text = "%s"
        else:
            v = summary.get(src) if known or not history else None
            text = _json_value(v, exp)
            if live:
                text = text.replace("%", "%%")
        parts.append('"%s":%s' % (key, text))
    parts[0] = "{" + parts[0]  # (the braces on the ends: one join, no second copy of the whole)
    parts[-1] += "}"
    return ",".join(parts)


def accounting_json(summary):
    """The accounting object (one line, keys in ACCOUNTING_FIELDS order) from summary()."""
    return _parts(summary)


# The values of the accounting object that change with every reading (the running hour), in the order
# of ACCOUNTING_FIELDS: Accounting.live_json() fills them into json_template()'s "%s" places.
LIVE_KEYS = ("current_hour_import_wh_est", "current_hour_export_wh_est", "current_hour_partial",
             "capacity_headroom_wh", "capacity_next_step_headroom_wh")


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


def json_template(summary):
    """(template, R, N): accounting_json(summary) with a "%s" for each LIVE_KEYS value, and the
    headroom bases (headroom_bases; None where the object shows null). Valid for as long as the
    running hour and the history stay the same: Accounting.live_json(template, R, N) then gives
    what accounting_json(summary()) would, with no output module loaded."""
    known = summary.get("last_hour_import_wh") is not None
    rise = summary["headroom_base_wh"] if known else None
    nxt = summary["next_step_base_wh"] if known else None
    return _parts(summary, True), rise, nxt
