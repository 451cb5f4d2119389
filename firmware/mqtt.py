# MQTT publisher on umqtt.simple: state per reading, accounting (rate-limited), Home Assistant discovery,
# online/offline will; blocking calls are bounded by socket timeouts and run in the meter's idle gap.
import asyncio
import random
import socket
import sys
import time

from log import log

from hanport import hass

_getaddrinfo = socket.getaddrinfo
ACC_HOUR_GAP_MS = 1000  # after an hourly list the accounting message goes out this soon (at the earliest)


class _TlsCompat:
    """umqtt.simple 1.3.4 calls ussl.wrap_socket(sock, **params); MicroPython >= 1.21 has `ssl`."""

    @staticmethod
    def wrap_socket(sock, **params):
        import ssl

        inner = sock.raw if isinstance(sock, TimedSocket) else sock
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED if params.get("cadata") else ssl.CERT_NONE
        if params.get("cadata"):
            ctx.load_verify_locations(cadata=params["cadata"])
        wrapped = ctx.wrap_socket(inner, server_hostname=params.get("server_hostname"))
        if isinstance(sock, TimedSocket):
            sock.s = wrapped
            return sock
        return wrapped


sys.modules["ussl"] = _TlsCompat  # before umqtt imports it (also shadows an old built-in ussl)

from umqtt import simple as umqtt  # noqa: E402  (needs the ussl entry above)


class TimedSocket:
    """The socket umqtt.simple gets: every blocking call bounded by a timeout. umqtt's
    check_msg()/wait_msg() switch to blocking mode, which here means "blocking with the timeout"."""

    timeout_s = 2

    def __init__(self, *args):
        self.raw = socket.socket(*args)
        self.raw.settimeout(TimedSocket.timeout_s)
        self.s = self.raw
        self.rx_ms = time.ticks_ms()

    def connect(self, addr):
        self.raw.connect(addr)

    def read(self, n):
        b = self.s.read(n)
        if b:
            self.rx_ms = time.ticks_ms()
        return b

    def write(self, buf, n=None):
        return self.s.write(buf) if n is None else self.s.write(buf, n)

    def setblocking(self, flag):
        if flag:
            self.raw.settimeout(TimedSocket.timeout_s)
        else:
            self.raw.setblocking(False)

    def close(self):
        self.s.close()


class _SocketModule:
    """Stands in for `usocket` inside umqtt.simple, so its connect() makes a TimedSocket."""

    socket = TimedSocket
    getaddrinfo = _getaddrinfo


