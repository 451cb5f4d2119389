# Bare general-glo-ciphering APDUs on the line, framed by their own A-XDR length (IEC 62056-5-3 §9.2.7.2.4):
# DB 08 <system title> <length> <SC, frame counter, ciphertext, tag>. The Sagemcom T210-D's P1 port sends so.
from hanport.buffers import const, counter_dict
from hanport.lenframe import drop_frame, take_frame

# The Sagemcom T210-D (Luxembourg's Smarty P1 port, Energienetze Steiermark) sends each DSMR telegram ciphered
# in such an APDU, with no HDLC or M-Bus frame around it; the telegram's own CRC (and the tag, with an
# authentication key) tells a whole one. The envelope (envelope.py) deciphers it, hanport.HanReader hands
# the text to p1.py.
_TAG = const(0xDB)  # general-glo-ciphering (IEC 62056-5-3 xDLMS APDU tags)
_TITLE_LEN = const(8)  # system title: 3-letter FLAG id + 5 bytes
_HEAD = const(13)  # tag, title length, title, and up to 3 length bytes (0x82 + 2)
_MIN_CONTENT = const(5)  # security control + frame counter

_P1 = const("p1_")  # (counter names of the telegrams: constants, so a board interns no name for them)

# Result of the last APDU framed or dropped (also the index into GloReader.counts)
OK = 0
_ERR_FORMAT = const(1)  # the title length is not 8, or the length field is not an A-XDR length
_ERR_OVERSIZE = const(2)  # longer than the buffer
ERROR_NAMES = ("ok", "format_error", "oversize")


class GloReader:
    """Feed chunks with push(); when .ready, the APDU is buf[info_start:info_end]. Same interface as
    hdlc.HdlcReader, so hanport.HanReader (with the meter's key) can sit on it."""

    ERROR_NAMES = ERROR_NAMES

    def __init__(self, capacity=1024):
        # capacity: buffer size in bytes, or a preallocated bytearray (a T210-D's APDU: ~500-900 bytes)
        self.buf = capacity if isinstance(capacity, bytearray) else bytearray(capacity)
        self.capacity = len(self.buf)
        self.counts = [0] * len(ERROR_NAMES)
        self.bytes_skipped = 0  # bytes dropped while hunting for the tag
        self.resyncs = 0
        self.last_error = OK
        self.ready = False
        self.info_start = 0
        self.info_end = 0
        self.base = 0  # where the APDU being read starts (always 0: lenframe.take_frame reads it)
        self.end = 0  # bytes buffered of the APDU being read
        self.need = 0  # its whole length once the header checked out, 0 = not yet

    def push(self, data, pos=0, end=-1):
        """Consume data[pos:end] until an APDU completes (lenframe.take_frame). Returns the index of the first
        byte not consumed (== end when all were). Check .ready after each call."""
        return take_frame(self, data, pos, end, _TAG, _HEAD)

    def counters(self):
        """Counter name -> count (allocates a dict)."""
        return counter_dict(self.counts, ERROR_NAMES, (("resyncs", self.resyncs),
                                                       ("bytes_skipped", self.bytes_skipped)))

    def _advance(self):
        # check what is buffered; True when an APDU is whole
        buf = self.buf
        while self.end:
            if not self.need:
                if self.end < _HEAD:
                    return False
                n = buf[2 + _TITLE_LEN]  # A-XDR length (IEC 61334-6): one byte, or 0x81/0x82 and the bytes
                head = 3 + _TITLE_LEN
                if n == 0x81:
                    n = buf[head]
                    head += 1
                elif n == 0x82:
                    n = (buf[head] << 8) | buf[head + 1]
                    head += 2
                elif n > 0x7F:
                    n = -1
                if buf[1] != _TITLE_LEN or n < _MIN_CONTENT:
                    self._fail(_ERR_FORMAT)
                    continue
                if head + n > self.capacity:
                    self._fail(_ERR_OVERSIZE)
                    continue
                self.need = head + n
            if self.end < self.need:
                return False
            self.counts[OK] += 1
            self.last_error = OK
            self.info_start = 0
            self.info_end = self.need
            self.need = 0
            self.ready = True
            return True
        return False

    def _fail(self, code):
        drop_frame(self, code, _TAG)  # (lenframe: the frame at base dropped, a resync)


def telegram(reader, buf, start, end, authenticated):
    """A DSMR telegram that hanport.HanReader deciphered (its first byte "/"): read by a p1.P1Reader (made
    with the first, reader.p1) into the reader's Reading. Its CRC tells a whole one, and a wrong key when
    no tag was checked (counted wrong_key, no value)."""
    p1 = reader.p1
    if p1 is None:
        from hanport.p1 import P1Reader  # (p1.py comes with glo.py: both are hanport-p1)

        p1 = reader.p1 = P1Reader(reading=reader.reading)
    p1.reset()  # (a telegram cut short before leaves it mid-line)
    p1.push(buf, start, end)
    if p1.has_reading or p1.flush():
        reader.readings += 1
        reader.has_reading = True
    elif authenticated:  # (its tag matched: the text itself is bad)
        reader.last_error = _P1 + (p1.last_error or "malformed")
    else:
        from hanport.envelope import NAMES  # (loaded: it deciphered the telegram)

        reader.last_error = NAMES[reader.envelope.reject()]
