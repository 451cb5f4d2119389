# The accounting object as JSON text (/data.json "accounting", MQTT <base>/accounting) from the summary
# accounting_views makes: loaded after it has left, so the two never sit in the heap together.
import json

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


def json_template(summary):
    """(template, R, N): accounting_json(summary) with a "%s" for each LIVE_KEYS value, and the
    headroom bases (headroom_bases; None where the object shows null). Valid for as long as the
    running hour and the history stay the same: Accounting.live_json(template, R, N) then gives
    what accounting_json(summary()) would, with no output module loaded."""
    known = summary.get("last_hour_import_wh") is not None
    rise = summary["headroom_base_wh"] if known else None
    nxt = summary["next_step_base_wh"] if known else None
    return _parts(summary, True), rise, nxt
