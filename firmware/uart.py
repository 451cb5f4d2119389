# UART reader task: HAN bytes from machine.UART (2400 baud, 8E1/8N1, optional RX inversion) read
# into one preallocated buffer and pushed into the HanReader as they arrive; line auto-detection.
import asyncio
import time

import mem
from log import log
from machine import UART
from micropython import const


def frame_counts(reader):
    """[messages with valid checks, check errors...] of the reader's framing layer: the HDLC or
    M-Bus framer of a HanReader, or a P1Reader's own telegram counters."""
    framer = getattr(reader, "framer", None)
    return framer.counts if framer is not None else reader.counts


CHUNK_BYTES = 256  # one readinto; the UART driver's rxbuf (config uart.rxbuf) holds the rest
_RX_POLL_MS = const(20)  # the driver's buffer is looked at this often while the line is quiet: at 2400 baud
# 5 bytes come meanwhile, at 115200 (P1) 230, well within uart.rxbuf (no asyncio.StreamReader: its module,
# asyncio.stream, would take ~1 KB of heap for good)


class UartTask:
    def __init__(self, app, ucfg):
        import startup  # (the state is set up there: boot-time code, so its bytecode leaves the heap after boot)

        startup.uart_state(self, app, ucfg)

    def open(self):
        if self.uart is not None:
            self.uart.deinit()
        c = self.cfg
        kw = {"baudrate": c["baud"], "bits": 8, "parity": 0 if self.parity == "E" else None, "stop": 1,
              "rx": c["rx_pin"], "rxbuf": self.rxbuf, "timeout": 0}
        if self.invert:
            kw["invert"] = UART.INV_RX
        self.uart = UART(c["id"], **kw)
        log("uart", "UART%d rx pin %d, %d baud 8%s1%s%s" % (
            c["id"], c["rx_pin"], c["baud"], self.parity, ", RX inverted" if self.invert else "",
            "" if self.auto_locked else " (auto-detecting)"))

    async def run(self):
        self.open()
        app = self.app
        reader = app.reader
        counts = frame_counts(reader)
        buf = self.buf
        auto = self.auto
        while True:
            n = self.uart.readinto(buf)  # (timeout 0: what the driver holds now, None when nothing)
            if not n:
                await asyncio.sleep_ms(_RX_POLL_MS)
                continue
            self.reads += 1
            self.bytes += n
            self.last_rx_ms = time.ticks_ms()
            i = 0
            while i < n:
                i = reader.push(buf, i, n)
                if reader.has_reading:
                    rd = reader.reading
                    if rd.list_number == 3 and app.accounting is not None and app.turn.locked():
                        await app.turn.acquire()  # the hourly list loads the accounting's hour modules
                        try:  # (~7 KB): never beside a large answer's; meanwhile bytes wait in the
                            app.on_reading(rd)  # UART driver's buffer (8.5 s of a 2400-baud line)
                        finally:
                            app.turn.release()
                    else:
                        app.on_reading(rd)
            if auto is not None:
                if auto.update(time.ticks_ms(), counts[0]):
                    self.auto_switches = auto.switches
                    self.parity, self.invert = auto.setting()
                    log("uart", "no good frame yet: trying %s" % auto.describe())
                    self.open()
                elif auto.locked:  # found: the detector leaves the heap
                    self.auto_locked = True
                    self.auto = auto = None
                    mem.unload("hanport.serial_detect")
            # more waits in the driver after a full chunk: the other tasks run first, then it is read at once
            await asyncio.sleep_ms(0 if n == len(buf) else _RX_POLL_MS)

    def tick(self, now_ms):
        """Once a second (app ticker): line diagnosis, also when no byte arrives at all."""
        c = frame_counts(self.app.reader)
        self.monitor.update(now_ms, self.bytes, c[0], c[1] + c[2], self.app.reader.readings)
