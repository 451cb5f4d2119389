# Ring of the last raw frames the framer saw (valid, invalid, and skipped garbage) for bug reports:
# filled without allocating from the HDLC reader's tap calls, rendered in the capture text format.
from binascii import hexlify

from hanport import hdlc
from hanport.buffers import const

_CODE_SKIPPED = const(255)  # bytes dropped while hunting for a flag (garbage, wrong parity, noise)
CAPTURE_HEADER = "# hanport-capture v1"  # first line of the capture text format (docs/troubleshooting.md)


class RawLog:
    """The last `slots` frames, each up to `slot_bytes` bytes (longer ones are cut and marked)."""

    def __init__(self, slots=8, slot_bytes=640, clock_ms=None, buf=None):
        self.slots = slots
        self.slot_bytes = slot_bytes
        self.data = buf if buf is not None and len(buf) >= slots * slot_bytes else bytearray(slots * slot_bytes)
        self.length = [0] * slots  # bytes stored in each slot
        self.full_length = [0] * slots  # bytes the frame really had
        self.code = bytearray(slots)  # hdlc result code, or _CODE_SKIPPED
        self.time_ms = [0] * slots
        self.head = 0  # slot being written or next to write
        self.used = 0  # slots holding a record
        self.open_skip = False  # head slot is an unfinished run of skipped bytes
        self.clock_ms = clock_ms  # function returning milliseconds, or None (time 0)

    def _now(self):
        return self.clock_ms() if self.clock_ms is not None else 0

    def _next_slot(self):
        if self.open_skip:
            self.open_skip = False
            self.head = (self.head + 1) % self.slots
        s = self.head
        self.head = (s + 1) % self.slots
        if self.used < self.slots:
            self.used += 1
        return s

    def frame(self, buf, start, end, code):
        """A frame candidate buf[start:end] (format byte to closing flag exclusive) with its result."""
        s = self._next_slot()
        o = s * self.slot_bytes
        data = self.data
        room = self.slot_bytes - 2
        n = end - start
        if n > room:
            n = room
        data[o] = hdlc.FLAG
        for k in range(n):
            data[o + 1 + k] = buf[start + k]
        stored = n + 1
        if code == hdlc.OK:
            data[o + stored] = hdlc.FLAG
            stored += 1
        self.length[s] = stored
        self.full_length[s] = end - start + 2
        self.code[s] = code
        self.time_ms[s] = self._now()

    def skipped(self, b):
        """One byte dropped while hunting for a flag; consecutive ones share a slot."""
        if not self.open_skip:
            s = self.head
            self.length[s] = 0
            self.full_length[s] = 0
            self.code[s] = _CODE_SKIPPED
            self.time_ms[s] = self._now()
            if self.used < self.slots:
                self.used += 1
            self.open_skip = True
        s = self.head
        n = self.length[s]
        if n < self.slot_bytes:
            self.data[s * self.slot_bytes + n] = b
            self.length[s] = n + 1
        self.full_length[s] += 1

    def records(self):
        """[(time_ms, code_name, bytes, full_length)] oldest first (allocates)."""
        out = []
        last = self.head if self.open_skip else (self.head - 1) % self.slots
        first = (last - self.used + 1) % self.slots
        for k in range(self.used):
            s = (first + k) % self.slots
            o = s * self.slot_bytes
            c = self.code[s]
            name = "skipped" if c == _CODE_SKIPPED else hdlc.ERROR_NAMES[c]
            out.append((self.time_ms[s], name, bytes(self.data[o : o + self.length[s]]), self.full_length[s]))
        return out

    def capture_lines(self):
        """The ring in the capture text format, newline-terminated lines: the header, then
        '<seconds> <hex>  # <result>' per record, oldest first (allocates; sent piece by piece)."""
        lines = [CAPTURE_HEADER + " source=raw-ring\n"]
        for t, name, data, full in self.records():
            note = name if full <= len(data) else "%s, cut at %d of %d bytes" % (name, len(data), full)
            lines.append("%d.%03d %s  # %s\n" % (t // 1000, t % 1000, hexlify(data).decode(), note))
        return lines

    def capture_text(self):
        """capture_lines() as one text."""
        return "".join(self.capture_lines())
