# A DNS look-up (IPv4 address records, RFC 1035 §4) over UDP that never holds the event loop:
# MicroPython's getaddrinfo blocks for as long as the resolver takes. Loaded by net.resolve for a name.
import asyncio
import select
import socket
import struct
import time

from micropython import const

_POLL_MS = const(20)  # the socket is looked at this often while no answer has come
_RETRY_MS = const(1000)  # the query is sent again after this long without an answer (UDP may lose it)
_TYPE_A = const(1)  # RFC 1035 §3.2.2
_CLASS_IN = const(1)  # RFC 1035 §3.2.4
_ANSWER_BYTES = const(512)  # RFC 1035 §2.3.4: UDP messages carry at most 512 bytes


def query(name, qid):
    """The query message for name's A records: header (id, recursion desired, one question), QNAME
    as labels, QTYPE A, QCLASS IN."""
    q = bytearray(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0))
    for label in name.rstrip(".").split("."):
        b = label.encode()
        if not 0 < len(b) < 64:
            raise OSError(22)  # EINVAL: not a host name
        q.append(len(b))
        q.extend(b)
    q.extend(b"\x00")
    q.extend(struct.pack(">HH", _TYPE_A, _CLASS_IN))
    return q


def _skip_name(msg, i):
    """Index after the domain name at i (labels, or a compression pointer that ends it)."""
    n = len(msg)
    while i < n:
        ln = msg[i]
        if ln == 0:
            return i + 1
        if ln & 0xC0 == 0xC0:
            return i + 2
        i += 1 + ln
    raise OSError(74)  # EBADMSG


def answer(msg, qid):
    """The first IPv4 address in a reply to query qid as text; None when it is not that reply;
    OSError when the server says the name does not exist or gives no address."""
    if len(msg) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack_from(">HHHHHH", msg, 0)
    if rid != qid or not flags & 0x8000:
        return None  # not the answer to this query
    if flags & 0x000F:
        raise OSError(2)  # ENOENT: NXDOMAIN (3) or another error code of the server
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    for _ in range(an):
        i = _skip_name(msg, i)
        if i + 10 > len(msg):
            break
        rtype, rclass, _, rdlen = struct.unpack_from(">HHIH", msg, i)
        i += 10
        if rtype == _TYPE_A and rclass == _CLASS_IN and rdlen == 4 and i + 4 <= len(msg):
            return "%d.%d.%d.%d" % (msg[i], msg[i + 1], msg[i + 2], msg[i + 3])
        i += rdlen
    raise OSError(2)  # no address for the name


async def lookup(name, server, timeout_ms):
    """IPv4 address text of name, asked of the DNS server (socket address) within timeout_ms; the
    event loop runs on meanwhile. Raises OSError (ETIMEDOUT when no answer came)."""
    qid = time.ticks_ms() & 0xFFFF
    q = query(name, qid)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        p = select.poll()
        p.register(s, select.POLLIN)
        t0 = time.ticks_ms()
        sent = None
        while True:
            now = time.ticks_ms()
            if time.ticks_diff(now, t0) >= timeout_ms:
                raise OSError(110)  # ETIMEDOUT
            if sent is None or time.ticks_diff(now, sent) >= _RETRY_MS:
                s.sendto(q, server)
                sent = now
            ready = False
            for _ in p.ipoll(0):
                ready = True
            if ready:
                try:
                    ip = answer(s.recv(_ANSWER_BYTES), qid)
                except OSError as e:
                    if e.args and e.args[0] in (11, 35, 115):  # EAGAIN: nothing after all
                        ip = None
                    else:
                        raise
                if ip is not None:
                    return ip
            else:
                await asyncio.sleep_ms(_POLL_MS)
    finally:
        s.close()
