# GET /metrics, the app's part: its gauges and counters (WiFi, MQTT, HTTP, UART, heap) in the Prometheus
# text format; loaded per request by web.py, never in the heap together with hanport.prom.
import gc

from log import uptime_ms

from hanport import diagnose, promtext


def lines(out, app):
    """The app's families appended to out, one at a time (a generator: promtext.sent_families sends
    them; web.py the meter's, the decoder's and the accounting's with hanport.prom, loaded while this
    module is not)."""
    for rows in (_rows(app), _mqtt_rows(app.mqtt, app), _http_rows(app.http)):
        for row in rows:
            promtext.plain_metrics(out, (row,))
            yield


# (name, kind, value text or [(labels, value text)]) of each family, made as it is sent; in three
# functions, so that none needs a large free block to load (a heap in pieces still has room for each)
def _rows(app):
    u = app.uart
    yield ("han_up", "gauge", "1" if app.healthy else "0")
    f = app.firmware  # (None: no update installed, make deploy's files run)
    if f is not None:
        yield ("han_firmware_info", "gauge", [('running="%s",fallback="%s"' % (f[0], f[1]), "1")])
        yield ("han_update_trial", "gauge", "0" if f[4] is None else "1")
        yield ("han_update_rolled_back", "gauge", "0" if f[2] is None else "1")
    yield ("han_uptime_seconds", "gauge", str(uptime_ms() // 1000))
    yield ("han_heap_free_bytes", "gauge", str(gc.mem_free()))
    yield ("han_heap_used_after_gc_bytes", "gauge", str(app.heap_used_after_gc))
    yield ("han_uart_bytes_total", "counter", str(u.bytes))
    yield ("han_uart_autodetect_switches_total", "counter", str(u.auto_switches))
    yield ("han_uart_line_diagnosis", "gauge",
           [('diagnosis="%s"' % name, "1" if name == u.monitor.name() else "0") for name in diagnose.DIAGNOSIS_NAMES])
    yield ("han_readings_total", "counter", str(app.seq))
    yield ("han_wifi_connected", "gauge", "1" if app.net.connected else "0")
    age = app.reading_age_ms()
    if age is not None:
        yield ("han_reading_age_seconds", "gauge", "%d.%03d" % (age // 1000, age % 1000))


def _mqtt_rows(m, app):
    yield ("han_mqtt_connected", "gauge", "1" if m.state == "connected" else "0")
    yield ("han_mqtt_connects_total", "counter", str(m.connects))
    yield ("han_mqtt_connect_failures_total", "counter", str(m.connect_failures))
    yield ("han_mqtt_disconnects_total", "counter", str(m.disconnects))
    yield ("han_mqtt_pings_total", "counter", str(m.pings))
    yield ("han_mqtt_pongs_total", "counter", str(m.pongs))
    yield ("han_mqtt_published_total", "counter", str(m.published))
    yield ("han_mqtt_accounting_published_total", "counter", str(m.acc_published))
    yield ("han_mqtt_superseded_total", "counter", str(app.superseded))


def _http_rows(h):
    yield ("han_http_requests_total", "counter",
           [('code="%d"' % k, str(h.by_status[k])) for k in sorted(h.by_status)] or [('code="200"', "0")])
    yield ("han_http_timeouts_total", "counter", str(h.timeouts))
    yield ("han_http_rejected_busy_total", "counter", str(h.rejected_busy))
    yield ("han_http_heap_waits_total", "counter", str(h.heap_waits))
    yield ("han_http_deferred_total", "counter", str(h.deferred))
