# Boot-time only, unloaded once the app runs: app.App's parts (build), the settings (validated or cached),
# the decoder, the accounting, the tasks' start (start) and their objects' state (uart_state, ... http_state).
import asyncio
import gc
import json
import socket
import sys

import machine
import mem
from log import log, set_secrets, uptime_ms
from micropython import const

import hanport

_HOLD_S = const(8)  # seconds of a line sending without pause that the driver's buffer holds while the loop is busy
_RXBUF_MIN = const(1024)  # bytes: two of the largest HDLC frames fit at any baud rate
_RXBUF_MAX = const(8192)  # bytes of the ESP-IDF heap (not MicroPython's): 0.7 s of a P1 line at 115200 baud
# without pause; a P1 meter sends one telegram (< 2 KB) a second, so that still holds 4 s or more
_BACKLOG = const(8)  # connections the TCP stack holds before httpd.Http.serve() accepts them

# Modules the app loads on demand and unloads after each use (web.py, mqtt.py, net.py, AccountingHook).
# The names a module interns when it loads (qstrs) are never freed: loaded first in the middle of a
# running heap, they would sit between later allocations for good and split the free space.
ON_DEMAND = ("config", "config_boot", "defaults", "status", "status_config", "metrics", "dash", "history", "static",
             "auth", "settings", "apply", "mqtt_session", "discovery", "net_ap_ntp",
             "hanport.prom", "hanport.promtext", "hanport.hass", "hanport.accounting_hourly",
             "hanport.accounting_views", "hanport.accounting_json",
             "hanport.accounting_store", "hanport.accounting_capacity", "hanport.accounting_history",
             "hanport.localtime", "hanport.jsonstream", "hanport.persist", "hanport.serial_detect", "dns")


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
    import config_boot

    try:
        found = config_boot.boot(path)
    finally:
        config_boot = None
        mem.unload("config_boot")
        mem.unload("config")
        mem.unload("defaults")
        mem.unload("hanport.persist")
    # the validation's garbage (~12 KB) collected now, before the rest of the boot allocates (with the
    # collection left for later, a boot that validated kept ~3 KB more for good on some builds:
    # tools/boot_heap.py)
    gc.collect()
    return found


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


def reader(m, frame=None, frame_bytes=2048, problems=None):
    """The decoder for meter.protocol: HDLC frames (Norway), M-Bus long frames (Austria), P1/DSMR
    telegrams (Sweden, Netherlands, Belgium: set uart.baud 115200; with a key, ciphered ones: Luxembourg,
    Energienetze Steiermark). Keys decrypt ciphered DLMS
    (meter.build: the key's code stays out of a boot without one; "meter" and "build" are names such a
    boot interns anyway, so it interns nothing more for it)."""
    key = m["key"] or None
    auth_key = m["auth_key"] or None
    try:
        framer = None
        if m["protocol"] == "p1":
            if not (key or auth_key):
                from hanport.p1 import P1Reader

                return P1Reader()
            from hanport.glo import GloReader  # telegrams in bare ciphered APDUs: the Sagemcom T210-D

            framer = GloReader(frame or frame_bytes)
        if m["protocol"] == "mbus":
            from hanport.mbus import MbusReader

            framer = MbusReader(frame or frame_bytes)
        if key or auth_key:
            import meter

            return meter.build(m, frame or frame_bytes, framer, problems)
        return hanport.HanReader(frame or frame_bytes, framer=framer)
    except ImportError as e:  # settings changed after `make deploy` installed the parts for others
        if problems is not None:
            problems.append("meter.protocol %s%s needs a part that is not installed (%s): run make deploy "
                            "with these settings; reading HDLC without a key meanwhile"
                            % (m["protocol"], " with a key" if key or auth_key else "", e))
        return hanport.HanReader(frame or frame_bytes)


def accounting(store, acfg):
    """hanport.accounting.Accounting with its state loaded from store (app.FlashStore) and the capacity
    tariff of the accounting settings acfg, or None when that module is not installed or cannot start."""
    try:
        from hanport import accounting
    except ImportError:
        return None
    try:
        return accounting.Accounting(store=store, steps_kw=acfg["capacity_steps_kw"], top_days=acfg["top_days"])
    except Exception as e:  # a state file from another version, a missing class: run without it
        log("app", "accounting not started: %r" % (e,))
        return None


