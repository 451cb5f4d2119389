# What happens once per MQTT connection attempt, loaded by mqtt.py for it and unloaded after (the Home
# Assistant discovery messages are discovery.py's). Connecting:
# - the broker's name is resolved once by mqtt.py (cached in Mqtt.addr; again only after a failure) and
#   umqtt gets the numeric address, so its own getaddrinfo never waits on DNS;
# - an asynchronous probe (non-blocking socket, asyncio sleeps) first checks that the broker accepts
#   TCP and answers an MQTT CONNECT (over TLS too, unless umqtt bounds its own TLS handshake): a broker
#   that is down, unreachable or silent never blocks the event loop;
# - connect(clean_session, timeout) where umqtt accepts a timeout (1.8.0); 1.3.4 connects without one,
#   right after the probe heard the broker answer; then client.sock is wrapped (mqtt.BoundedSock).
import asyncio
import select
import socket
import sys
import time
from errno import EINPROGRESS

from micropython import const
from mqtt import ETIMEDOUT, OFFLINE, ONLINE, POLL_BAD, POLL_IN, POLL_OUT, BoundedSock
from umqtt.simple import MQTTClient

# MQTT 3.1.1 CONNECT: clean session, keepalive 10 s, empty client id. Any answer (even a refusal) shows
# a broker that talks; the probe then sends DISCONNECT.
_PROBE = const(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0a\x00\x00")


async def probe(mq):
    """Step 1 of a connection attempt to mq.addr (resolved by mqtt.py): the broker answers, or this
    raises what failed (the caller backs off)."""
    await _probe(mq, mq.addr[0])


def connect(mq):
    """Step 2, after the probe and the UART's quiet gap (mqtt.py waits for both without this module in
    the heap): the blocking connect. Raises what failed."""
    _connect(mq, mq.addr[1])


async def _probe(mq, sa):
    t_ms = mq.cfg["timeout_s"] * 1000
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
        p.register(s, POLL_OUT)
        if await _poll(p, t0, t_ms) & POLL_BAD:
            raise OSError("refused")
        if mq.cfg["tls"]:
            if mq.timed_connect:
                return  # umqtt bounds its own TLS handshake (1.8.0): TCP is enough here
            import ssl  # 1.3.4 (or not known yet): the handshake too, asynchronously

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_mode = ssl.CERT_NONE  # as umqtt's ssl.wrap_socket(sock, server_hostname=...)
            s = ctx.wrap_socket(s, server_hostname=mq.cfg["host"], do_handshake_on_connect=False)
            p = select.poll()
            p.register(s, POLL_OUT)
        while not s.write(_PROBE):  # None while the TLS handshake is under way
            await _poll(p, t0, t_ms)
        p.modify(s, POLL_IN)
        while True:
            await _poll(p, t0, t_ms)
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


async def _poll(p, t0, t_ms):
    # the events of the one registered socket once there are any; always yields to other tasks
    while True:
        if time.ticks_diff(time.ticks_ms(), t0) > t_ms:
            raise OSError(ETIMEDOUT)
        r = p.poll(0)
        await asyncio.sleep_ms(0 if r else 20)
        if r:
            return r[0][1]


def _connect(mq, ip):
    m = mq.cfg
    if m["tls"] and "ussl" not in sys.modules:
        try:
            import ussl  # noqa: F401
        except ImportError:  # umqtt.simple 1.3.4 imports `ussl`; MicroPython >= 1.21 calls it ssl
            import ssl

            sys.modules["ussl"] = ssl
    user = m["user"].encode() if m["user"] else None  # bytes: umqtt sends len() as the length
    c = MQTTClient(mq.client_id.encode(), ip, m["port"], user=user,
                   password=(m["password"].encode() if user else None), keepalive=m["keepalive_s"],
                   ssl=m["tls"], ssl_params={"server_hostname": m["host"]})
    c.set_callback(mq._on_message)
    c.set_last_will(mq.t_status, OFFLINE, retain=True)
    mq.client = c  # a failure below closes c.sock in _drop
    try:
        c.connect(True, m["timeout_s"])  # 1.8.0: socket timeout from the first byte
        mq.timed_connect = True
    except TypeError:
        if c.sock is not None:
            raise
        mq.timed_connect = False
        c.connect()  # 1.3.4 (no timeout argument; raised before touching the network)
    c.sock = BoundedSock(c.sock, m["timeout_s"] * 1000, mq)
    mq.ping_rx = None
    c.publish(mq.t_status, ONLINE, retain=True)
    if m["discovery"]:
        c.subscribe(mq.t_ha_status)
