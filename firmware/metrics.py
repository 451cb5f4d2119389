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
        ("han_up", "gauge", "1 while the app is healthy (the watchdog is fed)", "1" if app.healthy else "0"),
        ("han_uptime_seconds", "gauge", "Seconds since boot", str(uptime_ms() // 1000)),
        ("han_heap_free_bytes", "gauge", "Free heap", str(gc.mem_free())),
        ("han_heap_used_after_gc_bytes", "gauge", "Heap in use after the last periodic collection",
         str(app.heap_used_after_gc)),
        ("han_uart_bytes_total", "counter", "Bytes read from the UART", str(u.bytes)),
        ("han_uart_autodetect_switches_total", "counter", "UART setting changes by auto-detection",
         str(u.auto.switches if u.auto is not None else 0)),
        ("han_uart_line_diagnosis", "gauge", "Serial line self-diagnosis (1 for the current one)",
         [('diagnosis="%s"' % name, "1" if name == u.monitor.name() else "0") for name in diagnose.DIAGNOSIS_NAMES]),
        ("han_readings_total", "counter", "Decoded meter messages", str(app.seq)),
        ("han_wifi_connected", "gauge", "1 while the WiFi station is connected", "1" if app.net.connected else "0"),
        ("han_mqtt_connected", "gauge", "1 while connected to the MQTT broker", "1" if m.state == "connected" else "0"),
        ("han_mqtt_connects_total", "counter", "Successful MQTT connections", str(m.connects)),
        ("han_mqtt_connect_failures_total", "counter", "Failed MQTT connection attempts", str(m.connect_failures)),
        ("han_mqtt_disconnects_total", "counter", "MQTT connections lost", str(m.disconnects)),
        ("han_mqtt_pings_total", "counter", "MQTT PINGREQ sent", str(m.pings)),
        ("han_mqtt_pongs_total", "counter", "MQTT PINGRESP received", str(m.pongs)),
        ("han_mqtt_published_total", "counter", "State messages published", str(m.published)),
        ("han_mqtt_accounting_published_total", "counter", "Accounting messages published", str(m.acc_published)),
        ("han_mqtt_superseded_total", "counter", "States replaced by a newer one before being sent",
         str(app.superseded)),
        ("han_http_requests_total", "counter", "HTTP requests by status code",
         [('code="%d"' % k, str(h.by_status[k])) for k in sorted(h.by_status)] or [('code="200"', "0")]),
        ("han_http_timeouts_total", "counter", "HTTP requests that timed out", str(h.timeouts)),
        ("han_http_rejected_busy_total", "counter", "HTTP clients turned away (too many at once)",
         str(h.rejected_busy)),
    ]
    if age is not None:
        rows.append(("han_reading_age_seconds", "gauge", "Seconds since the last decoded message",
                     "%d.%03d" % (age // 1000, age % 1000)))
    prom.plain_metrics(out, rows)
    rows = None
    yield from _flush(out)


def _flush(out):
    for line in out:
        yield line + "\n"
    out.clear()
