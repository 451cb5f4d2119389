# GET /power.json (docs/firmware.md "HTTP"): the dashboard's last hour of power from the app's
# hanport.latest.PowerLog, made as it is sent; loaded per request (web.py).
import time

from hanport.buffers import const
from hanport.latest import BUCKETS, NONE, STEP_MS, TOP_W, ticks_diff

JSON = "application/json"

_ROWS_PER_PIECE = const(12)  # rows joined into one piece: few sends, no large block


def route(app, req):
    """(status, content type, body, extra header lines) of /power.json."""
    if req.method == "HEAD":
        return 200, JSON, iter(()), ""
    return 200, JSON, power_json(app, time.ticks_ms()), ""


def _values(seq):
    # JSON list items, in pieces of _ROWS_PER_PIECE ("null" for an empty bucket)
    row = []
    first = True
    for v in seq:
        row.append("null" if v == NONE else str(v))
        if len(row) == _ROWS_PER_PIECE:
            yield ("" if first else ",") + ",".join(row)
            first = False
            row.clear()
    if row:
        yield ("" if first else ",") + ",".join(row)


def power_json(app, now_ms):
    """{"step_s":60,"age_ms":N,"import_w":[...],"export_w":[...]}: the mean of each minute, oldest first."""
    p = app.power_log
    age = power_age(p, now_ms)
    yield '{"step_s":%d,"age_ms":%s,"import_w":[' % (STEP_MS // 1000, "null" if age is None else str(age))
    yield from _values(power_series(p, True, now_ms))
    yield '],"export_w":['
    yield from _values(power_series(p, False, now_ms))
    yield "]}"


def _late(p, now_ms):
    # buckets the next reading would close (hanport.latest.PowerLog.add): the open one and empty ones
    return 0 if p.start is None else max(0, ticks_diff(now_ms, p.start) // STEP_MS)


def power_age(p, now_ms):
    """Milliseconds since the newest bucket that is closed at now_ms ended; None before any reading."""
    return None if p.start is None else ticks_diff(now_ms, p.start) - _late(p, now_ms) * STEP_MS


def power_series(p, imports, now_ms):
    """The BUCKETS means of a PowerLog (import W if imports, else export W), oldest first, as they
    are once now_ms has closed what it closes (read only: PowerLog.add does the closing)."""
    ring, total, n = (p.imp, p.sum_imp, p.n_imp) if imports else (p.exp, p.sum_exp, p.n_exp)
    late = _late(p, now_ms)
    for j in range(1, BUCKETS + 1):
        closed_after = late + j - BUCKETS  # > 0: a bucket closed by now_ms, not yet in the ring
        if closed_after <= 0:
            yield ring[(p.head + late + j) % BUCKETS]
        elif closed_after == 1 and late <= BUCKETS and n:
            yield min(total // n, TOP_W)
        else:
            yield NONE


