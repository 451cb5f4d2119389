# MQTT publisher on umqtt.simple: state per reading, accounting (rate-limited), Home Assistant discovery,
# online/offline will. umqtt.simple is used only through what both PyPI's 1.3.4 and the 1.8.0 that a
# stock ESP32 image freezes offer publicly (MQTTClient(...), set_callback, set_last_will, connect,
# publish, subscribe, check_msg, ping and the client's `sock` attribute). Every blocking step is bounded:
# - the broker's name is resolved once (cached; again only after a failure) and umqtt gets the
#   numeric address, so its own getaddrinfo never waits on DNS;
# - an asynchronous probe (non-blocking socket, asyncio sleeps) first checks that the broker accepts
#   TCP and answers an MQTT CONNECT (over TLS too, unless umqtt bounds its own TLS handshake): a broker
#   that is down, unreachable or silent never blocks the event loop;
# - connect(clean_session, timeout) where umqtt accepts a timeout (1.8.0); 1.3.4 connects without one,
#   right after the probe heard the broker answer;
# - after connecting, client.sock is wrapped (_Sock): non-blocking underneath, every read/write waits
#   at most mqtt.timeout_s (poll), writes loop over partial writes; umqtt's setblocking() only picks
#   "return at once" (check_msg) or "wait, bounded".
# Keepalive: PINGREQ when nothing was received (or sent) for keepalive/2, one at a time; the link is
# dead when nothing at all came back within keepalive/2 after a PINGREQ.
import asyncio
import random
import select
import socket
import sys
import time
from errno import EINPROGRESS

from log import log
from umqtt.simple import MQTTClient

ACC_HOUR_GAP_MS = 1000  # after an hourly list the accounting message goes out this soon (at the earliest)
DISC_RETRY_MS = 5000  # a discovery that ran out of heap while building a message is tried again this much later
STABLE_MS = 30000  # a connection that lasted this long resets the reconnect backoff
# Literals from hanport/hass.py (ACCOUNTING_TOPIC, PAYLOAD_ONLINE, PAYLOAD_OFFLINE): hass is imported
# only while discovery is sent, so its bytecode is not resident in the heap.
ACC_SUFFIX = "/accounting"
ONLINE = b"online"
OFFLINE = b"offline"
# MQTT 3.1.1 CONNECT: clean session, keepalive 10 s, empty client id. Any answer (even a refusal) shows
# a broker that talks; the probe then sends DISCONNECT.
PROBE = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0a\x00\x00"
PINGRESP = b"\xd0"
ETIMEDOUT = 110
_IN = select.POLLIN
_OUT = select.POLLOUT
_BAD = select.POLLERR | select.POLLHUP


class _Sock:
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
        self.p.register(s, _IN)
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
                    self._wait(_IN, t0)
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
                self._wait(_OUT, t0)
        self.tx_ms = time.ticks_ms()
        return off

    def close(self):
        self.s.close()


