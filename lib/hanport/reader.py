# The streaming HAN reader: bytes in (any chunk size), Readings out. Glues framing (hdlc),
# APDU decoding (dlms) and meter mapping (meters) over one buffer, and keeps their counters.
from hanport import dlms, hdlc, meters
from hanport import reading as R
from hanport.buffers import const

# APDU tags that need the envelope layer (envelope.py): general-block-transfer, general-glo- and
# general-ded-ciphering (IEC 62056-5-3 xDLMS APDUs). Plain data-notifications never load it.
_ENVELOPE_TAGS = (dlms.GENERAL_BLOCK_TRANSFER, dlms.GENERAL_GLO_CIPHERING, dlms.GENERAL_DED_CIPHERING)
_ENVELOPE_PENDING = const(1)  # envelope.PENDING: a block of a longer message was stored
_DSMR_START = const(0x2F)  # "/": a DSMR telegram's first byte (no xDLMS APDU tag is 0x2F)
_P1 = const("p1_")  # (prefix of its counters' names: a constant interns no name on a board)


class HanReader:
    """Feed UART bytes; get decoded Readings.

    Zero-allocation use (firmware):  i = 0
        while i < n:
            i = reader.push(buf, i, n)
            if reader.has_reading: use(reader.reading)
    Convenience use:  for reading in reader.feed(chunk): ...
    The same Reading object is refilled for every message: copy what you keep (as_dict()).
    """

    def __init__(self, capacity=2048, key=None, auth_key=None, framer=None):
        """key, auth_key: the meter's AES-128 encryption and authentication keys (32 hex digits or
        16 bytes) for ciphered APDUs (IEC 62056-5-3), never logged; framer: hdlc.HdlcReader(capacity)
        by default, or mbus.MbusReader for meters that send M-Bus long frames; capacity may be a
        preallocated bytearray for the framer's buffer."""
        self.framer = framer if framer is not None else hdlc.HdlcReader(capacity)
        self._frame_errors = getattr(self.framer, "ERROR_NAMES", hdlc.ERROR_NAMES)
        self.capacity = capacity if isinstance(capacity, int) else len(capacity)
        self.envelope = None  # block transfer, deciphering: loaded with the first such APDU or a key
        self.walker = dlms.Walker(meters.FIELD_BY_OBIS)
        self.reading = R.Reading()
        if key or auth_key:
            self.open_envelope(key, auth_key)
        self.has_reading = False
        self.readings = 0
        self.apdu_errors = [0] * len(dlms.RESULT_NAMES)  # by dlms result code (0 unused)
        self.map_problems = [0] * len(meters.MAP_NAMES)  # by meters result code (0 unused)
        self.last_error = None  # name of the last problem on any layer
        self.no_envelope = 0  # ciphered or block-transfer APDUs seen where envelope.py is not installed
        self.envelope_no_heap = 0  # ... where it is, but the heap had no room to load it (MemoryError)
        self.p1 = None  # p1.P1Reader of the DSMR telegrams a T210-D ciphers (glo.telegram), made with the first

    def push(self, data, pos=0, end=-1):
        """Consume data[pos:end] up to the end of the next message; returns the next index.
        has_reading tells whether that message decoded into self.reading."""
        f = self.framer
        skipped = f.counts[0]
        pos = f.push(data, pos, end)
        self.has_reading = False
        if f.last_error and f.counts[0] == skipped:
            self.last_error = self._frame_errors[f.last_error]
        if f.ready:
            self._decode(f.buf, f.info_start, f.info_end)
        return pos

    def open_envelope(self, key=None, auth_key=None):
        """The envelope layer (envelope.Envelope), created on first need: a meter that sends plain
        data-notifications never loads it (RAM on a board)."""
        from hanport import envelope

        env = envelope.Envelope(key, auth_key, self.capacity)
        self._env_names = envelope.NAMES
        self.reading.envelope = env  # the maker in a ciphered frame's system title (meters_eu)
        self.envelope = env
        return env

    def _decode(self, buf, start, end):
        env = self.envelope
        if env is None:
            p = dlms.llc_skip(buf, start, end)
            if p >= end or buf[p] not in _ENVELOPE_TAGS:
                self._walk(buf, start, end, False, False)
                return
            env = None
            if (self.no_envelope + self.envelope_no_heap) & 63 == 0:  # the first such APDU, then every 64th
                try:
                    env = self.open_envelope()
                except ImportError:  # a board installed without hanport-cipher (no key configured)
                    pass
                except MemoryError:  # no room for its code now (a ciphered meter on a small heap: docs/deploy.md)
                    self.envelope_no_heap += 1
                    self.last_error = "envelope_no_heap"
                    return
            if env is None:  # counted by the cause of the last try (not installed, or no heap)
                if self.envelope_no_heap:
                    self.envelope_no_heap += 1
                    self.last_error = "envelope_no_heap"
                else:
                    self.no_envelope += 1
                    self.last_error = "envelope_not_installed"
                return
        try:
            code = env.open(buf, start, end)
        except MemoryError:  # the first tag checked loads GHASH (gcm_ghash.py, its tables): no room now
            self.envelope_no_heap += 1
            self.last_error = "envelope_no_heap"
            return
        if code:
            if code != _ENVELOPE_PENDING:
                self.last_error = self._env_names[code]
            return
        self._walk(env.buf, env.start, env.end, env.ciphered, env.authenticated)

    def _walk(self, buf, start, end, ciphered, authenticated):
        if ciphered and start < end and buf[start] == _DSMR_START:  # a DSMR telegram (the T210-D: glo.py)
            try:
                from hanport import glo

                glo.telegram(self, buf, start, end, authenticated)
            except MemoryError:  # no room to load p1.py now: counted as for the envelope
                self.envelope_no_heap += 1
                self.last_error = "envelope_no_heap"
            return
        rd = self.reading
        w = self.walker
        code = w.decode_apdu(buf, start, end, rd)
        if ciphered and not authenticated and (code or w.stop != end):
            # decrypted without a tag to check, and not one whole valid APDU: the key is wrong
            self.last_error = self._env_names[self.envelope.reject()]
            return
        if code:
            self.apdu_errors[code] += 1
            self.last_error = dlms.RESULT_NAMES[code]
            return
        problem = meters.map_reading(rd, w.layout == dlms.LAYOUT_POSITIONAL)
        if problem:
            self.map_problems[problem] += 1
            self.last_error = meters.MAP_NAMES[problem]
        self.readings += 1
        self.has_reading = True

    def feed(self, data):
        """Generator over the Readings completed by this chunk (allocates a generator)."""
        return R.readings_from(self, data)

    def counters(self):
        """Every counter of every layer, name -> count (allocates)."""
        d = self.framer.counters()
        d["readings"] = self.readings
        d["envelope_not_installed"] = self.no_envelope
        d["envelope_no_heap"] = self.envelope_no_heap
        for i in range(1, len(dlms.RESULT_NAMES)):
            d["apdu_" + dlms.RESULT_NAMES[i]] = self.apdu_errors[i]
        for i in range(1, len(meters.MAP_NAMES)):
            d["map_" + meters.MAP_NAMES[i]] = self.map_problems[i]
        if self.envelope is not None:
            d.update(self.envelope.counters())
        if self.p1 is not None:  # the telegrams inside the envelope (glo.py)
            c = self.p1.counters()
            for k in c:
                d[_P1 + k] = c[k]
        return d


def decode_frame(data, key=None, auth_key=None):
    """Decode one complete HDLC frame (flags included) to the canonical dict; None if invalid."""
    r = HanReader(len(data) + 8, key, auth_key)
    for reading in r.feed(data):
        return reading.as_dict()
    return None


def decode_apdu(data, key=None, auth_key=None):
    """Decode an LLC/APDU message without HDLC framing (E6 E7 00 0F ...) to the canonical dict."""
    r = HanReader(8, key, auth_key)
    r._decode(data, 0, len(data))
    return r.reading.as_dict() if r.has_reading else None
