# Host stand-in for the ESP32 `machine` module under the MicroPython unix port (put on MICROPYPATH).
# UART bytes come from HAN_UART: "tcp:HOST:PORT" (a simulator's socket) or "file:PATH" (a capture).
import io
import os
import socket
import sys
import time

RESET_EXIT_CODE = 75  # machine.reset() ends the process with this code; tools/run_host.py restarts it

_MP_STREAM_POLL = 3
_MP_STREAM_GET_FILENO = 10
_POLL_RD = 0x0001


def _log(msg):
    print("[hostshim] " + msg)


def reset():
    _log("machine.reset()")
    sys.exit(RESET_EXIT_CODE)


def unique_id():
    uid = os.getenv("HAN_SHIM_UID") or "240ac4a1b2c3"
    out = bytearray(len(uid) // 2)
    for i in range(len(out)):
        out[i] = int(uid[2 * i : 2 * i + 2], 16)
    return bytes(out)


class Pin:
    IN = 1
    OUT = 3

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        self.id = pin_id
        self._v = value or 0

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0



class WDT:
    """Records feeds; a gap longer than the timeout is reported as the reset a device would do."""

    instance = None

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.last = time.ticks_ms()
        self.feeds = 0
        self.missed = 0
        WDT.instance = self

    def feed(self):
        now = time.ticks_ms()
        gap = time.ticks_diff(now, self.last)
        if gap > self.timeout:
            self.missed += 1
            _log("WDT: %d ms without a feed (timeout %d ms): a device would have reset" % (gap, self.timeout))
        self.last = now
        self.feeds += 1


class UART(io.IOBase):
    """ESP32 UART API subset over a host byte source (see the module header).

    tcp: connects to the simulator and reconnects after it goes away (like a cable put back).
    file: plays the file at the line rate (HAN_UART_SPEED multiplies it; 0 = as fast as read), then
    stays silent. A parity other than HAN_LINE_PARITY (the simulated meter's) garbles the bytes,
    the way a real UART does, so parity auto-detection can be exercised.
    """

    INV_RX = 1 << 1

    def __init__(self, uart_id, baudrate=9600, bits=8, parity=None, stop=1, **kw):
        self.id = uart_id
        self._sock = None
        self._file = None
        self._data = None
        self.init(baudrate, bits, parity, stop, **kw)

    def init(self, baudrate=9600, bits=8, parity=None, stop=1, rx=None, tx=None, rxbuf=256, timeout=0,
             invert=0, **kw):
        self.baudrate = baudrate
        self.parity = parity
        self.rxbuf = rxbuf
        self.invert = invert
        line = os.getenv("HAN_LINE_PARITY") or ""
        mine = "N" if parity is None else ("E" if parity == 0 else "O")
        self._garble = bool(line) and line != mine
        src = os.getenv("HAN_UART") or ""
        self._next_try = 0
        self._closed = False
        if src.startswith("tcp:"):
            host, port = src[4:].rsplit(":", 1)
            self._addr = socket.getaddrinfo(host, int(port))[0][-1]
            self._connect()
        elif src.startswith("file:"):
            if self._data is None:
                with open(src[5:], "rb") as f:
                    self._data = f.read()
                self._pos = 0
                self._t0 = time.ticks_ms()
            speed = os.getenv("HAN_UART_SPEED")
            self._rate = (baudrate // 10) * (float(speed) if speed else 1.0)  # bytes per second
        else:
            _log("HAN_UART not set (tcp:HOST:PORT or file:PATH): the UART stays silent")
        _log("UART%d %d baud parity %s%s from %s" % (self.id, baudrate, mine, " inverted" if invert else "",
                                                    src or "nothing"))

    # --- sources ---
    def _connect(self):
        self._next_try = time.ticks_add(time.ticks_ms(), 500)
        s = socket.socket()
        try:
            s.connect(self._addr)
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self._sock = s

    def _drop(self):
        if self._sock:
            self._sock.close()
            self._sock = None
            _log("UART source closed; reconnecting")

    def _file_avail(self):
        if self._rate <= 0:
            return len(self._data) - self._pos
        due = int(time.ticks_diff(time.ticks_ms(), self._t0) * self._rate / 1000)
        return min(due, len(self._data)) - self._pos

    # --- ESP32 API ---
    def any(self):
        if self._data is not None:
            return max(0, self._file_avail())
        return 1 if self._sock else 0

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if self._closed:
            return None
        if self._data is not None:
            k = min(n, self._file_avail())
            if k <= 0:
                return None
            for i in range(k):
                buf[i] = self._data[self._pos + i]
            self._pos += k
            got = k
        else:
            if self._sock is None:
                if time.ticks_diff(time.ticks_ms(), self._next_try) >= 0:
                    self._connect()
                return None
            try:
                got = self._sock.readinto(buf, n)
            except OSError:
                self._drop()
                return None
            if got is None:
                return None
            if got == 0:
                self._drop()
                return None
        if self._garble:
            for i in range(got):
                buf[i] = ((buf[i] << 1) | (buf[i] >> 7)) & 0xFF ^ 0x55
        return got

    def deinit(self):
        self._closed = True
        if self._sock:
            self._sock.close()
            self._sock = None

    def ioctl(self, req, arg):
        """Stream protocol for select.poll / asyncio: the socket's fd when there is one; else poll."""
        if req == _MP_STREAM_GET_FILENO:
            return self._sock.fileno() if self._sock is not None else -1
        if req == _MP_STREAM_POLL:
            if self._closed:
                return 0
            if self._data is not None:
                return arg & _POLL_RD if self._file_avail() > 0 else 0
            if self._sock is None and time.ticks_diff(time.ticks_ms(), self._next_try) >= 0:
                return arg & _POLL_RD  # wake the reader so readinto() reconnects
            return 0
        return -1
