# GET /status: every part of the app in one JSON object (decoder counters, UART line diagnosis, WiFi,
# MQTT, HTTP, heap, crashes; then status_config.py: the masked config, the accounting); loaded per request.
import gc
import sys
import time

from log import uptime_ms

import hanport
from hanport.jsonstream import json_stream

# What each line diagnosis (hanport.diagnose.DIAGNOSIS_NAMES, same order) means for the owner
HINTS = (
    "waiting for data",
    "valid frames are arriving",
    "no bytes at all: the grid company has not opened the HAN port yet, or the wiring is wrong "
    "(RJ45 pin 1 data, pin 2 ground, converter output to the RX pin)",
    "bytes but no valid frames: wrong parity (Aidon/Kaifa 8E1, Kamstrup 8N1), baud rate (2400) "
    "or RX inversion",
    "frames with CRC errors: electrical noise or a weak supply (the meter's HAN port cannot power "
    "an ESP32 with WiFi on Kamstrup)",
    "valid frames that do not decode: an unknown or encrypted list (turn on uart.raw_log, then send "
    "GET /raw with a bug report)",
)


def head(app):
    """/status's first members as JSON text pieces, each made just before it is sent (the object is
    left open: status_config.tail sends the rest, with this module unloaded meanwhile)."""
    return json_stream(pairs, "{", "", app)  # (pairs(app) made again if the heap runs short meanwhile)


def uart(u):
    d = {"parity": u.parity, "invert": u.invert, "parity_setting": u.cfg["parity"], "baud": u.cfg["baud"],
         "rxbuf": u.rxbuf,
         "bytes": u.bytes, "reads": u.reads, "idle_ms": time.ticks_diff(time.ticks_ms(), u.last_rx_ms),
         "diagnosis": u.monitor.name(), "hint": HINTS[u.monitor.code]}
    if u.cfg["parity"] == "auto":
        d["autodetect_locked"] = u.auto_locked
        d["autodetect_switches"] = u.auto_switches
    return d


def wifi(n):
    d = {"state": n.state, "ssid": n.wcfg["ssid"], "ip": n.ip, "connects": n.connects, "failures": n.failures,
         "last_error": n.last_error, "ap": n.ap.active(), "ap_reason": n.ap_reason, "time_synced": n.time_synced(),
         "ntp_syncs": n.ntp_syncs, "ntp_failures": n.ntp_failures}
    if n.state == "up":
        try:
            d["rssi_dbm"] = n.sta.status("rssi")
        except (OSError, ValueError, TypeError):
            pass
    return d


def mqtt(m):
    return {"enabled": m.enabled, "state": m.state, "host": m.cfg["host"], "port": m.cfg["port"],
            "tls": m.cfg["tls"], "client_id": m.client_id, "base_topic": m.cfg["base_topic"],
            "connects": m.connects, "connect_failures": m.connect_failures,
            "disconnects": m.disconnects, "published": m.published,
            "accounting_published": m.acc_published,
            "publish_errors": m.publish_errors, "superseded": m.app.superseded,
            "discovery_sent": m.discovery_sent, "ha_online_seen": m.ha_online_seen,
            "keepalive_s": m.cfg["keepalive_s"], "pings": m.pings, "pongs": m.pongs,
            "timed_connect": m.timed_connect,
            "backoff_ms": m.backoff_ms, "rounds": m.rounds, "last_error": m.last_error}


def http(app):
    h = app.http
    by = {}
    for k in h.by_status:
        by[str(k)] = h.by_status[k]
    return {"enabled": h.cfg["enabled"], "port": h.cfg["port"], "requests": h.requests, "active": h.active,
            "by_status": by, "timeouts": h.timeouts, "rejected_busy": h.rejected_busy, "io_errors": h.io_errors,
            "cut": h.cut, "heap_waits": h.heap_waits, "evicted": h.evicted, "dropped": h.dropped,
            "deferred": h.deferred, "last_error": h.last_error, "token_set": bool(h.cfg["token"])}


def pairs(app):
    """(key, value) of /status, each made just before it is sent (json_stream). (In parts: a function's
    bytecode is one block of heap when the module loads, and the heap between answers is in pieces.)"""
    yield "firmware", app.version
    yield "hanport", hanport.__version__
    yield "platform", sys.platform
    yield "node_id", app.node_id
    yield "uptime_s", uptime_ms() // 1000
    yield "heap_free", gc.mem_free()
    yield "heap_used", gc.mem_alloc()
    yield "heap_used_after_gc", app.heap_used_after_gc
    yield "heap_free_after_gc", app.heap_free_after_gc
    yield "healthy", app.healthy
    u = app.firmware  # update.py: the version running, the one to go back to, why the last one went back
    yield "update", u and {"running_version": u[0], "fallback_version": u[1], "on_trial_now": u[4] is not None,
                           "rollback_reason": u[2]}  # (None: no update installed, make deploy's files run)
    yield "unhealthy_reason", app.unhealthy_reason
    yield "readings", app.seq
    yield "state_errors", app.state_errors
    yield "reading_age_ms", app.reading_age_ms()
    yield from _pairs(app)


def _pairs(app):
    # the rest of pairs()
    lt = app.latest
    yield "meter", {"manufacturer": lt.manufacturer, "meter_id": lt.meter_id, "meter_type": lt.meter_type,
                    "list_version": lt.list_version}  # as last sent (list 1 alone does not say)
    yield "wifi", wifi(app.net)
    yield "mqtt", mqtt(app.mqtt)
    yield "http", http(app)
    yield "uart", uart(app.uart)
    yield "decoder", app.reader.counters()
    yield "last_error", app.reader.last_error
    yield "messages_per_list", {"1": lt.per_list[1], "2": lt.per_list[2], "3": lt.per_list[3],
                                "unknown": lt.per_list[0]}
    yield "watchdog", {"enabled": app.wdt is not None, "feeds": app.wdt_feeds}
    yield "loop_stall_max_ms", app.stall_max_ms
    yield "task_crashes", app.crashes
    yield "recent_crashes", app.crash_log
    yield "config_problems", app.config_problems
