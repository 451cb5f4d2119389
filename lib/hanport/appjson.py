# JSON envelopes around a reading's canonical JSON text (MQTT state message, /data.json) and the
# accounting object (MQTT <base>/accounting, /data.json "accounting"): text splicing, exact decimals.
import json

from hanport.render import decimal

# The accounting object: (key, Accounting.summary() key, exponent, from history). An exponent renders
# the Wh / W integer as kWh / kW exactly (decimal(value, -3), never a float); None copies the value
# (bool, int, text). Every key is always present, null while unknown (never 0 for unknown).
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


def utc_iso(tm):
    """ISO 8601 UTC text of a time.gmtime()-style tuple (year, month, day, hour, minute, second, ...)."""
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (tm[0], tm[1], tm[2], tm[3], tm[4], tm[5])


def state_json(reading_text, seq, received_utc=None):
    """MQTT state message: {"seq":N[,"received":"...Z"],<canonical fields>}. seq counts readings
    since boot; received is the reader's own clock, present only once NTP has set it."""
    head = '{"seq":%d,' % seq
    if received_utc:
        head += '"received":%s,' % json.dumps(received_utc)
    return head + reading_text[1:]


def data_json(state_text, age_ms, accounting_text=None):
    """/data.json: the latest state message plus "age_ms" (milliseconds since it was decoded);
    before the first reading: {"seq":0,"age_ms":null}. accounting_text (accounting_json()) is added
    as "accounting" when given (the key is absent when the accounting does not run)."""
    if state_text is None:
        head = '{"seq":0,"age_ms":null}'
    else:
        head = '{"age_ms":%d,' % age_ms + state_text[1:]
    if accounting_text is None:
        return head
    return head[:-1] + ',"accounting":' + accounting_text + "}"


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


def accounting_json(summary):
    """The accounting object (one line, keys in ACCOUNTING_FIELDS order) from Accounting.summary()."""
    known = summary.get("last_hour_import_wh") is not None
    parts = []
    for key, src, exp, history in ACCOUNTING_FIELDS:
        v = summary.get(src) if known or not history else None
        parts.append('"%s":%s' % (key, _json_value(v, exp)))
    return "{" + ",".join(parts) + "}"
