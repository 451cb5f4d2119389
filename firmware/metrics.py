# GET /metrics: the Prometheus text exposition of the meter values, decoder counters and the app's
# gauges and counters; loaded per request by web.py and unloaded before the accounting's lines follow.
import gc

from log import uptime_ms

from hanport import diagnose, prom


def lines(app):
    """/metrics as newline-terminated lines, made family by family while they are sent."""
    out = []
    prom.meter_metrics(out, app.latest)
    prom.decoder_metrics(out, app.reader.counters(), app.reader.last_error)
    yield from _flush(out)
    age = app.reading_age_ms()
    m = app.mqtt
    h = app.http
    u = app.uart
    rows = [
        ("han_up", "gauge", "1" if app.healthy else "0"),
        ("han_uptime_seconds", "gauge", str(uptime_ms() // 1000)),
        ("han_heap_free_bytes", "gauge", str(gc.mem_free())),
        ("han_heap_used_after_gc_bytes", "gauge", str(app.heap_used_after_gc)),
        ("han_uart_bytes_total", "counter", str(u.bytes)),
        ("han_uart_autodetect_switches_total", "counter", str(u.auto_switches)),
        ("han_uart_line_diagnosis", "gauge",
         [('diagnosis="%s"' % name, "1" if name == u.monitor.name() else "0") for name in diagnose.DIAGNOSIS_NAMES]),
        ("han_readings_total", "counter", str(app.seq)),
        ("han_wifi_connected", "gauge", "1" if app.net.connected else "0"),
        ("han_mqtt_connected", "gauge", "1" if m.state == "connected" else "0"),
        ("han_mqtt_connects_total", "counter", str(m.connects)),
        ("han_mqtt_connect_failures_total", "counter", str(m.connect_failures)),
        ("han_mqtt_disconnects_total", "counter", str(m.disconnects)),
        ("han_mqtt_pings_total", "counter", str(m.pings)),
        ("han_mqtt_pongs_total", "counter", str(m.pongs)),
        ("han_mqtt_published_total", "counter", str(m.published)),
        ("han_mqtt_accounting_published_total", "counter", str(m.acc_published)),
        ("han_mqtt_superseded_total", "counter", str(app.superseded)),
        ("han_http_requests_total", "counter",
         [('code="%d"' % k, str(h.by_status[k])) for k in sorted(h.by_status)] or [('code="200"', "0")]),
        ("han_http_timeouts_total", "counter", str(h.timeouts)),
        ("han_http_rejected_busy_total", "counter", str(h.rejected_busy)),
    ]
    if age is not None:
        rows.append(("han_reading_age_seconds", "gauge", "%d.%03d" % (age // 1000, age % 1000)))
    prom.plain_metrics(out, rows)
    rows = None
    yield from _flush(out)


def _flush(out):
    for line in out:
        yield line + "\n"
    out.clear()