class Mqtt:
    def __init__(self, app, cfg, node_id):
        m = cfg["mqtt"]
        self.app = app
        self.cfg = m
        self.enabled = m["enabled"] and bool(m["host"])
        base = m["base_topic"]
        self.node_id = node_id
        self.client_id = m["client_id"] or node_id
        self.t_state = (base + "/state").encode()
        self.t_status = (base + "/status").encode()
        self.t_ha_status = (m["discovery_prefix"] + "/status").encode()
        self.t_acc = (base + ACC_SUFFIX).encode()
        self.acc_interval_ms = m["accounting_interval_s"] * 1000
        self.acc_text = None  # the accounting message last sent on this connection (None: send anew)
        self.acc_checked_ms = time.ticks_ms()
        self.acc_published = 0
        self.device_name = cfg["name"]
        self.client = None
        self.state = "disabled" if not self.enabled else "waiting_network"
        self.discovery_due = True
        self.connects = 0
        self.connect_failures = 0
        self.disconnects = 0
        self.published = 0
        self.publish_errors = 0
        self.discovery_sent = 0
        self.ha_online_seen = 0
        self.last_error = None
        self.backoff_ms = 0
        self.rounds = 0
        self.addr = None  # (sockaddr, numeric host) of the broker, resolved once
        self.pings = 0
        self.pongs = 0
        self.ping_rx = None  # sock.rx when the outstanding PINGREQ went out; None: none outstanding
        self.ping_ms = 0
        self.timed_connect = None  # True: connect() took a timeout (umqtt 1.8.0), False: not (1.3.4)
        self.disc_ms = self.up_ms = time.ticks_ms()  # discovery not before disc_ms; up_ms: last connect

    # --- connection ---
    def _resolve(self):
        h = self.cfg["host"]
        ais = socket.getaddrinfo(h, self.cfg["port"])
        sa = ais[0][-1]
        for ai in ais:  # umqtt's socket is IPv4 (socket.socket() defaults)
            if ai[0] == socket.AF_INET:
                sa = ai[-1]
                break
        if isinstance(sa, tuple):  # ESP32: ("192.168.1.5", 1883)
            ip = sa[0]
        elif len(sa) == 16 and sa[0] == 2:  # unix port: a struct sockaddr_in
            ip = "%d.%d.%d.%d" % (sa[4], sa[5], sa[6], sa[7])
        else:
            ip = h
        return sa, ip

    async def _probe(self, sa):
        t_ms = self.cfg["timeout_s"] * 1000
        t0 = time.ticks_ms()
        s = socket.socket()
        try:
            s.setblocking(False)
            try:
                s.connect(sa)
            except OSError as e:
                if e.errno != EINPROGRESS:
                    raise
            p = select.poll()
            p.register(s, _OUT)
            if await self._poll(p, t0, t_ms) & _BAD:
                raise OSError("refused")
            if self.cfg["tls"]:
                if self.timed_connect:
                    return  # umqtt bounds its own TLS handshake (1.8.0): TCP is enough here
                import ssl  # 1.3.4 (or not known yet): the handshake too, asynchronously

                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.verify_mode = ssl.CERT_NONE  # as umqtt's ssl.wrap_socket(sock, server_hostname=...)
                s = ctx.wrap_socket(s, server_hostname=self.cfg["host"], do_handshake_on_connect=False)
                p = select.poll()
                p.register(s, _OUT)
            while not s.write(PROBE):  # None while the TLS handshake is under way
                await self._poll(p, t0, t_ms)
            p.modify(s, _IN)
            while True:
                await self._poll(p, t0, t_ms)
                b = s.read(1)
                if b is not None:
                    break
            if not b:
                raise OSError("closed by the broker")
            try:
                s.write(b"\xe0\x00")  # DISCONNECT
            except OSError:
                pass
        finally:
            s.close()

    async def _poll(self, p, t0, t_ms):
        # the events of the one registered socket once there are any; always yields to other tasks
        while True:
            if time.ticks_diff(time.ticks_ms(), t0) > t_ms:
                raise OSError(ETIMEDOUT)
            r = p.poll(0)
            await asyncio.sleep_ms(0 if r else 20)
            if r:
                return r[0][1]

    def _connect(self, ip):
        m = self.cfg
        if m["tls"] and "ussl" not in sys.modules:
            try:
                import ussl  # noqa: F401
            except ImportError:  # umqtt.simple 1.3.4 imports `ussl`; MicroPython >= 1.21 calls it ssl
                import ssl

                sys.modules["ussl"] = ssl
        user = m["user"].encode() if m["user"] else None  # bytes: umqtt sends len() as the length
        c = MQTTClient(self.client_id.encode(), ip, m["port"], user=user,
                       password=(m["password"].encode() if user else None), keepalive=m["keepalive_s"],
                       ssl=m["tls"], ssl_params={"server_hostname": m["host"]})
        c.set_callback(self._on_message)
        c.set_last_will(self.t_status, OFFLINE, retain=True)
        self.client = c  # a failure below closes c.sock in _drop
        try:
            c.connect(True, m["timeout_s"])  # 1.8.0: socket timeout from the first byte
            self.timed_connect = True
        except TypeError:
            if c.sock is not None:
                raise
            self.timed_connect = False
            c.connect()  # 1.3.4 (no timeout argument; raised before touching the network)
        c.sock = _Sock(c.sock, m["timeout_s"] * 1000, self)
        self.ping_rx = None
        c.publish(self.t_status, ONLINE, retain=True)
        if m["discovery"]:
            c.subscribe(self.t_ha_status)

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
                self.state = "connecting"
                try:
                    if self.addr is None:
                        await app.wait_quiet()
                        self.addr = self._resolve()
                    await self._probe(self.addr[0])
                    await app.wait_quiet()
                    self._connect(self.addr[1])
                except Exception as e:  # umqtt reports I/O and protocol failures with any exception type
                    self.connect_failures += 1
                    self.addr = None  # resolve again next time
                    self._drop("connect", e)
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
                self.acc_text = None  # a broker without persistence lost the retained one
                self.state = "connected"
                log("mqtt", "connected to %s:%d as %s" % (self.cfg["host"], self.cfg["port"], self.client_id))
            self.rounds += 1
            try:
                self._service()
            except Exception as e:  # a broken connection surfaces as OSError, IndexError, ...
                self.disconnects += 1
                self.publish_errors += 1
                self._drop("connection", e)
                self.state = "backoff"
                if time.ticks_diff(time.ticks_ms(), self.up_ms) > STABLE_MS:
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
        if app.accounting is not None:
            self._publish_accounting(app.accounting)
        if (self.discovery_due and self.cfg["discovery"] and app.latest.mask
                and time.ticks_diff(time.ticks_ms(), self.disc_ms) >= 0):
            self.discovery_due = False
            self._send_discovery()
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
        soon = hook.hour_due or self.acc_text is None
        if time.ticks_diff(now, self.acc_checked_ms) < (ACC_HOUR_GAP_MS if soon else self.acc_interval_ms):
            return
        self.acc_checked_ms = now
        hook.hour_due = False
        text = hook.json()
        if text is None or text == self.acc_text:
            return
        try:
            b = text.encode()
        except MemoryError:  # nothing sent: the next one is due in accounting_interval_s
            return
        self.client.publish(self.t_acc, b, retain=True)
        self.acc_text = text
        self.acc_published += 1

    def _send_discovery(self):
        # hanport.hass is loaded for this and unloaded after it (~10 KB of bytecode otherwise resident).
        # Out of heap while a message is built (none of it sent): the connection stays, the whole
        # discovery is tried again DISC_RETRY_MS later. Out of heap inside publish: the connection goes.
        sending = False
        try:
            from hanport import hass

            lt = self.app.latest
            dev = hass.device_block(self.node_id, self.device_name, self.app.version, lt.manufacturer,
                                    lt.meter_type, lt.meter_id)
            base = self.cfg["base_topic"]
            prefix = self.cfg["discovery_prefix"]
            pub = self.client.publish
            for f in hass.fields_in_mask(lt.mask):
                t = hass.config_topic(prefix, self.node_id, f).encode()
                b = hass.config_payload(f, self.node_id, base, dev, self.cfg["expire_after_s"]).encode()
                sending = True
                pub(t, b, retain=True)
                sending = False
                self.discovery_sent += 1
            if self.app.accounting is not None and hass.accounting_ready(lt.mask):
                for i in range(len(hass.ACCOUNTING_SENSORS)):
                    t = hass.accounting_config_topic(prefix, self.node_id, i).encode()
                    b = hass.accounting_config_payload(i, self.node_id, base, dev).encode()
                    sending = True
                    pub(t, b, retain=True)
                    sending = False
                    self.discovery_sent += 1
        except MemoryError:
            if sending:
                raise
            self.discovery_due = True  # (no allocation in here: the heap is short)
            self.disc_ms = time.ticks_add(time.ticks_ms(), DISC_RETRY_MS)
            self.last_error = "discovery: out of memory"
        finally:
            hass = t = b = None
            import mem

            try:
                mem.unload("hanport.hass")
            except MemoryError:  # it left sys.modules before failing; the rest goes next time
                pass

    def status(self):
        return {"enabled": self.enabled, "state": self.state, "host": self.cfg["host"], "port": self.cfg["port"],
                "tls": self.cfg["tls"], "client_id": self.client_id, "base_topic": self.cfg["base_topic"],
                "connects": self.connects, "connect_failures": self.connect_failures,
                "disconnects": self.disconnects, "published": self.published,
                "accounting_published": self.acc_published,
                "publish_errors": self.publish_errors, "superseded": self.app.superseded,
                "discovery_sent": self.discovery_sent, "ha_online_seen": self.ha_online_seen,
                "keepalive_s": self.cfg["keepalive_s"], "pings": self.pings, "pongs": self.pongs,
                "timed_connect": self.timed_connect,
                "backoff_ms": self.backoff_ms, "rounds": self.rounds, "last_error": self.last_error}
