# Prometheus text exposition format (version 0.0.4) for /metrics: meter values from a Latest,
# decoder counters, and the app's own gauges and counters. Exact decimals, never floats.
from hanport import reading as R
from hanport.render import decimal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Canonical field -> (metric name, type, help, label text). Fields sharing a name differ by label.
_FIELD_METRICS = (
    ("han_active_power_import_watts", "gauge", "Active power import (P+) from the meter", ""),
    ("han_active_power_export_watts", "gauge", "Active power export (P-) from the meter", ""),
    ("han_reactive_power_import_var", "gauge", "Reactive power import (Q+) from the meter", ""),
    ("han_reactive_power_export_var", "gauge", "Reactive power export (Q-) from the meter", ""),
    ("han_current_amperes", "gauge", "Phase current from the meter", 'phase="l1"'),
    ("han_current_amperes", "gauge", "", 'phase="l2"'),
    ("han_current_amperes", "gauge", "", 'phase="l3"'),
    ("han_voltage_volts", "gauge", "Phase (or line, in IT networks) voltage from the meter", 'phase="l1"'),
    ("han_voltage_volts", "gauge", "", 'phase="l2"'),
    ("han_voltage_volts", "gauge", "", 'phase="l3"'),
    ("han_active_energy_import_kwh_total", "counter", "Cumulative active energy import (A+), meter register",
     ""),
    ("han_active_energy_export_kwh_total", "counter", "Cumulative active energy export (A-), meter register",
     ""),
    ("han_reactive_energy_import_kvarh_total", "counter", "Cumulative reactive energy import (R+)", ""),
    ("han_reactive_energy_export_kvarh_total", "counter", "Cumulative reactive energy export (R-)", ""),
)

# The accounting's gauges: Accounting.summary() key -> help text (metric name: prefix + key)
_ACCOUNTING_GAUGES = (
    ("last_hour_import_wh", "Import in the last complete hour (meter counters), Wh"),
    ("last_hour_export_wh", "Export in the last complete hour (meter counters), Wh"),
    ("current_hour_import_wh_est", "Import so far in the running hour, estimated from power, Wh"),
    ("today_import_wh", "Import today, complete hours, Wh"),
    ("today_export_wh", "Export today, complete hours, Wh"),
    ("month_import_wh", "Import this month, complete hours, Wh"),
    ("capacity_w", "Capacity tariff value of this month: mean of the top daily hourly maxima, W"),
    ("capacity_step", "Capacity tariff step index (0 = lowest)"),
    ("capacity_headroom_wh", "Import left in this hour before the month's capacity value rises, Wh"),
    ("capacity_next_step_headroom_wh", "Import left in this hour before the next capacity step, Wh"),
    ("last_month_capacity_w", "Capacity tariff value of last month, W"),
)


def escape_label(value):
    """Label value escaping: backslash, double quote and newline."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(out, name, kind, help_text, samples):
    """Append one metric family: HELP, TYPE and its samples [(label text, value text)]."""
    out.append("# HELP %s %s" % (name, help_text))
    out.append("# TYPE %s %s" % (name, kind))
    for labels, value in samples:
        if labels:
            out.append("%s{%s} %s" % (name, labels, value))
        else:
            out.append("%s %s" % (name, value))


def meter_metrics(out, latest):
    """Meter values (latest of each field; fields never seen are left out, not zero)."""
    f = 0
    while f < R.N_NUMERIC:
        name, kind, help_text, _ = _FIELD_METRICS[f]
        samples = []
        g = f
        while g < R.N_NUMERIC and _FIELD_METRICS[g][0] == name:
            if latest.present[g]:
                samples.append((_FIELD_METRICS[g][3], decimal(latest.value[g], latest.exp[g])))
            g += 1
        if samples:
            family(out, name, kind, help_text, samples)
        f = g
    if latest.manufacturer or latest.meter_id:
        labels = 'manufacturer="%s",meter_id="%s",meter_type="%s",list_version="%s"' % (
            escape_label(latest.manufacturer or ""), escape_label(latest.meter_id or ""),
            escape_label(latest.meter_type or ""), escape_label(latest.list_version or ""))
        family(out, "han_meter_info", "gauge", "Meter identity from the last list 2/3 message", [(labels, "1")])
    family(out, "han_messages_total", "counter", "Decoded meter messages by NVE list",
           [('list="%d"' % n, str(latest.per_list[n])) for n in (1, 2, 3)])


def decoder_metrics(out, counters, last_error=None):
    """Every decoder counter (HanReader.counters()) as one labelled counter family."""
    names = sorted(counters)
    family(out, "han_decoder_events_total", "counter", "Framing, APDU and mapping counters of the decoder",
           [('event="%s"' % escape_label(k), str(counters[k])) for k in names])
    if last_error:
        family(out, "han_decoder_last_error_info", "gauge", "Last decoder problem",
               [('error="%s"' % escape_label(last_error), "1")])


def plain_metrics(out, rows):
    """App metrics: rows of (name, kind, help, value text or [(labels, value text)])."""
    for name, kind, help_text, value in rows:
        if isinstance(value, list):
            family(out, name, kind, help_text, value)
        else:
            family(out, name, kind, help_text, [("", value)])


def text(lines):
    """The exposition document (newline-terminated)."""
    return "\n".join(lines) + "\n"


def accounting_metrics(out, summary, counts, counter_names, prefix="han_"):
    """The accounting's families: the gauges of summary (Accounting.summary(); unknown values left out)
    and its counters (counts[k] named counter_names[k], accounting_views.COUNTER_NAMES)."""
    for key, help_text in _ACCOUNTING_GAUGES:
        v = summary[key]
        if v is not None:
            family(out, prefix + key, "gauge", help_text, (("", "%d" % v),))
    for k in range(len(counter_names)):
        family(out, "%saccounting_%s_total" % (prefix, counter_names[k]), "counter",
               "Hourly-list accounting: " + counter_names[k].replace("_", " "), (("", "%d" % counts[k]),))
