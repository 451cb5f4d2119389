# Boot-time only, unloaded once the app runs: the settings (config.json as validated by config.py, or
# the cache of the last validation when config.json is unchanged), the decoder, the accounting.
import gc
import json
import sys

import mem
from log import log

import hanport

# Modules the app loads on demand and unloads after each use (web.py, mqtt.py, net.py, AccountingHook).
# The names a module interns when it loads (qstrs) are never freed: loaded first in the middle of a
# running heap, they would sit between later allocations for good and split the free space.
ON_DEMAND = ("config", "defaults", "status", "metrics", "pages", "settings", "mqtt_session", "net_ap_ntp",
             "hanport.prom", "hanport.hass", "hanport.accounting_hourly", "hanport.accounting_views",
             "hanport.accounting_store", "hanport.accounting_capacity", "hanport.accounting_history",
             "hanport.localtime", "hanport.persist", "hanport.serial_detect")


def warm_up():
    """Import each on-demand module once and let it go again, one at a time: the names they intern
    settle at the bottom of the heap at boot, before the long-lived objects."""
    for name in ON_DEMAND:
        before = set(sys.modules)
        try:
            __import__(name)
        except ImportError:  # not installed (a build without that part)
            pass
        for loaded in list(sys.modules):
            if loaded not in before:
                mem.unload(loaded)
        before = None
        gc.collect()


def settings(path):
    """(config, problems, found, secret keys). config.py (validation, ~12 KB of heap while loaded) is
    loaded only when config.json differs from what it last validated (config.write_cache)."""
    from hanport import persist

    persist.recover(path)  # a settings save cut by a power failure: the old or the new file, never none
    persist.recover(path + ".ok")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = None
    try:
        with open(path + ".ok") as f:
            doc = json.loads(f.read())
        if doc["source"] == text:
            import defaults  # a firmware with other settings keys makes the cache stale

            same = _same_keys(doc["config"], defaults.DEFAULTS)
            mem.unload("defaults")
            mem.unload("hanport.persist")
            if same:
                return doc["config"], doc["problems"], text is not None, doc["secret_keys"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    import config

    try:
        return config.boot(path)
    finally:
        mem.unload("config")
        mem.unload("defaults")
        mem.unload("hanport.persist")


def _same_keys(a, b):
    """True if dicts a and b have the same keys at every level (values may differ)."""
    if len(a) != len(b):
        return False
    for k in b:
        if k not in a or isinstance(b[k], dict) != isinstance(a[k], dict):
            return False
        if isinstance(b[k], dict) and not _same_keys(a[k], b[k]):
            return False
    return True


def reader(m, frame=None, frame_bytes=2048):
    """The decoder for meter.protocol: HDLC frames (Norway), M-Bus long frames (Austria), P1/DSMR
    telegrams (Sweden, Netherlands, Belgium: set uart.baud 115200). Keys decrypt ciphered DLMS."""
    key = m["key"] or None
    auth_key = m["auth_key"] or None
    if m["protocol"] == "p1":
        from hanport.p1 import P1Reader

        return P1Reader()
    framer = None
    if m["protocol"] == "mbus":
        from hanport.mbus import MbusReader

        framer = MbusReader(frame or frame_bytes)
    return hanport.HanReader(frame or frame_bytes, key=key, auth_key=auth_key, framer=framer)


def accounting(store):
    """hanport.accounting.Accounting with its state loaded from store (app.FlashStore), or None when
    that module is not installed or cannot start."""
    try:
        from hanport import accounting
    except ImportError:
        return None
    try:
        return accounting.Accounting(store=store)
    except Exception as e:  # a state file from another version, a missing class: run without it
        log("app", "accounting not started: %r" % (e,))
        return None
