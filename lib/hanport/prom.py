# Prometheus families (text exposition format 0.0.4, written by promtext.py) for /metrics: meter values
# from a Latest, decoder counters, the accounting's gauges and counters. Exact decimals, never floats.
from hanport import reading as R
from hanport.promtext import HELP, escape_label, family
from hanport.render import decimal

# Canonical field -> (metric name, type, label text), in field order; fields sharing a name differ by label.
# What each family means: docs/metrics.md (each HELP line on the device points there: the texts would
# cost a board ~4 KB of heap for every scrape).
_FIELD_METRICS = (
    ("han_active_power_import_watts", "gauge", ""),
    ("han_active_power_export_watts", "gauge", ""),
    ("han_reactive_power_import_var", "gauge", ""),
    ("han_reactive_power_export_var", "gauge", ""),
    ("han_current_amperes", "gauge", 'phase="l1"'),
    ("han_current_amperes", "gauge", 'phase="l2"'),
    ("han_current_amperes", "gauge", 'phase="l3"'),
    ("han_voltage_volts", "gauge", 'phase="l1"'),
    ("han_voltage_volts", "gauge", 'phase="l2"'),
    ("han_voltage_volts", "gauge", 'phase="l3"'),
    ("han_active_energy_import_kwh_total", "counter", ""),
    ("han_active_energy_export_kwh_total", "counter", ""),
    ("han_reactive_energy_import_kvarh_total", "counter", ""),
    ("han_reactive_energy_export_kvarh_total", "counter", ""),
)

# The accounting's gauges: Accounting.summary() keys (metric name: prefix + key)
_ACCOUNTING_GAUGES = ("last_hour_import_wh", "last_hour_export_wh", "current_hour_import_wh_est", "today_import_wh",
                      "today_export_wh", "month_import_wh", "month_export_wh", "capacity_w", "capacity_step",
                      "capacity_headroom_wh", "capacity_next_step_headroom_wh", "last_month_capacity_w")


def meter_metrics(out, latest):
    """Meter values (latest of each field; fields never seen are left out, not zero)."""
    for _ in meter_families(out, latest):
        pass


def meter_families(out, latest):
    """meter_metrics one family at a time: a generator that yields after appending each family's lines
    to out (a caller that sends and clears out then holds one family at a time)."""
    f = 0
    while f < R.N_NUMERIC:
        name, kind, _ = _FIELD_METRICS[f]
        samples = []
        g = f
        while g < R.N_NUMERIC and _FIELD_METRICS[g][0] == name:
            if latest.present[g]:
                samples.append((_FIELD_METRICS[g][2], decimal(latest.value[g], latest.exp[g])))
            g += 1
        if samples:
            family(out, name, kind, samples)
            yield
        f = g
    if latest.manufacturer or latest.meter_id:
        labels = 'manufacturer="%s",meter_id="%s",meter_type="%s",list_version="%s"' % (
            escape_label(latest.manufacturer or ""), escape_label(latest.meter_id or ""),
            escape_label(latest.meter_type or ""), escape_label(latest.list_version or ""))
        family(out, "han_meter_info", "gauge", [(labels, "1")])
        yield
    family(out, "han_messages_total", "counter", [('list="%d"' % n, str(latest.per_list[n])) for n in (1, 2, 3)])
    yield


def decoder_metrics(out, counters, last_error=None):
    """Every decoder counter (HanReader.counters()) as one labelled counter family."""
    for _ in decoder_families(out, counters, last_error):
        pass


def decoder_families(out, counters, last_error=None):
    """decoder_metrics a few lines at a time (a generator, as meter_families): its one family has a
    sample per counter, each line made as it is sent."""
    out.append("# HELP han_decoder_events_total " + HELP)
    out.append("# TYPE han_decoder_events_total counter")
    for k in sorted(counters):
        out.append('han_decoder_events_total{event="%s"} %d' % (escape_label(k), counters[k]))
        if len(out) >= 8:
            yield
    yield
    if last_error:
        family(out, "han_decoder_last_error_info", "gauge", [('error="%s"' % escape_label(last_error), "1")])
        yield


def accounting_metrics(out, summary, counts, counter_names, prefix="han_"):
    """The accounting's families: the gauges of summary (Accounting.summary(); unknown values left out)
    and its counters (counts[k] named counter_names[k], accounting_views.COUNTER_NAMES)."""
    for _ in accounting_families(out, summary, counts, counter_names, prefix):
        pass


def accounting_families(out, summary, counts, counter_names, prefix="han_"):
    """accounting_metrics one family at a time: a generator that yields after appending each family's
    lines to out (a caller that sends and clears out then holds one family at a time)."""
    for key in _ACCOUNTING_GAUGES:
        v = summary[key]
        if v is not None:
            family(out, prefix + key, "gauge", (("", "%d" % v),))
            yield
    for k in range(len(counter_names)):
        name = counter_names[k]
        n = counts[k]
        if name == "gap_hours":  # Prometheus counts time in seconds (base units)
            name = "gap_seconds"
            n *= 3600
        elif name == "hours":  # the hours recorded exactly (from two hourly lists), as time: seconds
            name = "recorded_seconds"
            n *= 3600
        family(out, "%saccounting_%s_total" % (prefix, name), "counter", (("", "%d" % n),))
        yield
