# GET /status: every part of the app in one JSON object (decoder counters, UART line diagnosis, WiFi,
# MQTT, HTTP, accounting, heap, crashes, the masked config); loaded per request by web.py.
import gc
import sys
import time

from log import uptime_ms

import hanport


def uart(u):
    d = {"parity": u.parity, "invert": u.invert, "parity_setting": u.cfg["parity"], "baud": u.cfg["baud"],
         "bytes": u.bytes, "reads": u.reads, "idle_ms": time.ticks_diff(time.ticks_ms(), u.last_rx_ms),
         "diagnosis": u.monitor.name(), "hint": u.monitor.hint()}
    if u.auto is not None:
        d["autodetect_locked"] = u.auto.locked
        d["autodetect_switches"] = u.auto.switches
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


def http(app):
    h = app.http
    by = {}
    for k in h.by_status:
        by[str(k)] = h.by_status[k]
    return {"enabled": h.cfg["enabled"], "port": h.cfg["port"], "requests": h.requests, "active": h.active,
            "by_status": by, "timeouts": h.timeouts, "rejected_busy": h.rejected_busy, "io_errors": h.io_errors,
            "last_error": h.last_error, "token_set": bool(h.cfg["token"])}


def status(app):
    lt = app.latest
    d = {
        "firmware": app.version, "hanport": hanport.__version__, "platform": sys.platform,
        "node_id": app.node_id, "uptime_s": uptime_ms() // 1000,
        "heap_free": gc.mem_free(), "heap_used": gc.mem_alloc(),
        "heap_used_after_gc": app.heap_used_after_gc, "heap_free_after_gc": app.heap_free_after_gc,
        "healthy": app.healthy, "unhealthy_reason": app.unhealthy_reason,
        "readings": app.seq, "reading_age_ms": app.reading_age_ms(),
        "wifi": wifi(app.net), "mqtt": app.mqtt.status(), "http": http(app), "uart": uart(app.uart),
        "decoder": app.reader.counters(), "last_error": app.reader.last_error,
        "messages_per_list": {"1": lt.per_list[1], "2": lt.per_list[2], "3": lt.per_list[3],
                              "unknown": lt.per_list[0]},
        "watchdog": {"enabled": app.wdt is not None, "feeds": app.wdt_feeds},
        "task_crashes": app.crashes, "recent_crashes": app.crash_log,
        "config_problems": app.config_problems, "config": app.config_masked,
    }
    if app.accounting is not None:
        d["accounting"] = app.accounting.as_dict()
    return d
