# DLMS/COSEM layer: LLC header, data-notification APDU and its A-XDR body (IEC 62056-5-3, data types of IEC 62056-6-2),
# walked in place over (buf, start, end) into the items of a Reading, without allocating.
from hanport import reading as R
from hanport.buffers import const, copy

# --- APDU tags (IEC 62056-5-3 xDLMS APDUs; envelope.py and reader.py use these too) ---
_LLC_DST = const(0xE6)  # LLC header E6 E7 00 (command) / E6 E6 00 (response), IEC 62056-46 LLC sub-layer
_DATA_NOTIFICATION = const(0x0F)
GENERAL_GLO_CIPHERING = 0xDB  # system title, ciphered content
GENERAL_DED_CIPHERING = 0xDF  # same layout, dedicated key
GENERAL_BLOCK_TRANSFER = 0xE0  # block-control, block-number, block-number-ack, block-data
_DATE_TIME_LEN = const(12)  # COSEM date-time octet-string length

# --- A-XDR data tags (IEC 62056-6-2 data types) ---
_T_NULL = const(0x00)
_T_ARRAY = const(0x01)
_T_STRUCT = const(0x02)
_T_BOOL = const(0x03)
_T_I32 = const(0x05)  # double-long
_T_U32 = const(0x06)  # double-long-unsigned
_T_OCTETS = const(0x09)
_T_VISIBLE = const(0x0A)
_T_UTF8 = const(0x0C)
_T_I8 = const(0x0F)  # integer
_T_I16 = const(0x10)  # long
_T_U8 = const(0x11)  # unsigned
_T_U16 = const(0x12)  # long-unsigned
_T_I64 = const(0x14)  # long64
_T_U64 = const(0x15)  # long64-unsigned
_T_ENUM = const(0x16)
_T_F32 = const(0x17)
_T_F64 = const(0x18)
# fixed sizes of the numeric tags, indexed by tag (0 = not a fixed-size numeric)
_SIZE = bytearray(0x19)
for _t, _n in ((_T_BOOL, 1), (_T_I32, 4), (_T_U32, 4), (_T_I8, 1), (_T_I16, 2), (_T_U8, 1), (_T_U16, 2),
               (_T_I64, 8), (_T_U64, 8), (_T_ENUM, 1), (_T_F32, 4), (_T_F64, 8)):
    _SIZE[_t] = _n
_SIGNED = bytearray(0x19)
for _t in (_T_I32, _T_I8, _T_I16, _T_I64):
    _SIGNED[_t] = 1

_MAX_DEPTH = const(6)  # nesting seen: Aidon array > structure > structure; anything deeper is hostile

# --- result codes of decode_apdu (index into the reader's apdu error counters) ---
OK = 0
ERR_TRUNCATED = 1  # a length or value runs past the end of the message
_ERR_NOT_NOTIFICATION = const(2)  # not a data-notification (and not ciphered)
_ERR_ENCRYPTED = const(3)  # general-glo/ded-ciphering: needs a key (hanport.envelope deciphers)
_ERR_BAD_TYPE = const(4)  # unknown A-XDR tag or nesting too deep
_ERR_TOO_MANY = const(5)  # more items or string bytes than the Reading can hold
_ERR_EMPTY = const(6)  # no values in the body
RESULT_NAMES = ("ok", "truncated", "not_notification", "encrypted", "bad_type", "too_many", "empty")

# Layouts: how the body names its values (decided from its first two leaves)
_LAYOUT_TAGGED = const(0)  # OBIS octet-string(6) before each value (Aidon structures, Kamstrup pairs)
LAYOUT_POSITIONAL = 1  # bare values, meaning given by position (Kaifa KFM_001)
_LAYOUT_DESCRIBED = const(2)  # push list: element 0 lists the capture objects, element k is object k's value
_CAPTURE_OBJECT_LEN = const(18)  # 02 04 | 12 class(2) | 09 06 OBIS(6) | 0F attribute | 12 data-index(2)
_MAX_CAPTURE_OBJECTS = const(64)


def read_uint(buf, pos, size):
    v = 0
    for i in range(pos, pos + size):
        v = (v << 8) | buf[i]
    return v


def read_int(buf, pos, size):
    """Big-endian two's complement without a bigint for any value that fits a small int."""
    if buf[pos] & 0x80:
        v = 0
        for i in range(pos, pos + size):
            v = (v << 8) | (buf[i] ^ 0xFF)
        return -v - 1
    return read_uint(buf, pos, size)



