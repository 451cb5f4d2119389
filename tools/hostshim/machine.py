# Host stand-in for the ESP32 `machine` module under the MicroPython unix port (put on MICROPYPATH).
# UART bytes come from HAN_UART: "tcp:HOST:PORT" (a simulator's socket) or "file:PATH" (a capture).
# Kept small: on a board this module is C and costs no heap, here it is bytecode in the measured heap.
import io
import os
import socket
import sys
import time

RESET_EXIT_CODE = 75  # machine.reset() ends the process with this code; tools/run_host.py restarts it
_POLL = 3  # MP_STREAM_POLL
_FILENO = 10  # MP_STREAM_GET_FILENO
_RD = 1  # POLL_RD


def reset():
    print("[hostshim] machine.reset()")
    sys.exit(RESET_EXIT_CODE)


POWER_CUT_EXIT_CODE = 76  # flash_step_hook(n) with n == HAN_POWER_CUT_STEP: the power is cut there (a test)


def flash_step_hook(n):
    """Firmware's flash step n is done (ota.py): with HAN_POWER_CUT_STEP=n the process ends at once, as
    a board whose power is cut there (a board's machine has no flash_step_hook)."""
    if os.getenv("HAN_POWER_CUT_STEP") == str(n):
        print("[hostshim] power cut after flash step %d" % n)
        sys.exit(POWER_CUT_EXIT_CODE)


def unique_id():
    return bytes.fromhex(os.getenv("HAN_SHIM_UID") or "240ac4a1b2c3")


class Pin:
    OUT = 3

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        self.v = value or 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = 1 if v else 0


class WDT:
    """Reports a gap between feeds longer than the timeout: the reset a device would do."""

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.last = time.ticks_ms()

    def feed(self):
        now = time.ticks_ms()
        gap = time.ticks_diff(now, self.last)
        if gap > self.timeout:
            print("[hostshim] WDT: %d ms without a feed (timeout %d ms): a device would have reset" % (
                gap, self.timeout))
        self.last = now


class UART(io.IOBase):
    """ESP32 UART subset over a host byte source. tcp: reconnects after the simulator goes away (a
    cable put back). file: played at the line rate (HAN_UART_SPEED multiplies it, 0 = at once), then
    silent; bytes not read before more than rxbuf of them are due are lost, as a board's driver loses
    them (printed). A parity other than HAN_LINE_PARITY (the meter's) garbles the bytes, as a real UART does."""

    INV_RX = 2

    def __init__(self, uart_id, baudrate=9600, bits=8, parity=None, stop=1, rx=None, rxbuf=256, timeout=0,
                 invert=0, **kw):
        line = os.getenv("HAN_LINE_PARITY") or ""
        mine = "N" if parity is None else ("E" if parity == 0 else "O")
        self.garble = bool(line) and line != mine
        src = os.getenv("HAN_UART") or ""
        self.sock = None
        self.file = None
        self.closed = False
        self.rxbuf = rxbuf  # file: bytes due beyond this many, unread, are lost as on a board (counted)
        self.lost = 0
        self.next_try = 0
        if src.startswith("tcp:"):
            host, port = src[4:].rsplit(":", 1)
            self.addr = socket.getaddrinfo(host, int(port))[0][-1]
            self._connect()
        elif src.startswith("file:"):
            self.file = open(src[5:], "rb")
            self.size = self.file.seek(0, 2)
            self.file.seek(0)
            self.pos = 0
            self.t0 = time.ticks_ms()
            speed = os.getenv("HAN_UART_SPEED")
            self.rate = (baudrate // 10) * (float(speed) if speed else 1.0)  # bytes per second
        print("[hostshim] UART%d %d baud parity %s%s from %s" % (uart_id, baudrate, mine,
                                                              " inverted" if invert else "", src or "nothing"))

    def _connect(self):
        self.next_try = time.ticks_add(time.ticks_ms(), 500)
        s = socket.socket()
        try:
            s.connect(self.addr)
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self.sock = s

    def _due(self):
        if self.rate <= 0:
            return self.size - self.pos
        return min(int(time.ticks_diff(time.ticks_ms(), self.t0) * self.rate / 1000), self.size) - self.pos

    def _retry(self):
        return self.sock is None and time.ticks_diff(time.ticks_ms(), self.next_try) >= 0

    def any(self):
        if self.file is not None:
            return max(0, self._due())
        return 1 if self.sock else 0

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if self.closed:
            return None
        if self.file is not None:
            due = self._due()
            if self.rate > 0 and due > self.rxbuf:  # the driver's buffer ran full while nobody read: bytes lost
                over = due - self.rxbuf
                self.file.seek(over, 1)
                self.pos += over
                self.lost += over
                print("[hostshim] UART rx buffer overflow: %d bytes lost (%d in all)" % (over, self.lost))
                due = self.rxbuf
            n = min(n, due)
            if n <= 0:
                return None
            got = self.file.readinto(memoryview(buf)[:n])
            self.pos += got
        elif self.sock is None:
            if self._retry():
                self._connect()
            return None
        else:
            try:
                got = self.sock.readinto(buf, n)
            except OSError:
                got = 0
            if got is None:
                return None
            if not got:
                self.sock.close()
                self.sock = None
                print("[hostshim] UART source closed; reconnecting")
                return None
        if self.garble:
            for i in range(got):
                buf[i] = ((buf[i] << 1) | (buf[i] >> 7)) & 0xFF ^ 0x55
        return got

    def deinit(self):
        self.closed = True
        if self.sock:
            self.sock.close()
            self.sock = None

    def ioctl(self, req, arg):
        """Stream protocol for select.poll / asyncio: the socket's fd when there is one; else poll."""
        if req == _FILENO:
            return self.sock.fileno() if self.sock is not None else -1
        if req == _POLL:
            if self.closed:
                return 0
            if self.file is not None:
                return arg & _RD if self._due() > 0 else 0
            return arg & _RD if self._retry() else 0  # wake the reader so readinto() reconnects
        return -1
