# The dashboard's JSON (docs/firmware.md "HTTP"): GET /power.json (the last hour of power) and GET
# /history.json (hours, days, months, the capacity tariff), made as they are sent; loaded per request.
import time

from hanport.accounting import DAYS_KEPT, F_EST, HOUR_S, HOURS_KEPT, MONTHS_KEPT

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

_ROWS_PER_PIECE = 12  # rows joined into one piece: few sends, no large block


def route(app, req):
    """(status, content type, body, extra header lines) of /power.json and /history.json."""
    if req.path == "/history.json" and app.accounting is None:
        return 404, TEXT, "the accounting is off (accounting.enabled)\n", ""
    if req.method == "HEAD":
        return 200, JSON, iter(()), ""
    if req.path == "/power.json":
        return 200, JSON, power_json(app, time.ticks_ms()), ""
    return 200, JSON, history_json(app.accounting), ""


def _values(seq):
    # JSON list items, in pieces of _ROWS_PER_PIECE ("null" for an empty bucket)
    row = []
    first = True
    for v in seq:
        row.append("null" if v < 0 else str(v))
        if len(row) == _ROWS_PER_PIECE:
            yield ("" if first else ",") + ",".join(row)
            first = False
            row.clear()
    if row:
        yield ("" if first else ",") + ",".join(row)


def power_json(app, now_ms):
    """{"step_s":20,"age_ms":N,"import_w":[...],"export_w":[...]}: the mean of each 20 s, oldest first."""
    p = app.power_log
    age = p.age_ms(now_ms)
    yield '{"step_s":%d,"age_ms":%s,"import_w":[' % (p.step_ms // 1000, "null" if age is None else str(age))
    yield from _values(p.series(p.imp))
    yield '],"export_w":['
    yield from _values(p.series(p.exp))
    yield "]}"


def _kept(idx, n):
    # the (index, slot) of a ring's records, oldest first (a generator: no list)
    newest = max(idx)
    for i in range(newest - n + 1, newest + 1):
        if i >= 0 and idx[i % n] == i:
            yield i, i % n


def _rows(rows):
    first = True
    for r in rows:
        yield ("[" if first else ",[") + r + "]"
        first = False


def history_json(hook):
    """The accounting's history (hanport.accounting: 72 hours, 62 days, 24 months) and this month's
    capacity tariff, as JSON pieces; integers in Wh and W, times in UTC seconds (docs/firmware.md)."""
    from hanport import localtime as LT
    from hanport.accounting_capacity import marked, top

    acc = hook.acc
    s = hook.summary()  # (its hour's part made before this answer loaded anything: web.route)
    yield '{"tz":"Europe/Oslo","hours":['
    yield from _rows("%d,%d,%d,%s" % (h * HOUR_S, acc.h_imp[k], acc.h_exp[k], _flag(acc.h_flags[k] & F_EST))
                     for h, k in _kept(acc.h_idx, HOURS_KEPT))
    nh = acc.now_hour()
    yield '],"running_hour":'
    if nh is None or s["current_hour_import_wh_est"] is None:
        yield "null"
    else:
        yield '{"start":%d,"import_wh":%d,"export_wh":%s,"partial":%s}' % (
            nh * HOUR_S, s["current_hour_import_wh_est"], _num(s["current_hour_export_wh_est"]),
            _flag(s["current_hour_partial"]))
    yield ',"days":['
    yield from _rows("%d,%d,%d,%d,%d,%d,%s" % (LT.local_midnight_s(d), acc.d_imp[k], acc.d_exp[k], acc.d_max[k],
                                               LT.local_midnight_s(d) + acc.d_maxh[k] * HOUR_S, acc.d_nh[k],
                                               _flag(acc.d_flags[k] & F_EST))
                     for d, k in _kept(acc.d_idx, DAYS_KEPT))
    yield '],"months":['
    yield from _rows("%d,%d,%d,%d,%d,%s" % (mi // 12, mi % 12 + 1, acc.m_imp[k], acc.m_exp[k], acc.m_cap[k],
                                            _flag(acc.m_flags[k] & F_EST))
                     for mi, k in _kept(acc.m_idx, MONTHS_KEPT))
    yield '],"capacity":'
    if nh is None:
        yield "null}"
        return
    top(acc, LT.month_of_day(LT.local_day_h(nh)), acc.top_n)  # marks this month's top days in acc.taken
    days, _ = marked(acc)
    yield '{"top_n":%d,"top_days":[' % acc.top_n
    yield from _rows("%d,%d,%d" % (LT.local_midnight_s(d), wh, LT.local_midnight_s(d) + acc.d_maxh[k] * HOUR_S)
                     for wh, d, k in days)
    yield '],"value_w":%s,"estimated":%s,"step":%s,"step_low_w":%s,"step_high_w":%s,"steps_w":[%s],' % (
        _num(s["capacity_w"]), _flag(s["capacity_estimated"]), _num(s["capacity_step"]),
        _num(s["capacity_step_low_w"]), _num(s["capacity_step_high_w"]), ",".join(str(w) for w in acc.steps_w))
    yield '"headroom_wh":%s,"next_step_headroom_wh":%s}}' % (_num(s["capacity_headroom_wh"]),
                                                              _num(s["capacity_next_step_headroom_wh"]))


def _num(v):
    return "null" if v is None else str(v)


def _flag(v):
    return "null" if v is None else ("true" if v else "false")
