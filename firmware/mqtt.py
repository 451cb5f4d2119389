# MQTT publisher on umqtt.simple: state per reading, accounting (rate-limited), Home Assistant discovery,
# online/offline will. umqtt.simple is used only through what both PyPI's 1.3.4 and the 1.8.0 that a
# stock ESP32 image freezes offer publicly (MQTTClient(...), set_callback, set_last_will, connect,
# publish, subscribe, check_msg, ping and the client's `sock` attribute). Every blocking step is bounded:
# connecting (mqtt_session.py: name resolved once, asynchronous probe, connect with a timeout where
# umqtt takes one) and, once connected, every read and write (BoundedSock: non-blocking underneath,
# each waits at most mqtt.timeout_s in poll, writes loop over partial writes; umqtt's setblocking() only
# picks "return at once" (check_msg) or "wait, bounded").
# Keepalive: PINGREQ when nothing was received (or sent) for keepalive/2, one at a time; the link is
# dead when nothing at all came back within keepalive/2 after a PINGREQ.
import asyncio
import binascii
import random
import select
import time

import mem
from log import log
from micropython import const
from net import resolve

from hanport import appjson
from hanport.reading import F_E_IMPORT

_ACC_HOUR_GAP_MS = const(1000)  # after an hourly list the accounting message goes out this soon (at the earliest)
_BOOT_WAITS_MAX = const(10)  # (500 ms each) the first connection waits at most this for the accounting's summary
_DISC_RETRY_MS = const(5000)  # a discovery that ran out of heap while building a message is tried again this much later
_STABLE_MS = const(30000)  # a connection that lasted this long resets the reconnect backoff
_ENERGY_EVERY_MS = const(60000)  # counters pushed with every message (meters outside Norway, every 1-10 s) are
# retained on <base>/energy once a minute and with each hour's list; a Norwegian meter's come hourly anyway
# Literals from hanport/hass.py (ACCOUNTING_TOPIC, PAYLOAD_ONLINE, PAYLOAD_OFFLINE): hass is imported
# only while discovery is sent, so its bytecode is not resident in the heap.
ACC_SUFFIX = "/accounting"
ENERGY_SUFFIX = "/energy"  # the meter's latest energy counters, retained (hanport.hass: the kWh sensors read it)
ONLINE = b"online"
OFFLINE = b"offline"
PINGRESP = b"\xd0"
ETIMEDOUT = 110
POLL_IN = select.POLLIN
POLL_OUT = select.POLLOUT
POLL_BAD = select.POLLERR | select.POLLHUP


class BoundedSock:
    # client.sock once connected: the socket (plain or TLS) in non-blocking mode; a "blocking" read or
    # write waits in poll for at most t_ms in all. Counts reads with data (rx), the time of the last
    # one (rx_ms) and of the last write (tx_ms), and PINGRESP packets (owner.pongs).
    def __init__(self, s, t_ms, owner):
        s.setblocking(False)
        self.s = s
        self.t_ms = t_ms
        self.owner = owner
        self.nb = False
        self.p = select.poll()
        self.p.register(s, POLL_IN)
        self.rx = 0
        self.rx_ms = self.tx_ms = time.ticks_ms()

    def setblocking(self, flag):
        self.nb = not flag

    def _wait(self, ev, t0):
        left = self.t_ms - time.ticks_diff(time.ticks_ms(), t0)
        if left <= 0:
            raise OSError(ETIMEDOUT)
        self.p.modify(self.s, ev)
        self.p.poll(left)

    def read(self, n):
        s = self.s
        if self.nb:  # check_msg: a packet's first byte, if any
            b = s.read(n)
            if b == PINGRESP:
                self.owner.pongs += 1
        else:
            t0 = time.ticks_ms()
            b = b""
            while len(b) < n:
                r = s.read(n - len(b))
                if r is None:
                    self._wait(POLL_IN, t0)
                elif not r:
                    break  # closed: umqtt sees a short read
                else:
                    b += r
        if b:
            self.rx += 1
            self.rx_ms = time.ticks_ms()
        return b

    def write(self, buf, n=None):
        m = memoryview(buf)
        if n is not None:
            m = m[:n]
        t0 = time.ticks_ms()
        off = 0
        while off < len(m):
            k = self.s.write(m[off:])
            if k:
                off += k
            else:
                self._wait(POLL_OUT, t0)
        self.tx_ms = time.ticks_ms()
        return off

    def close(self):
        self.s.close()


