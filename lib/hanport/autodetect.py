# One reader for every HAN/P1 format: HDLC frames (IEC 62056-46), M-Bus long frames (EN 13757-2), DSMR/P1
# telegrams (DSMR 5.0.2 P1).
# Until a valid message shows the protocol, every parser sees the bytes; then only the one that won.
from hanport import gcm, mbus
from hanport import reading as R
from hanport.p1 import P1Reader
from hanport.reader import HanReader

HDLC = "hdlc"
MBUS = "mbus"
P1 = "p1"
PROTOCOLS = (HDLC, MBUS, P1)  # told apart by themselves: each message carries its own check (FCS, checksum, CRC)
# Bare general-glo-ciphering APDUs (the Sagemcom T210-D: glo.py), only when asked for: framed by their length
# alone, the same framer would also frame the ciphered APDU inside an HDLC frame and win the race under the
# wrong name (docs/protocols.md)
GLO = "glo"
RELOCK_BYTES = 32768  # bytes without a valid message after which detection starts over


class AutoReader:
    """Feed chunks of any size; get Readings whatever the protocol.

        reader = AutoReader(key="...", auth_key="...")   # protocol=None: detect; or "hdlc", "mbus", "p1", "glo"
        i = 0
        while i < n:
            i = reader.push(buf, i, n)
            if reader.has_reading: use(reader.reading)

    key / auth_key (32 hex digits, or 16 bytes) decrypt and authenticate ciphered DLMS APDUs in
    HDLC and M-Bus frames, and the T210-D's ciphered telegrams ("glo"); they are never shown by repr() or
    counters()."""

    def __init__(self, protocol=None, key=None, auth_key=None, capacity=2048, require_crc=False,
                 relock_bytes=RELOCK_BYTES):
        if protocol is not None and protocol not in PROTOCOLS and protocol != GLO:
            raise ValueError("protocol must be one of hdlc, mbus, p1, glo or None")
        self._key = gcm.parse_key(key)  # kept to rebuild the parsers after a relock
        self._auth_key = gcm.parse_key(auth_key)
        self.fixed = protocol
        self.capacity = capacity
        self.require_crc = require_crc
        self.relock_bytes = relock_bytes
        self.protocol = protocol  # the protocol in use, None while detecting
        self.reading = None
        self.has_reading = False
        self.readings = 0
        self.relocks = 0
        self.stale = 0  # bytes since the last valid message
        self._names = ()
        self._readers = ()
        self._start()

    def __repr__(self):
        return "<AutoReader protocol=%s key=%s auth_key=%s>" % (
            self.protocol, "set" if self._key else "none", "set" if self._auth_key else "none")

    def _new(self, name):
        if name == P1:
            return P1Reader(require_crc=self.require_crc)
        framer = mbus.MbusReader(self.capacity) if name == MBUS else None
        if name == GLO:
            from hanport.glo import GloReader

            framer = GloReader(self.capacity)
        return HanReader(self.capacity, self._key, self._auth_key, framer)

    def _start(self):
        names = (self.fixed,) if self.fixed else PROTOCOLS
        self._names = names
        self._readers = tuple(self._new(n) for n in names)
        self.protocol = self.fixed
        self.stale = 0

    @property
    def readers(self):
        """{protocol name: its reader} for the parsers alive now."""
        d = {}
        for k in range(len(self._names)):
            d[self._names[k]] = self._readers[k]
        return d

    @property
    def last_error(self):
        for r in self._readers:
            if r.last_error:
                return r.last_error
        return None

    def push(self, data, pos=0, end=-1):
        """Consume data[pos:end] up to the end of the next message; returns the next index."""
        if end < 0:
            end = len(data)
        self.has_reading = False
        readers = self._readers
        if len(readers) == 1:
            r = readers[0]
            q = r.push(data, pos, end)
            if r.has_reading:
                return self._got(r, q, pos)
            self.stale += q - pos
            if not self.fixed and self.stale > self.relock_bytes:
                self.relocks += 1
                self._start()  # the line changed (another meter, other settings): detect again
            return q
        # detecting: every parser reads the bytes; the first one with a checked frame (FCS, checksum
        # or CRC) wins, even if the frame gives no reading (ciphered without a key, foreign APDU)
        for k in range(len(readers)):
            r = readers[k]
            q = pos
            while q < end:
                q = r.push(data, q, end)
                if r.has_reading or (self._names[k] != P1 and r.framer.counts[0]):
                    self._lock(k)
                    if r.has_reading:
                        return self._got(r, q, pos)
                    self.stale += q - pos
                    return q
        self.stale += end - pos
        return end

    def _lock(self, k):
        self.protocol = self._names[k]
        self._names = (self._names[k],)
        self._readers = (self._readers[k],)

    def _got(self, r, q, pos):
        self.stale = 0
        self.reading = r.reading
        self.has_reading = True
        self.readings += 1
        return q

    def flush(self):
        """End of input (files): completes a P1 telegram cut off after its "!"."""
        self.has_reading = False
        for k in range(len(self._readers)):
            r = self._readers[k]
            if self._names[k] == P1 and r.flush():
                self._lock(k)
                self._got(r, 0, 0)
                return True
        return False

    def feed(self, data):
        """Generator over the Readings completed by this chunk (allocates a generator)."""
        return R.readings_from(self, data)

    def counters(self):
        """Counters of the parsers alive now, prefixed by protocol ("hdlc_frames_ok", ...), plus
        readings and relocks (allocates)."""
        d = {"readings": self.readings, "relocks": self.relocks, "stale_bytes": self.stale}
        for k in range(len(self._readers)):
            prefix = self._names[k] + "_"
            for name, v in self._readers[k].counters().items():
                d[prefix + name] = v
        return d


def decode_bytes(data, key=None, auth_key=None, protocol=None):
    """Canonical dicts of every message in data (HDLC, M-Bus or P1, detected); allocates."""
    r = AutoReader(protocol, key, auth_key)
    out = [rd.as_dict() for rd in r.feed(data)]
    if r.flush():
        out.append(r.reading.as_dict())
    return out
