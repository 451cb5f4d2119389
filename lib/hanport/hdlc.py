# HDLC frame type 3 (IEC 62056-46) stream reader: hunts flags, checks HCS/FCS, joins segments.
# One preallocated buffer; a complete message is handed on as (buf, info_start, info_end).
from hanport.buffers import const, copy, counter_dict
from hanport.crc import crc16_x25

FLAG = 0x7E  # IEC 62056-46 opening/closing flag; one flag may close a frame and open the next
_FORMAT_TYPE_3 = const(0xA0)  # high nibble of the first format byte
_SEGMENT_BIT = const(0x08)  # bit 11 of the format field: the message continues in the next frame
_LENGTH_MASK_HI = const(0x07)  # low 11 bits of the format field are the frame length (flags excluded)
_MIN_FRAME_LEN = const(7)  # format(2) + dst(1) + src(1) + control(1) + FCS(2)
_MAX_ADDRESS_BYTES = const(4)  # IEC 62056-46 addresses are 1, 2 or 4 bytes

# Result of the last completed or failed frame (also the index into HdlcReader.counts).
OK = 0
_ERR_HCS = const(1)
_ERR_FCS = const(2)
ERR_OVERSIZE = 3  # length field larger than the buffer can hold
ERR_FORMAT = 4  # not a type-3 format field, bad address, or length too small
_ERR_NO_END_FLAG = const(5)  # length field does not land on a closing flag (lost or extra bytes)
ERR_SEGMENT = 6  # a segmented message lost one of its parts
ERROR_NAMES = ("ok", "hcs_error", "fcs_error", "oversize", "format_error", "no_end_flag", "segment_lost")