umqtt.socket = _SocketModule


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
        self.t_acc = (base + "/" + hass.ACCOUNTING_TOPIC).encode()
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
        self._last_tx_ms = time.ticks_ms()
        TimedSocket.timeout_s = m["timeout_s"]

    # --- connection ---
    def _connect(self):
        m = self.cfg
        user = m["user"].encode() if m["user"] else None  # bytes: umqtt sends len() as the length
        c = umqtt.MQTTClient(self.client_id.encode(), m["host"], m["port"], user=user,
                             password=(m["password"].encode() if user else None), keepalive=m["keepalive_s"],
                             ssl=m["tls"], ssl_params={"server_hostname": m["host"]})
        c.set_callback(self._on_message)
        c.set_last_will(self.t_status, hass.PAYLOAD_OFFLINE.encode(), retain=True)
        c.connect()
        self.client = c
        c.publish(self.t_status, hass.PAYLOAD_ONLINE.encode(), retain=True)
        if m["discovery"]:
            c.subscribe(self.t_ha_status)
        self._last_tx_ms = time.ticks_ms()

    def _drop(self, why, exc):
        self.last_error = "%s: %r" % (why, exc)
        c = self.client
        self.client = None
        if c is not None and c.sock is not None:
            try:
                c.sock.close()
            except OSError:
                pass

    def _on_message(self, topic, msg):
        if topic == self.t_ha_status and msg == hass.PAYLOAD_ONLINE.encode():
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
                await app.wait_quiet()
                try:
                    self._connect()
                except Exception as e:  # umqtt reports I/O and protocol failures with any exception type
                    self.connect_failures += 1
                    self._drop("connect", e)
                    self.state = "backoff"
                    self.backoff_ms = backoff_ms
                    log("mqtt", "connect to %s:%d failed: %s; retry in %d ms" % (
                        self.cfg["host"], self.cfg["port"], self.last_error, backoff_ms))
                    await asyncio.sleep_ms(backoff_ms + random.getrandbits(8) * backoff_ms // 1024)
                    backoff_ms = min(backoff_ms * 2, self.cfg["backoff_max_s"] * 1000)
                    continue
                backoff_ms = 1000
                self.backoff_ms = 0
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
                log("mqtt", "connection lost: %s" % self.last_error)
                continue
            await app.mqtt_event.wait()
            app.mqtt_event.clear()

    def _service(self):
        """One round while connected: pending state, discovery, incoming messages, keepalive."""
        app = self.app
        c = self.client
        if app.unpublished and app.state_text is not None:
            c.publish(self.t_state, app.state_text.encode())
            app.unpublished = False  # only once sent: a failed publish is retried after reconnecting
            self.published += 1
            self._last_tx_ms = time.ticks_ms()
        if app.accounting is not None:
            self._publish_accounting(app.accounting)
        if self.discovery_due and self.cfg["discovery"] and app.latest.mask:
            self.discovery_due = False
            self._send_discovery()
        for _ in range(8):
            if c.check_msg() is None:  # non-blocking; handles PINGRESP and homeassistant/status
                break
        ka_ms = self.cfg["keepalive_s"] * 1000
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last_tx_ms) > ka_ms // 2:
            c.ping()
            self._last_tx_ms = now
        if time.ticks_diff(now, c.sock.rx_ms) > ka_ms + ka_ms // 2:
            raise OSError(110)  # nothing from the broker (not even PINGRESP) for 1.5 keepalives

    def _publish_accounting(self, hook):
        """<base>/accounting (retained) when it changed: at most every accounting_interval_s, within
        ~1 s after an hourly list or a (re)connect. Rendered only when due, so only the latest is ever
        sent; one small write like the state message."""
        now = time.ticks_ms()
        soon = hook.hour_due or self.acc_text is None
        if time.ticks_diff(now, self.acc_checked_ms) < (ACC_HOUR_GAP_MS if soon else self.acc_interval_ms):
            return
        self.acc_checked_ms = now
        hook.hour_due = False
        text = hook.json()
        if text is None or text == self.acc_text:
            return
        self.client.publish(self.t_acc, text.encode(), retain=True)
        self.acc_text = text
        self.acc_published += 1
        self._last_tx_ms = now

    def _send_discovery(self):
        lt = self.app.latest
        dev = hass.device_block(self.node_id, self.device_name, self.app.version, lt.manufacturer,
                                lt.meter_type, lt.meter_id)
        base = self.cfg["base_topic"]
        prefix = self.cfg["discovery_prefix"]
        for f in hass.fields_in_mask(lt.mask):
            topic = hass.config_topic(prefix, self.node_id, f)
            payload = hass.config_payload(f, self.node_id, base, dev, self.cfg["expire_after_s"])
            self.client.publish(topic.encode(), payload.encode(), retain=True)
            self.discovery_sent += 1
        if self.app.accounting is not None and hass.accounting_ready(lt.mask):
            for i in range(len(hass.ACCOUNTING_SENSORS)):
                topic = hass.accounting_config_topic(prefix, self.node_id, i)
                payload = hass.accounting_config_payload(i, self.node_id, base, dev)
                self.client.publish(topic.encode(), payload.encode(), retain=True)
                self.discovery_sent += 1
        self._last_tx_ms = time.ticks_ms()

    def status(self):
        return {"enabled": self.enabled, "state": self.state, "host": self.cfg["host"], "port": self.cfg["port"],
                "tls": self.cfg["tls"], "client_id": self.client_id, "base_topic": self.cfg["base_topic"],
                "connects": self.connects, "connect_failures": self.connect_failures,
                "disconnects": self.disconnects, "published": self.published,
                "accounting_published": self.acc_published,
                "publish_errors": self.publish_errors, "superseded": self.app.superseded,
                "discovery_sent": self.discovery_sent, "ha_online_seen": self.ha_online_seen,
                "backoff_ms": self.backoff_ms, "rounds": self.rounds, "last_error": self.last_error}
