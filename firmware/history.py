# GET /history.json (docs/firmware.md "HTTP"): the accounting's hours, days and months and this month's
# capacity tariff for the dashboard, made as it is sent; loaded per request (web.py) and unloaded after.
from hanport.accounting import DAYS_KEPT, F_EST, HOUR_S, HOURS_KEPT, MONTHS_KEPT

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
ALSO = ("hanport.localtime", "hanport.accounting_capacity")  # loaded by the answer: unloaded with it (web.py)


def route(app, req):
    """(status, content type, body, extra header lines) of /history.json."""
    if app.accounting is None:
        return 404, TEXT, "the accounting is off (accounting.enabled)\n", ""
    if req.method == "HEAD":
        return 200, JSON, iter(()), ""
    return 200, JSON, history_json(app.accounting), ""


def _kept(idx, n):
    # the (index, slot) of a ring's records, oldest first (a generator: no list)
    newest = max(idx)
    for i in range(newest - n + 1, newest + 1):
        if i >= 0 and idx[i % n] == i:
            yield i, i % n


def history_json(hook):
    """The accounting's history (hanport.accounting: 72 hours, 62 days, 24 months) and this month's
    capacity tariff, as JSON pieces, one row each; integers in Wh and W, times in UTC seconds. (In
    parts: a function's bytecode is one block of heap when the module loads, the heap is in pieces.)"""
    from hanport import localtime as LT

    acc = hook.acc
    # the summary made before this answer loaded anything (web.route: AccountingHook.prepare), not
    # copied; the running hour's values (accounting_json.LIVE_KEYS) now. None: it could not be made
    s = hook.slow if hook.ready() else None
    live = None if s is None else acc.live_values(s["headroom_base_wh"], s["next_step_base_wh"])
    hour = acc.now_hour()
    yield from hours(acc, hour, live)
    yield from days(acc, LT)
    if hour is None or s is None:
        yield ',"capacity":null}'
        return
    yield from capacity(acc, hour, s, live, LT)


def hours(acc, hour, live):
    # history_json's hours and the running hour
    sep = '{"tz":"Europe/Oslo","hours":['
    for h, k in _kept(acc.h_idx, HOURS_KEPT):  # [start, import Wh, export Wh, estimated]
        yield "%s[%d,%d,%d,%s]" % (sep, h * HOUR_S, acc.h_imp[k], acc.h_exp[k], _flag(acc.h_flags[k] & F_EST))
        sep = ","
    if hour is None or live is None or live[0] is None:
        yield _close(sep) + ',"running_hour":null'
    else:
        yield '%s,"running_hour":{"start":%d,"import_wh":%d,"export_wh":%s,"partial":%s}' % (
            _close(sep), hour * HOUR_S, live[0], _num(live[1]), _flag(live[2]))


def days(acc, LT):
    # history_json's days and months
    sep = ',"days":['
    for d, k in _kept(acc.d_idx, DAYS_KEPT):  # [local midnight, import, export, max hour Wh, its start, hours, est]
        m = LT.local_midnight_s(d)
        yield "%s[%d,%d,%d,%d,%d,%d,%s]" % (sep, m, acc.d_imp[k], acc.d_exp[k], acc.d_max[k],
                                            m + acc.d_maxh[k] * HOUR_S, acc.d_nh[k], _flag(acc.d_flags[k] & F_EST))
        sep = ","
    yield _close(sep)
    sep = ',"months":['
    for mi, k in _kept(acc.m_idx, MONTHS_KEPT):  # [year, month, import Wh, export Wh, capacity W, estimated]
        yield "%s[%d,%d,%d,%d,%d,%s]" % (sep, mi // 12, mi % 12 + 1, acc.m_imp[k], acc.m_exp[k], acc.m_cap[k],
                                         _flag(acc.m_flags[k] & F_EST))
        sep = ","
    yield _close(sep)


def capacity(acc, hour, s, live, LT):
    # history_json's capacity tariff of this month
    from hanport.accounting_capacity import marked, top

    top(acc, LT.month_of_day(LT.local_day_h(hour)), acc.top_n)  # marks this month's top days in acc.taken
    days, _ = marked(acc)
    sep = ',"capacity":{"top_n":%d,"top_days":[' % acc.top_n
    for wh, d, k in days:  # [local midnight, the day's highest hour Wh, its start]
        m = LT.local_midnight_s(d)
        yield "%s[%d,%d,%d]" % (sep, m, wh, m + acc.d_maxh[k] * HOUR_S)
        sep = ","
    yield '%s,"value_w":%s,"estimated":%s,"step":%s,"step_low_w":%s,"step_high_w":%s,"steps_w":[%s],' % (
        _close(sep), _num(s["capacity_w"]), _flag(s["capacity_estimated"]), _num(s["capacity_step"]),
        _num(s["capacity_step_low_w"]), _num(s["capacity_step_high_w"]), ",".join(str(w) for w in acc.steps_w))
    yield '"headroom_wh":%s,"next_step_headroom_wh":%s}}' % (_num(live[3]), _num(live[4]))


def _close(sep):
    # the end of a list whose rows went out after sep (its opening while none did)
    return "]" if sep == "," else sep + "]"


def _num(v):
    return "null" if v is None else str(v)


def _flag(v):
    return "null" if v is None else ("true" if v else "false")