class HdlcReader:
    """Feed chunks with push(); when .ready, the message is buf[info_start:info_end]."""

    def __init__(self, capacity=2048):
        # capacity: frame buffer size in bytes, or a preallocated bytearray to use (a board allocates
        # its long-lived buffers first, while the heap is still contiguous)
        self.buf = capacity if isinstance(capacity, bytearray) else bytearray(capacity)
        self.capacity = len(self.buf)
        self.counts = [0] * len(ERROR_NAMES)  # frames ok and each error, by result code
        self.bytes_skipped = 0  # bytes dropped while hunting for a flag
        self.resyncs = 0
        self.segments = 0  # frames that carried the segmentation bit
        self.last_error = OK
        self.tap = None  # optional observer (rawlog.RawLog): .frame(buf, start, end, code), .skipped(b)
        self.ready = False
        self.info_start = 0
        self.info_end = 0
        self.reset()

    def reset(self):
        self.hunting = True  # skipping bytes until a flag
        self.base = 0  # end of the information assembled from earlier segments
        self.start = 0  # first byte (format field) of the frame being read
        self.end = 0  # end of buffered bytes
        self.length = 0  # length field of the frame being read, 0 = not read yet
        self.info = 0  # offset of the information field once the header checked out, 0 = not yet
        self.next_start = 0
        self.ready = False

    # --- public ---
    def push(self, data, pos=0, end=-1):
        """Consume data[pos:end] until a message completes. Returns the index of the first byte
        not consumed (== end when all were). Check .ready after each call."""
        if end < 0:
            end = len(data)
        if self.ready:
            self._release()
            if self.start < self.end and self._advance():
                return pos
        buf = self.buf
        while pos < end:
            if self.hunting:
                b = data[pos]
                pos += 1
                if b == FLAG:
                    self.hunting = False
                else:
                    self.bytes_skipped += 1
                    if self.tap is not None:
                        self.tap.skipped(b)
                continue
            fill = self.end
            have = fill - self.start
            if have == 0 and data[pos] == FLAG:  # idle flags between frames
                pos += 1
                continue
            if self.length:
                want = self.length + 1 - have
            else:
                want = 2 - have
                if have == 0 and end - pos > _MIN_FRAME_LEN and data[pos] & 0xF0 == _FORMAT_TYPE_3:
                    # whole frame already in this chunk: take it in one copy, check it in one pass
                    whole = (((data[pos] & _LENGTH_MASK_HI) << 8) | data[pos + 1]) + 1
                    if whole <= end - pos and fill + whole <= self.capacity:
                        want = whole
            if self.length and not self.info:
                # read the header first so a bad HCS is found after a dozen bytes, not a frame
                hdr = 2 + 2 * _MAX_ADDRESS_BYTES + 3 - have
                if hdr > 0 and hdr < want:
                    want = hdr
            if want > end - pos:
                want = end - pos
            if fill + want > self.capacity:
                # a resync left the next frame's start at the buffer's end: move it down first
                self._compact()
                fill = self.end
                if fill + want > self.capacity:  # assembled segments leave no room at all
                    self._fail(ERR_OVERSIZE)
                    continue
            copy(buf, fill, data, pos, want)
            pos += want
            self.end = fill + want
            if self._advance():
                return pos
        return pos

    def counters(self):
        """Counter name -> count (allocates a dict)."""
        return counter_dict(self.counts, ERROR_NAMES, (("resyncs", self.resyncs),
                                                       ("bytes_skipped", self.bytes_skipped),
                                                       ("segments", self.segments)))

    # --- internals ---
    def _release(self):
        """Forget the message handed out; keep bytes that followed it."""
        self.ready = False
        self.base = 0
        self.start = self.next_start
        self.length = 0
        self.info = 0
        if self.start >= self.end:
            self.start = self.end = 0

    def _fail(self, code):
        """Drop the frame at self.start and look for the next flag among the buffered bytes."""
        if self.tap is not None:
            self.tap.frame(self.buf, self.start, self.end, code)
        self.counts[code] += 1
        self.last_error = code
        self.resyncs += 1
        if self.base:
            self.counts[ERR_SEGMENT] += 1
            self.base = 0
        buf = self.buf
        i = self.start + 1
        end = self.end
        while i < end and buf[i] != FLAG:
            i += 1
        self.bytes_skipped += i - self.start
        self.length = 0
        self.info = 0
        if i < end:
            self.start = i + 1
        else:
            self.start = self.end = 0
            self.hunting = True

    def _compact(self):
        """Move the frame being read down to self.base so that a whole frame fits."""
        buf = self.buf
        src = self.start
        dst = self.base
        n = self.end - src
        copy(buf, dst, buf, src, n)
        self.start = dst
        self.end = dst + n

    def _advance(self):
        """Check what is buffered from self.start; True when a message is ready."""
        buf = self.buf
        while True:
            start = self.start
            have = self.end - start
            if have <= 0:
                self.start = self.end = self.base
                return False
            if not self.length:
                b0 = buf[start]
                if b0 == FLAG:
                    self.start = start + 1
                    continue
                if b0 & 0xF0 != _FORMAT_TYPE_3:
                    self._fail(ERR_FORMAT)
                    continue
                if have < 2:
                    return False
                length = ((b0 & _LENGTH_MASK_HI) << 8) | buf[start + 1]
                if length < _MIN_FRAME_LEN:
                    self._fail(ERR_FORMAT)
                    continue
                if self.base + length + 1 > self.capacity:
                    self._fail(ERR_OVERSIZE)
                    continue
                self.length = length
                if start + length + 1 > self.capacity:
                    self._compact()
                    start = self.start
            length = self.length
            if not self.info:
                # header: format(2) dst src control [HCS(2) when an information field follows]
                p = start + 2
                lim = start + have
                for _ in range(2):
                    n = 0
                    while p < lim and not buf[p] & 1:
                        p += 1
                        n += 1
                    if n >= _MAX_ADDRESS_BYTES:
                        break
                    p += 1
                if n >= _MAX_ADDRESS_BYTES:
                    self._fail(ERR_FORMAT)
                    continue
                p += 1  # control
                if p > lim:
                    return False  # header not all here yet
                hdr = p - start
                if hdr + 2 == length:
                    self.info = hdr  # no information field: FCS follows the control byte
                elif hdr + 4 >= length:
                    self._fail(ERR_FORMAT)
                    continue
                else:
                    if p + 2 > lim:
                        return False
                    if crc16_x25(buf, start, p) != buf[p] | (buf[p + 1] << 8):
                        self._fail(_ERR_HCS)
                        continue
                    self.info = hdr + 2
            if have < length + 1:
                return False
            stop = start + length  # index of the closing flag
            if buf[stop] != FLAG:
                self._fail(_ERR_NO_END_FLAG)
                continue
            if crc16_x25(buf, start, stop - 2) != buf[stop - 2] | (buf[stop - 1] << 8):
                self._fail(_ERR_FCS)
                continue
            self.counts[OK] += 1
            self.last_error = OK
            if self.tap is not None:
                self.tap.frame(buf, start, stop, OK)
            i0 = start + self.info
            i1 = stop - 2
            segmented = buf[start] & _SEGMENT_BIT
            self.length = 0
            self.info = 0
            if segmented or self.base:
                if segmented:
                    self.segments += 1
                # append this frame's information to the earlier segments, in place
                dst = self.base
                n = i1 - i0
                copy(buf, dst, buf, i0, n)
                self.base = dst + n
                if segmented:
                    self.start = stop  # the closing flag opens the next segment
                    continue
                i0 = 0
                i1 = self.base
            self.info_start = i0
            self.info_end = i1
            self.next_start = stop  # shared flag: may open the next frame
            self.ready = True
            return True
