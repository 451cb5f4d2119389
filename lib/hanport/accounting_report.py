# The accounting's whole state as a report tree, exact JSON or plain dicts: host tools only
# (tools/decode.py --accounting, tests); not installed on a board, where summary() serves.
import json

from hanport import accounting_json as J
from hanport import accounting_views as V
from hanport import localtime as LT
from hanport.accounting import F_EST, F_MAX_EST, HOUR_S, N_COUNTERS
from hanport.render import number


class Dec:
    """An exact decimal value * 10**exp for JSON output (rendered from integers, never a float)."""

    def __init__(self, value, exp):
        self.value = value
        self.exp = exp


class Obj:
    """An ordered JSON object (MicroPython dicts do not keep insertion order)."""

    def __init__(self, pairs):
        self.pairs = pairs


def _kwh(wh):
    return None if wh is None else Dec(wh, -3)


def to_json(v):
    """JSON text of a tree of Obj, list, Dec, str, int, bool and None; decimals exact (scalars as the
    accounting object on the device renders them: accounting_json._json_value)."""
    if isinstance(v, Dec):
        return J._json_value(v.value, v.exp)
    if isinstance(v, Obj):
        return "{" + ",".join(json.dumps(k) + ":" + to_json(x) for k, x in v.pairs) + "}"
    if isinstance(v, list):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    return J._json_value(v, None)


def to_plain(v):
    """The same tree as dicts, lists and numbers (decimals as the nearest float; exact text: to_json)."""
    if isinstance(v, Dec):
        return number(v.value, v.exp)
    if isinstance(v, Obj):
        d = {}
        for k, x in v.pairs:
            d[k] = to_plain(x)
        return d
    if isinstance(v, list):
        return [to_plain(x) for x in v]
    return v


def capacity_pairs(acc, mi):
    """[(key, value)] of the capacity tariff of month index mi: its top days, value and step."""
    days, value, step, _ = V.capacity(acc, mi)
    top = []
    for mx, d, s in days:
        hh = LT.local_fields(LT.local_midnight_s(d) + acc.d_maxh[s] * HOUR_S)[3]
        top.append(Obj([("date", LT.iso_date(d)), ("hour", hh), ("kwh", _kwh(mx)),
                        ("estimated", bool(acc.d_flags[s] & F_MAX_EST))]))
    lo, hi = V.step_range(acc, step)
    return [("month", LT.iso_month(mi)), ("top_days", top), ("value_kw", Dec(value, -3)),
            ("step_index", step), ("step_range_kw", [Dec(lo, -3), None if hi is None else Dec(hi, -3)])]


def state(acc):
    """The whole state of an Accounting as a tree for to_json()/to_plain()."""
    s = acc.summary()
    hours = [Obj([("start", LT.iso_local(u)), ("import_kwh", _kwh(i)), ("export_kwh", _kwh(e)),
                  ("estimated", est)]) for u, i, e, est in acc.hours()]
    days = []
    for d, i, e, mx, mx_u, nh, fl in acc.days():
        days.append(Obj([("date", LT.iso_date(d)), ("import_kwh", _kwh(i)), ("export_kwh", _kwh(e)),
                         ("max_hour_kwh", _kwh(mx)), ("max_hour", LT.local_fields(mx_u)[3]), ("hours", nh),
                         ("estimated", bool(fl & F_EST))]))
    months = [Obj([("month", LT.iso_month(mi)), ("import_kwh", _kwh(i)), ("export_kwh", _kwh(e)),
                   ("capacity_kw", Dec(cap, -3)), ("estimated", est)])
              for mi, i, e, cap, est in acc.months()]
    pairs = [("last_hour_import_kwh", _kwh(s["last_hour_import_wh"])),
             ("last_hour_export_kwh", _kwh(s["last_hour_export_wh"])),
             ("last_hour_start", s["last_hour_start"]),
             ("last_hour_estimated", s["last_hour_estimated"])]
    nh = acc.now_hour()
    if nh is not None:
        today = LT.local_day_h(nh)
        mi = LT.month_of_day(today)
        cap = capacity_pairs(acc, mi)
        cap.append(("headroom_kwh", _kwh(s["capacity_headroom_wh"])))
        cap.append(("next_step_headroom_kwh", _kwh(s["capacity_next_step_headroom_wh"])))
        pairs.append(("current_hour", Obj([
            ("start", LT.iso_local(nh * HOUR_S)),
            ("import_kwh_estimate", _kwh(s["current_hour_import_wh_est"])),
            ("export_kwh_estimate", _kwh(s["current_hour_export_wh_est"])),
            ("partial", s["current_hour_partial"])])))
        pairs.append(("today", Obj([("date", LT.iso_date(today)),
                                    ("import_kwh", _kwh(s["today_import_wh"])),
                                    ("export_kwh", _kwh(s["today_export_wh"]))])))
        pairs.append(("capacity", Obj(cap)))
        pairs.append(("last_month_capacity", Obj(capacity_pairs(acc, mi - 1))))
    else:
        pairs.append(("capacity", None))
    pairs.append(("hours", hours))
    pairs.append(("days", days))
    pairs.append(("months", months))
    pairs.append(("repeats", s["repeats"]))
    pairs.append(("gaps", s["gaps"]))
    pairs.append(("rejects", s["rejects"]))
    pairs.append(("counters", Obj([(V.COUNTER_NAMES[k], acc.counts[k]) for k in range(N_COUNTERS)])))
    pairs.append(("meter_id", acc.meter_id or None))
    return Obj(pairs)


def state_json(acc):
    """The state as one line of JSON, decimals exact (tools/decode.py --accounting)."""
    return to_json(state(acc))


def state_dict(acc):
    """The state as plain dicts/lists (kWh as floats: exact text is in state_json())."""
    return to_plain(state(acc))