def build(app, config_path, frame, raw, state):
    """app.App's parts and state (its __init__): the settings, the accounting first (its history arrays
    settle low in the heap and its state file is read while the heap is whole), the on-demand modules'
    names (warm_up), the decoder, then the tasks' objects."""
    import web
    from app import FRAME_BYTES, RAW_SLOTS, STATE_BYTES, VERSION, AccountingHook, FlashStore
    from httpd import Http
    from mqtt import Mqtt
    from net import Net
    from uart import UartTask

    from hanport.latest import Latest, PowerLog

    app.version = VERSION
    app.config_path = config_path
    app.cfg, app.config_problems, app.config_found, app.secret_keys = settings(config_path)
    app.accounting = None
    if app.cfg["accounting"]["enabled"]:  # first: its arrays (history) settle low in the heap, and
        acc = accounting(FlashStore("accounting"), app.cfg["accounting"])  # its state read while the heap is whole
        if acc is not None:
            h = AccountingHook()  # (its state set here: boot-time code, so its bytecode leaves the heap after boot)
            h.acc = acc
            h.busy = None  # callable: True while a large HTTP answer holds its modules in the heap
            h.errors = 0
            h.last_error = None
            h.hour_due = True  # an hourly list came (or boot): publish the accounting message soon
            h.text = None  # the accounting JSON last made (str, ASCII), and when
            h.text_ms = 0
            h.slow = None  # summary() as made for this running hour and history (None: to make)
            h.slow_hour = None  # acc.now_hour() when it was made
            h.slow_until = None  # the first hour of the next local day: made anew then (or after an hourly list)
            h.template = None  # (accounting_json.json_template(slow)): (text, R, N)
            h.live_keys = h.counter_names = None  # accounting_json.LIVE_KEYS, accounting_views.COUNTER_NAMES
            h.save_waits = 0  # ticks the due save has waited for the HTTP answers to finish
            h.slow_waits = 0  # ticks before the ticker tries the summary again after it failed
            app.accounting = h
            h = None
            app.accounting.release()  # the state layout module is needed again only to save
    warm_up()
    app.reader = reader(app.cfg["meter"], frame, FRAME_BYTES, app.config_problems)
    # the decoder's import garbage collected before the tasks' objects are made: left for the collection
    # an allocation failure runs, it split the free space and a boot could fail here (the smallest heap
    # a boot passes, tools/boot_heap.py --smallest: 111 KB without this and app._start's collection, 102
    # KB with both; a CI boot at 112 KB once failed here)
    gc.collect()
    app.rawlog = None
    if app.cfg["meter"]["protocol"] == "hdlc" and app.cfg["uart"]["raw_log"]:
        try:  # the last raw frames for GET /raw (bug reports, docs/troubleshooting.md): off by default,
            from hanport import rawlog  # as its ring and code take 4.6 KB of a board's heap

            app.rawlog = rawlog.RawLog(slots=RAW_SLOTS, clock_ms=uptime_ms, buf=raw)
            app.reader.framer.tap = app.rawlog
        except ImportError:
            pass
    secrets = []
    for key in app.secret_keys:
        v = app.cfg
        for part in key.split("."):  # a dotted settings key ("mqtt.password")
            v = v[part]
        if v:
            secrets.append(v)
    set_secrets(secrets)
    app.node_id = app.cfg["mqtt"]["node_id"] or "han_" + "".join("%02x" % b for b in machine.unique_id())
    app.latest = Latest()
    app.power_log = PowerLog()  # the dashboard's last hour of power (GET /power.json)
    app.seq = 0
    app.state_buf = state if state is not None else bytearray(STATE_BYTES)
    app.state = None  # the latest state message as bytes (MQTT payload; /data.json adds its age)
    app.state_ms = 0
    app.unpublished = False
    app.superseded = 0  # states replaced before MQTT could send them (broker away or slow)
    app.state_errors = 0  # state messages not made for want of heap (the readings went on)
    app.mqtt_event = asyncio.Event()
    app.crashes = {}
    app.crash_log = []
    app.healthy = True
    app.unhealthy_reason = None
    app.heap_used_after_gc = 0
    app.heap_free_after_gc = 0
    app.wdt = None
    app.wdt_feeds = 0
    app.stall_max_ms = 0  # the longest the event loop was held by one call since boot (the ticker's lateness)
    app.led = None
    app.uart = UartTask(app, app.cfg["uart"])
    app.net = Net(app, app.cfg)
    app.mqtt = Mqtt(app, app.cfg, app.node_id)
    app.turn = asyncio.Lock()  # large work, one at a time: an HTTP answer that loads modules, an MQTT connect
    app.http = Http(app.cfg["http"], app._route, web.allowed, app._light, app.turn)
    if app.accounting is not None:
        app.accounting.busy = app.answer_busy