def llc_skip(buf, p, end):
    """The offset after an LLC header (E6 E7 00 or E6 E6 00) at buf[p]; p when there is none."""
    if end - p >= 3 and buf[p] == _LLC_DST and (buf[p + 1] == 0xE7 or buf[p + 1] == 0xE6):
        return p + 3
    return p


def axdr_length(into, buf, p, end):
    """A-XDR length at buf[p] (1 byte, or 0x81/0x82 + 1-2 bytes): the value goes to into.count (no
    tuple: this runs per frame); returns the offset after it, -1 if malformed or cut off."""
    if p >= end:
        return -1
    n = buf[p]
    if n < 0x80:
        into.count = n
        return p + 1
    k = n & 0x7F
    if k == 0 or k > 2 or p + 1 + k > end:
        return -1
    into.count = read_uint(buf, p + 1, k)
    return p + 1 + k

class Walker:
    """Decodes one APDU into a Reading; state kept between calls so nothing is allocated."""

    def __init__(self, code_table=None):
        self.code_table = code_table or {}  # OBIS key -> canonical code (meters.FIELD_BY_OBIS)
        self.buf = None
        self.r = None
        self.end = 0
        self.layout = _LAYOUT_TAGGED
        self.pending_obis = -1  # buffer offset of an OBIS code waiting for its value, -1 = none
        self.last_item = -1  # item the next scaler/unit structure belongs to
        self.position = 0  # count of untagged values seen
        self.error = OK
        self.count = 0  # last A-XDR length read by axdr_length()
        self.stop = 0  # offset after the body of the last APDU decoded OK (trailing bytes: stop < end)
        self.capture_obis = [0] * _MAX_CAPTURE_OBJECTS  # buffer offsets of a push list's OBIS codes
        self.stack = [0] * _MAX_DEPTH  # elements left at each open nesting level

    def decode_apdu(self, buf, start, end, rd):
        """Fill rd from the APDU in buf[start:end] (LLC header optional). Returns a result code."""
        rd.clear()
        self.buf = buf
        self.r = rd
        self.end = end
        self.error = OK
        p = llc_skip(buf, start, end)
        if p >= end:
            return ERR_TRUNCATED
        tag = buf[p]
        if tag == GENERAL_GLO_CIPHERING or tag == GENERAL_DED_CIPHERING:
            return _ERR_ENCRYPTED
        if tag != _DATA_NOTIFICATION:
            return _ERR_NOT_NOTIFICATION
        p += 5  # tag + long-invoke-id-and-priority (4)
        if p >= end:
            return ERR_TRUNCATED
        # date-time: 00 absent | 09 0C + 12 | 0C + 12 (one Kamstrup firmware drops the 09)
        dt = buf[p]
        if dt == _T_OCTETS:
            if p + 2 + _DATE_TIME_LEN > end or buf[p + 1] != _DATE_TIME_LEN:
                return ERR_TRUNCATED
            rd.header_time = self._pool_copy(p + 2, _DATE_TIME_LEN)
            p += 2 + _DATE_TIME_LEN
        elif dt == _DATE_TIME_LEN:
            if p + 1 + _DATE_TIME_LEN > end:
                return ERR_TRUNCATED
            rd.header_time = self._pool_copy(p + 1, _DATE_TIME_LEN)
            p += 1 + _DATE_TIME_LEN
        elif dt == _T_NULL:
            p += 1
        else:
            return _ERR_BAD_TYPE
        if rd.header_time < -1:
            return _ERR_TOO_MANY
        if p >= end:
            return ERR_TRUNCATED
        # body: usually one structure/array; its element count identifies Kaifa lists
        self.pending_obis = -1
        self.last_item = -1
        self.position = 0
        self.layout = self._detect_layout(p)
        tag = buf[p]
        if tag == _T_STRUCT or tag == _T_ARRAY:
            q = axdr_length(self, buf, p + 1, self.end)
            if q < 0:
                return ERR_TRUNCATED
            rd.element_count = self.count
        else:
            rd.element_count = 1
        if self.layout == _LAYOUT_DESCRIBED:
            p = self._described(q)
        else:
            p = self._element(p, 0)
        if p < 0:
            return self.error
        self.stop = p
        if rd.n_items == 0:
            return _ERR_EMPTY
        return OK

    # --- helpers ---
    def _pool_copy(self, p, n):
        """Copy buf[p:p+n] into the reading's pool; returns the pool offset (-2 when full)."""
        rd = self.r
        o = rd.pool_used
        if o + n > len(rd.pool):
            return -2
        copy(rd.pool, o, self.buf, p, n)
        rd.pool_used = o + n
        return o

    def _next_leaf(self, p):
        """Offset of the first non-container element at or after p (-1 if none)."""
        buf = self.buf
        end = self.end
        while p < end:
            t = buf[p]
            if t != _T_STRUCT and t != _T_ARRAY:
                return p
            p = axdr_length(self, buf, p + 1, self.end)
            if p < 0:
                return -1
        return -1

    def _skip_leaf(self, p):
        buf = self.buf
        t = buf[p]
        if t == _T_OCTETS or t == _T_VISIBLE or t == _T_UTF8:
            q = axdr_length(self, buf, p + 1, self.end)
            return -1 if q < 0 else q + self.count
        if t == _T_NULL:
            return p + 1
        if t < len(_SIZE) and _SIZE[t]:
            return p + 1 + _SIZE[t]
        return -1

    def _is_obis(self, p):
        buf = self.buf
        return buf[p] == _T_OCTETS and p + 8 <= self.end and buf[p + 1] == 6

    def _detect_layout(self, p):
        """Described if the body starts with a capture-object list; tagged if the first or second
        leaf is an OBIS octet-string(6); else positional."""
        buf = self.buf
        if (p + 6 <= self.end and buf[p] == _T_STRUCT and buf[p + 1] < 0x80 and buf[p + 2] == _T_ARRAY
                and buf[p + 3] < 0x80 and buf[p + 4] == _T_STRUCT and buf[p + 5] == 4):
            return _LAYOUT_DESCRIBED
        a = self._next_leaf(p)
        if a < 0:
            return _LAYOUT_TAGGED
        if self._is_obis(a):
            return _LAYOUT_TAGGED
        b = self._skip_leaf(a)
        if b < 0:
            return _LAYOUT_TAGGED
        b = self._next_leaf(b)
        if b >= 0 and self._is_obis(b):
            return _LAYOUT_TAGGED
        return LAYOUT_POSITIONAL

    def _described(self, q):
        """Push list (DLMS push setup, class 40): element 0 is the array of capture objects
        {class, OBIS, attribute, data index}; element k (k >= 1) is the value of object k."""
        buf = self.buf
        n_elements = self.count
        m = buf[q + 1]
        if m > _MAX_CAPTURE_OBJECTS:
            return self._fail(_ERR_TOO_MANY)
        p = q + 2
        for j in range(m):
            if (p + _CAPTURE_OBJECT_LEN > self.end or buf[p] != _T_STRUCT or buf[p + 1] != 4
                    or buf[p + 2] != _T_U16 or buf[p + 5] != _T_OCTETS or buf[p + 6] != 6):
                return self._fail(_ERR_BAD_TYPE)
            self.capture_obis[j] = p + 7
            p += _CAPTURE_OBJECT_LEN
        for k in range(1, n_elements):
            self.pending_obis = self.capture_obis[k] if k < m else -1
            p = self._element(p, 1)
            if p < 0:
                return -1
        return p

    def _fail(self, code):
        self.error = code
        return -1

    def _element(self, p, depth):
        """Decode the element at p and everything nested in it, iteratively (no recursion, no
        allocation); returns the offset after it, or -1 with self.error set. The hot loop of the
        decoder: state lives in locals and is written back on the way out."""
        buf = self.buf
        end = self.end
        rd = self.r
        stack = self.stack
        tagged_layout = self.layout == _LAYOUT_TAGGED
        # the item arrays as locals: this loop runs once per value of every frame
        kinds = rd.item_kind
        values = rd.item_value
        lens = rd.item_len
        has_scaler = rd.item_has_scaler
        tagged = rd.item_tagged
        positions = rd.item_position
        codes = rd.item_code
        table = self.code_table
        no_code = R.NO_CODE
        n_items = rd.n_items
        max_items = rd.max_items
        pending = self.pending_obis  # offset of an OBIS code waiting for its value, -1 = none
        last = self.last_item  # item a following scaler/unit structure belongs to, -1 = none
        base_depth = depth
        remaining = 1  # elements still to read at the current nesting level
        while True:
            if remaining == 0:
                if depth == base_depth:
                    self.pending_obis = pending
                    self.last_item = last
                    rd.n_items = n_items
                    return p
                depth -= 1
                remaining = stack[depth]
                continue
            remaining -= 1
            if p + 1 >= end:
                if p >= end or buf[p] != _T_NULL:
                    return self._fail(ERR_TRUNCATED)
            t = buf[p]
            if t == _T_STRUCT or t == _T_ARRAY or t == _T_OCTETS or t == _T_VISIBLE or t == _T_UTF8:
                n = buf[p + 1]
                if n < 0x80:
                    q = p + 2
                else:
                    q = axdr_length(self, buf, p + 1, self.end)
                    if q < 0:
                        return self._fail(ERR_TRUNCATED)
                    n = self.count
                if t == _T_STRUCT or t == _T_ARRAY:
                    # scaler-unit structure {integer scaler, enum unit} after a value (Aidon)
                    if n == 2 and last >= 0 and q + 4 <= end and buf[q] == _T_I8 and buf[q + 2] == _T_ENUM:
                        s = buf[q + 1]
                        rd.item_scaler[last] = s - 256 if s & 0x80 else s
                        rd.item_unit[last] = buf[q + 3]
                        rd.item_has_scaler[last] = 1
                        last = -1
                        p = q + 4
                        continue
                    if depth >= _MAX_DEPTH:
                        return self._fail(_ERR_BAD_TYPE)
                    stack[depth] = remaining
                    depth += 1
                    remaining = n
                    p = q
                    continue
                if q + n > end:
                    return self._fail(ERR_TRUNCATED)
                if n == 6 and pending < 0 and t == _T_OCTETS and tagged_layout:
                    pending = q
                    p = q + n
                    continue
                kind = R.KIND_STR
                value = self._pool_copy(q, n)
                if value < 0:
                    return self._fail(_ERR_TOO_MANY)
                p = q + n
            elif t == _T_NULL:
                # null-data: an absent value; a null in the OBIS slot (Kamstrup one-phase) too
                pending = -1
                last = -1
                if not tagged_layout:
                    self.position += 1  # the slot still counts: later values keep their meaning
                p += 1
                continue
            else:
                n = _SIZE[t] if t < len(_SIZE) else 0
                if not n:
                    return self._fail(_ERR_BAD_TYPE)
                q = p + 1
                p = q + n
                if p > end:
                    return self._fail(ERR_TRUNCATED)
                if n == 4 and t == _T_U32:
                    kind = R.KIND_INT
                    value = (buf[q] << 24) | (buf[q + 1] << 16) | (buf[q + 2] << 8) | buf[q + 3]
                elif t == _T_F32 or t == _T_F64:
                    kind = R.KIND_FLOAT32 if t == _T_F32 else R.KIND_FLOAT64
                    value = read_uint(buf, q, n)
                else:
                    kind = R.KIND_BOOL if t == _T_BOOL else R.KIND_INT
                    value = read_int(buf, q, n) if _SIGNED[t] else read_uint(buf, q, n)
            # --- a value: store it as the next item, named by the pending OBIS code or its position
            i = n_items
            if i >= max_items:
                return self._fail(_ERR_TOO_MANY)
            n_items = i + 1
            kinds[i] = kind
            values[i] = value
            lens[i] = n
            has_scaler[i] = 0  # item_scaler/item_unit are read only when this is set
            if pending >= 0:
                copy(rd.item_obis, 6 * i, buf, pending, 6)
                tagged[i] = 1
                positions[i] = 255
                # canonical code now, while the OBIS bytes are at hand (key: see meters.obis_key)
                a = buf[pending]
                if a <= 1 and buf[pending + 1] <= 1 and buf[pending + 5] == 0xFF:
                    key = (a << 24) | (buf[pending + 2] << 16) | (buf[pending + 3] << 8) | buf[pending + 4]
                    codes[i] = table.get(key, no_code)
                else:
                    codes[i] = no_code
                pending = -1
            else:
                # untagged: meters.py names it from its position (Kaifa) or role (Kamstrup list id)
                codes[i] = no_code
                tagged[i] = 0
                pos = self.position
                positions[i] = pos if pos < 255 else 254
                self.position = pos + 1
            last = i if kind == R.KIND_INT else -1

