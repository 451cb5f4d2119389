# M-Bus long-frame stream reader (EN 13757-2): 68 L L 68 C A CI data CS 16, checksum checked; DLMS
# APDUs split over several frames (CI 0x00-0x1F, IEC 62056-7-3) joined in one preallocated buffer.
from hanport.buffers import copy, counter_dict
from hanport.lenframe import drop_frame, take_frame

START = 0x68  # long frame start character (EN 13757-2 §5)
STOP = 0x16  # stop character
HEADER_LEN = 4  # 68 L L 68
MIN_L = 3  # L counts C, A, CI and the data
FRAME_OVERHEAD = 6  # 68 L L 68 ... CS 16 around the L counted bytes
# CI field 0x00-0x1F: a DLMS/COSEM APDU segment (IEC 62056-7-3 M-Bus profile, as sent by the Austrian
# meters, e.g. "53 FF 00 01 67 DB ..." then "53 FF 11 01 67 ..."): bit 4 = last segment (FIN),
# bits 0-3 = segment sequence number; then STSAP and DTSAP (1 byte each), then the APDU bytes.
CI_DLMS_MAX = 0x1F
CI_FIN = 0x10
CI_SEQUENCE = 0x0F
TPDU_HEADER = 2  # STSAP, DTSAP

# Result of the last completed or failed frame (also the index into MbusReader.counts).
OK = 0
ERR_CHECKSUM = 1
ERR_NO_STOP = 2  # the length does not land on the stop character (lost or extra bytes)
ERR_FORMAT = 3  # the two L fields differ, the second start character is missing, or L is too small
ERR_OVERSIZE = 4  # the joined message would not fit the buffer
ERR_SEGMENT = 5  # a segment of a split APDU lost, repeated or out of order: the APDU is dropped
ERR_NOT_DLMS = 6  # a valid frame whose CI field is not a DLMS segment (plain M-Bus data): skipped
ERROR_NAMES = ("ok", "checksum_error", "no_stop_byte", "format_error", "oversize", "segment_lost",
               "not_dlms")



class MbusReader:
    """Feed chunks with push(); when .ready, the joined APDU is buf[info_start:info_end].
    Same interface as hdlc.HdlcReader, so hanport.HanReader can sit on either framer."""

    ERROR_NAMES = ERROR_NAMES

    def __init__(self, capacity=2048):
        # capacity: frame buffer size in bytes, or a preallocated bytearray to use (a board allocates
        # its long-lived buffers first, while the heap is still contiguous)
        self.buf = capacity if isinstance(capacity, bytearray) else bytearray(capacity)
        self.capacity = len(self.buf)
        self.counts = [0] * len(ERROR_NAMES)  # frames ok and each error, by result code
        self.bytes_skipped = 0  # bytes dropped while hunting for a start character
        self.resyncs = 0
        self.segments = 0  # frames that carried a non-final segment
        self.last_error = OK
        self.ready = False
        self.info_start = 0
        self.info_end = 0
        self.reset()

    def reset(self):
        self.base = 0  # end of the APDU bytes joined from earlier segments; the frame being read starts here
        self.end = 0  # end of buffered bytes
        self.need = 0  # length of the frame being read (L + 6) once its header checked out, 0 = not yet
        self.next_seq = -1  # sequence number the next segment must carry, -1 = not assembling
        self.ready = False

    def push(self, data, pos=0, end=-1):
        """Consume data[pos:end] until an APDU completes (lenframe.take_frame). Returns the index of the first
        byte not consumed (== end when all were). Check .ready after each call."""
        return take_frame(self, data, pos, end, START, HEADER_LEN)

    def counters(self):
        """Counter name -> count (allocates a dict)."""
        return counter_dict(self.counts, ERROR_NAMES, (("resyncs", self.resyncs),
                                                       ("bytes_skipped", self.bytes_skipped),
                                                       ("segments", self.segments)))

    # --- internals ---
    def _fail(self, code):
        drop_frame(self, code, START)  # (lenframe: the frame at base dropped, a resync)

    def _drop_apdu(self, code):
        """Forget the segments joined so far (counted under code)."""
        self.counts[code] += 1
        self.last_error = code
        self.next_seq = -1

    def _advance(self):
        """Check what is buffered from self.base; True when an APDU is ready."""
        buf = self.buf
        while True:
            start = self.base
            have = self.end - start
            if have <= 0:
                return False
            if not self.need:
                if have < HEADER_LEN:
                    return False
                n = buf[start + 1]
                if buf[start + 2] != n or buf[start + 3] != START or n < MIN_L:
                    self._fail(ERR_FORMAT)
                    continue
                if start + n + FRAME_OVERHEAD > self.capacity:
                    if start:  # the joined segments leave no room: drop them, keep this frame
                        self._drop_apdu(ERR_OVERSIZE)
                        for k in range(have):
                            buf[k] = buf[start + k]
                        self.base = 0
                        self.end = have
                        continue
                    self._fail(ERR_OVERSIZE)
                    continue
                self.need = n + FRAME_OVERHEAD
            need = self.need
            if have < need:
                return False
            n = need - FRAME_OVERHEAD
            if buf[start + need - 1] != STOP:
                self._fail(ERR_NO_STOP)
                continue
            cs = 0
            for i in range(start + HEADER_LEN, start + HEADER_LEN + n):
                cs += buf[i]
            if cs & 0xFF != buf[start + HEADER_LEN + n]:
                self._fail(ERR_CHECKSUM)
                continue
            self.counts[OK] += 1
            self.last_error = OK
            self.need = 0
            self.end = start  # the frame is consumed; its APDU bytes are copied down below
            ci = buf[start + HEADER_LEN + 2]
            if ci > CI_DLMS_MAX or n < MIN_L + TPDU_HEADER:
                self.counts[ERR_NOT_DLMS] += 1
                self.last_error = ERR_NOT_DLMS
                continue
            seq = ci & CI_SEQUENCE
            if seq == self.next_seq:  # the next segment (the number wraps after 15)
                dst = start
            elif seq == 0:
                if self.next_seq >= 0:
                    self._drop_apdu(ERR_SEGMENT)  # the previous APDU never got its last segment
                dst = 0
            else:
                if self.next_seq >= 0:
                    self._drop_apdu(ERR_SEGMENT)
                else:
                    self.counts[ERR_SEGMENT] += 1
                    self.last_error = ERR_SEGMENT
                self.base = 0
                self.end = 0
                continue
            src = start + HEADER_LEN + 3 + TPDU_HEADER
            count = n - 3 - TPDU_HEADER
            copy(buf, dst, buf, src, count)
            self.base = dst + count
            self.end = self.base
            if not ci & CI_FIN:
                self.segments += 1
                self.next_seq = (seq + 1) & CI_SEQUENCE
                continue
            self.next_seq = -1
            self.info_start = 0
            self.info_end = self.base
            self.ready = True
            return True