class Mqtt:
    def __init__(self, app, cfg, node_id):
        import startup  # (the state is set up there: boot-time code, so its bytecode leaves the heap after boot)

        startup.mqtt_state(self, app, cfg, node_id)

    # --- connection (mqtt_session.py, loaded for each attempt) ---
    def _drop(self, why, exc):
        self.last_error = "%s: %r" % (why, exc)
        c = self.client
        self.client = None
        self.ping_rx = None
        if c is not None and c.sock is not None:
            try:
                c.sock.close()
            except OSError:
                pass

    def _on_message(self, topic, msg):
        if topic == self.t_ha_status and msg == ONLINE:
            self.ha_online_seen += 1
            self.discovery_due = True

    # --- the task ---
    async def run(self):
        if not self.enabled:
            self.state = "disabled"
            return
        app = self.app
        backoff_ms = 1000
        while True:
            if not app.net.connected:
                self.state = "waiting_network"
                await asyncio.sleep_ms(500)
                continue
            if self.client is None:
                hook = app.accounting
                if hook is not None and not hook.ready() and self.boot_waits < _BOOT_WAITS_MAX:
                    self.boot_waits += 1  # the first connection after boot once the ticker has made the
                    await asyncio.sleep_ms(500)  # accounting summary: the two loads do not add up
                    continue
                self.state = "connecting"
                failed = None
                try:
                    if self.addr is None:  # resolved once (again after a failure; dns.py only for a name)
                        self.addr = await resolve(app.net, self.cfg["host"], self.cfg["port"])
                    import mqtt_session

                    tls = self.cfg["tls"]  # the probe's TLS handshake (mbedtls: ~20 KB on the stand-in's heap)
                    if tls:  # takes its turn with the large answers too: neither fails for the other
                        await app.turn.acquire()
                    try:
                        await mqtt_session.probe(self)
                    finally:
                        if tls:
                            app.turn.release()
                    mqtt_session = None
                    mem.unload("mqtt_session")
                    await app.wait_quiet()  # (the blocking connect between meter frames)
                    await app.turn.acquire()  # the client's objects and buffers are made once no large
                    try:  # HTTP answer holds its modules (they would add up); the UART's buffer holds
                        import mqtt_session  # what arrives meanwhile (startup.rx_buffer_bytes)

                        mqtt_session.connect(self)
                    finally:
                        app.turn.release()
                except Exception as e:  # umqtt reports I/O and protocol failures with any exception type
                    failed = e
                finally:
                    mqtt_session = None
                    mem.unload("mqtt_session")
                if failed is not None:
                    self.connect_failures += 1
                    self.addr = None  # resolve again next time
                    self._drop("connect", failed)
                    failed = None
                    self.state = "backoff"
                    self.backoff_ms = backoff_ms
                    log("mqtt", "connect to %s:%d failed: %s; retry in %d ms" % (
                        self.cfg["host"], self.cfg["port"], self.last_error, backoff_ms))
                    await asyncio.sleep_ms(backoff_ms + random.getrandbits(8) * backoff_ms // 1024)
                    backoff_ms = min(backoff_ms * 2, self.cfg["backoff_max_s"] * 1000)
                    continue
                self.backoff_ms = 0
                self.up_ms = time.ticks_ms()
                self.connects += 1
                self.discovery_due = True
                self.acc_len = -1  # a broker without persistence lost the retained one
                self.energy_at = None
                self.state = "connected"
                log("mqtt", "connected to %s:%d as %s" % (self.cfg["host"], self.cfg["port"], self.client_id))
            self.rounds += 1
            try:
                if (self.discovery_due and self.cfg["discovery"] and app.latest.mask
                        and time.ticks_diff(time.ticks_ms(), self.disc_ms) >= 0):
                    await app.turn.acquire()  # hass and its messages (~8 KB) never beside a large answer's
                    try:
                        self.discovery_due = False
                        self._send_discovery()
                    finally:
                        app.turn.release()
                self._service()
            except Exception as e:  # a broken connection surfaces as OSError, IndexError, ...
                self.disconnects += 1
                self.publish_errors += 1
                self._drop("connection", e)
                self.state = "backoff"
                if time.ticks_diff(time.ticks_ms(), self.up_ms) > _STABLE_MS:
                    backoff_ms = 1000  # else a connection that keeps failing at once backs off further
                self.backoff_ms = backoff_ms
                log("mqtt", "connection lost: %s; reconnect in %d ms" % (self.last_error, backoff_ms))
                await asyncio.sleep_ms(backoff_ms + random.getrandbits(8) * backoff_ms // 1024)
                backoff_ms = min(backoff_ms * 2, self.cfg["backoff_max_s"] * 1000)
                continue
            await app.mqtt_event.wait()
            app.mqtt_event.clear()

    def _service(self):
        # one round while connected: pending state, accounting, discovery, incoming messages, keepalive
        app = self.app
        c = self.client
        if app.unpublished and app.state is not None:
            c.publish(self.t_state, app.state)  # bytes or a memoryview of app.state_buf: no copy
            app.unpublished = False  # only once sent: a failed publish is retried after reconnecting
            self.published += 1
        lt = app.latest
        at = lt.at[F_E_IMPORT]
        if lt.present[F_E_IMPORT] and at != self.energy_at and (  # new counters: an hourly list, a reconnect,
                self.energy_at is None or lt.per_list[3] != self.energy_n  # or a minute of pushed ones
                or time.ticks_diff(at, self.energy_at) >= _ENERGY_EVERY_MS):
            c.publish(self.t_energy, appjson.energy_json(lt), retain=True)
            self.energy_at = at
            self.energy_n = lt.per_list[3]
        if app.accounting is not None:
            self._publish_accounting(app.accounting)
        for _ in range(8):
            if c.check_msg() is None:  # returns at once; handles PINGRESP and homeassistant/status
                break
        w = c.sock
        now = time.ticks_ms()
        half = self.cfg["keepalive_s"] * 500
        if self.ping_rx is not None:
            if w.rx != self.ping_rx:
                self.ping_rx = None  # the broker answered (PINGRESP or anything else)
            elif time.ticks_diff(now, self.ping_ms) > half:
                raise OSError(ETIMEDOUT)  # no answer to PINGREQ within keepalive/2
        if self.ping_rx is None and (time.ticks_diff(now, w.rx_ms) >= half or time.ticks_diff(now, w.tx_ms) >= half):
            c.ping()
            self.pings += 1
            self.ping_rx = w.rx
            self.ping_ms = now

    def _publish_accounting(self, hook):
        # <base>/accounting (retained) when it changed: at most every accounting_interval_s, within ~1 s
        # after an hourly list or a (re)connect; rendered only when due, so only the latest is sent
        now = time.ticks_ms()
        soon = hook.hour_due or self.acc_len < 0
        if time.ticks_diff(now, self.acc_checked_ms) < (_ACC_HOUR_GAP_MS if soon else self.acc_interval_ms):
            return
        if not hook.ready() and hook.busy is not None and hook.busy():
            return  # the summary would add its modules to a large HTTP answer's: a moment later
        self.acc_checked_ms = now
        hook.hour_due = False
        text = hook.json()
        if text is None:
            return
        crc = binascii.crc32(text)
        if len(text) == self.acc_len and crc == self.acc_crc:  # (the same text: not sent again)
            return
        self.client.publish(self.t_acc, text, retain=True)
        self.acc_len = len(text)
        self.acc_crc = crc
        self.acc_published += 1

    def _send_discovery(self):
        # discovery.send_discovery with hanport.hass, both unloaded after it (~6 KB otherwise resident).
        # Out of heap while a message is built (none of it sent): the connection stays, the whole
        # discovery is tried again _DISC_RETRY_MS later. Out of heap inside publish: the connection goes.
        self.disc_sending = False
        try:
            import discovery

            discovery.send_discovery(self)
        except MemoryError:
            if self.disc_sending:
                raise
            self.discovery_due = True  # (no allocation in here: the heap is short)
            self.disc_ms = time.ticks_add(time.ticks_ms(), _DISC_RETRY_MS)
            self.last_error = "discovery: out of memory"
        finally:
            discovery = None
            try:
                mem.unload("discovery")
                mem.unload("hanport.hass")
            except MemoryError:  # it left sys.modules before failing; the rest goes next time
                pass