def start(app):
    """app.App.run's start: the boot log, the supervised tasks and the HTTP server (a plain function:
    no frame of a coroutine that lives on keeps a reference into this module, which then stays)."""
    from app import VERSION

    log("app", "HAN reader %s (hanport %s) on %s, node %s" % (VERSION, hanport.__version__, sys.platform,
                                                               app.node_id))
    for p in app.config_problems:
        log("config", p)
    if not app.config_found:
        log("config", "no %s: defaults (first boot)" % app.config_path)
    if app.cfg["led"]["pin"] >= 0:
        app.led = machine.Pin(app.cfg["led"]["pin"], machine.Pin.OUT)
    if app.cfg["wdt"]["enabled"]:  # fed by the ticker, once a second, while the app is healthy
        app.wdt = machine.WDT(timeout=app.cfg["wdt"]["timeout_ms"])
    app.collect()
    if hasattr(gc, "threshold"):
        # collect whenever another eighth of the free heap has been allocated, not only when the heap
        # is full: garbage does not push new objects up the heap, so the free space stays in larger
        # pieces (MicroPython has no compaction); at 112 KB that is about every 2.5 KB
        gc.threshold(app.heap_free_after_gc // 8)
    # a task outside the supervisors (an HTTP connection) that fails: logged through the scrubber
    asyncio.get_event_loop().set_exception_handler(app._unhandled)
    sup = app._supervise
    asyncio.create_task(sup("uart", app.uart.run))
    asyncio.create_task(sup("wifi", app.net.run))
    asyncio.create_task(sup("mqtt", app.mqtt.run))
    asyncio.create_task(sup("ticker", app._ticker))
    app.http.stream = {"/firmware/update": app.update}  # (its body streamed to flash, never whole in RAM)
    h = app.http  # listens on http.bind:port (h.server), h.serve() accepts; a port that cannot be bound raises
    if h.cfg["enabled"]:
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(socket.getaddrinfo(h.cfg["bind"], h.cfg["port"])[0][-1])
            s.listen(_BACKLOG)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        h.server = s
    if app.http.server is not None:
        asyncio.create_task(sup("http", app.http.serve))
        log("http", "listening on %s:%d" % (app.cfg["http"]["bind"], app.cfg["http"]["port"]))


# --- the state of the tasks' objects, set up for their __init__ (boot-time code like the rest of this
# module, so its bytecode does not stay in the heap with the classes) ---
def uart_state(u, app, ucfg):
    """uart.UartTask's state."""
    import time

    from uart import CHUNK_BYTES

    from hanport import diagnose

    u.app = app
    u.cfg = ucfg
    first = (ucfg["parity"] if ucfg["parity"] != "auto" else "E", ucfg["invert"])
    u.auto = None  # hanport.serial_detect.SerialAutodetect while the setting is not known yet
    u.auto_locked = ucfg["parity"] != "auto"  # a frame checked out (or the setting is fixed)
    u.auto_switches = 0
    if not u.auto_locked:  # walk 8E1/8N1 x inversion until a frame checks out
        from hanport import serial_detect

        idx = serial_detect.LINE_SETTINGS.index(first)
        u.auto = serial_detect.SerialAutodetect(first=idx, trial_ms=ucfg["autodetect_trial_s"] * 1000)
    u.parity, u.invert = first
    u.monitor = diagnose.LineMonitor()
    u.buf = bytearray(CHUNK_BYTES)
    u.rxbuf = rx_buffer_bytes(ucfg)
    u.uart = None
    u.bytes = 0
    u.reads = 0
    u.last_rx_ms = time.ticks_ms()


def net_state(n, app, cfg):
    """net.Net's state."""
    import time

    import network

    n.app = app
    n.wcfg = cfg["wifi"]
    n.acfg = cfg["ap"]
    n.ncfg = cfg["ntp"]
    n.sta = network.WLAN(network.STA_IF)
    n.ap = network.WLAN(network.AP_IF)
    n.state = "down"
    n.ap_reason = None
    n.connects = 0
    n.failures = 0
    n.last_error = None
    n.ip = None
    n.ntp_synced = False
    n.ntp_syncs = 0
    n.ntp_failures = 0
    n.ntp_next_ms = time.ticks_ms()
    n.ntp_ip = None  # ntp.host resolved (numeric), kept until a sync fails
    n.down_ms = n.up_ms = time.ticks_ms()  # when the station last went down / came up
    n.backoff_ms = 1000  # before the next attempt after a failed one (doubles up to backoff_max_s)


def mqtt_state(mq, app, cfg, node_id):
    """mqtt.Mqtt's state."""
    import time

    from mqtt import ACC_SUFFIX, ENERGY_SUFFIX

    m = cfg["mqtt"]
    mq.app = app
    mq.cfg = m
    mq.enabled = m["enabled"] and bool(m["host"])
    base = m["base_topic"]
    mq.node_id = node_id
    mq.client_id = m["client_id"] or node_id
    mq.t_state = (base + "/state").encode()
    mq.t_status = (base + "/status").encode()
    mq.t_ha_status = (m["discovery_prefix"] + "/status").encode()
    mq.t_acc = (base + ACC_SUFFIX).encode()
    mq.t_energy = (base + ENERGY_SUFFIX).encode()
    mq.energy_at = None  # Latest.at of the energy counters last sent on this connection
    mq.energy_n = 0  # Latest.per_list[3] then: hourly lists seen
    mq.boot_waits = 0
    mq.acc_interval_ms = m["accounting_interval_s"] * 1000
    mq.acc_len = -1  # length and CRC-32 of the accounting message last sent on this connection (-1: send
    mq.acc_crc = 0  # anew); not the text itself, which would keep a second ~600-byte copy in the heap
    mq.acc_checked_ms = time.ticks_ms()
    mq.acc_published = 0
    mq.device_name = cfg["name"]
    mq.client = None
    mq.state = "disabled" if not mq.enabled else "waiting_network"
    mq.discovery_due = True
    mq.connects = 0
    mq.connect_failures = 0
    mq.disconnects = 0
    mq.published = 0
    mq.publish_errors = 0
    mq.discovery_sent = 0
    mq.ha_online_seen = 0
    mq.last_error = None
    mq.backoff_ms = 0
    mq.rounds = 0
    mq.addr = None  # (sockaddr, numeric host) of the broker, resolved once
    mq.pings = 0
    mq.pongs = 0
    mq.ping_rx = None  # sock.rx when the outstanding PINGREQ went out; None: none outstanding
    mq.ping_ms = 0
    mq.timed_connect = None  # True: connect() took a timeout (umqtt 1.8.0), False: not (1.3.4)
    mq.disc_sending = False  # a discovery message is being published (not only built)
    mq.disc_ms = mq.up_ms = time.ticks_ms()  # discovery not before disc_ms; up_ms: last connect


def http_state(h, cfg, route, allowed, light, turn):
    """httpd.Http's state."""
    from httpd import READ_CHUNK

    h.cfg = cfg
    h.route = route
    h.allowed = allowed
    h.light = light  # light(path): True when its answer is small now: served without waiting for the others
    h.turn = turn or asyncio.Lock()  # one large answer (or other large work) at a time: bounded heap
    h.server = None
    h.active = 0
    h.requests = 0
    h.by_status = {}
    h.timeouts = 0
    h.rejected_busy = 0
    h.io_errors = 0
    h.last_error = None
    h.last_path = None
    h.cut = 0  # answers whose body failed after the head was sent (closed early)
    h.heap_waits = 0  # answers made again after the heap ran short before their head (Http._made)
    h.waiting = []  # (ticks_ms accepted, task) of connections still reading their head, oldest first
    h.evicted = 0  # of those, closed to make room for a new connection
    h.queued = 0  # new connections waiting a moment for a place (_place)
    h.dropped = 0  # connections closed at once for want of heap to serve them
    h.deferred = 0  # times a new connection was left in the TCP backlog a moment for want of heap
    h.conns = 0  # connections with a task (being served or waiting for a place)
    h.rbuf = bytearray(READ_CHUNK)  # every connection reads through it (no await between read and copy)
    # path -> async fn(req, sock, data, size) for POSTs whose body is not read into RAM: fn reads the
    h.stream = {}  # `size` bytes as they come (`data`: those that came with the head), gives the answer


def rx_buffer_bytes(ucfg):
    """The UART driver's receive buffer: uart.rxbuf, or when 0 sized from the baud rate (_HOLD_S of
    bytes at 10 bits each, within _RXBUF_MIN.._RXBUF_MAX, in whole KiB): 2048 at 2400 baud."""
    if ucfg["rxbuf"]:
        return ucfg["rxbuf"]
    n = ucfg["baud"] // 10 * _HOLD_S
    n = (n + 1023) // 1024 * 1024
    return min(max(n, _RXBUF_MIN), _RXBUF_MAX)
