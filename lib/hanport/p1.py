# DSMR / IEC 62056-21 "P1" telegrams (DSMR 5.0.2 P1 companion standard): "/" identification, OBIS(value*unit) lines,
# "!" + CRC-16/ARC; read line by line into a Reading with the canonical fields, exact decimals.
from hanport import meters
from hanport import reading as R
from hanport.crc import arc_table  # CRC-16/ARC table, updated byte by byte as the telegram streams in

_ARC = arc_table()

SLASH = 0x2F  # "/" starts a telegram (identification line)
BANG = 0x21  # "!" ends the data; up to 4 hex digits of CRC-16/ARC follow (DSMR 4+; none before)
LF = 0x0A
CR = 0x0D
OPEN = 0x28  # "("
CLOSE = 0x29  # ")"
STAR = 0x2A  # "*" before the unit, or before the OBIS F group (EasyMeter "1-0:1.8.0*255")
CRC_DIGITS = 4
BAUD = 115200  # DSMR 4/5 and the Swedish/Belgian P1 ports: 115200 8N1 (DSMR 5.0.2 P1)
TST_LEN = 13  # DSMR timestamp YYMMDDhhmmssX, X = S (summer time) or W (winter time)
MAX_GROUPS = 16  # value groups read from one line; longer lines (logs, profiles) are skipped
IDENT_MAX = 64

# DSMR unit text -> (DLMS unit enum, power of ten to it) (IEC 62056-6-2 unit enumeration)
UNITS = {
    b"w": (meters.UNIT_W, 0), b"kw": (meters.UNIT_W, 3),
    b"var": (meters.UNIT_VAR, 0), b"kvar": (meters.UNIT_VAR, 3),
    b"wh": (meters.UNIT_WH, 0), b"kwh": (meters.UNIT_WH, 3),
    b"varh": (meters.UNIT_VARH, 0), b"kvarh": (meters.UNIT_VARH, 3),
    b"va": (28, 0), b"kva": (28, 3), b"vah": (31, 0), b"kvah": (31, 3),
    b"a": (meters.UNIT_A, 0), b"v": (meters.UNIT_V, 0),
    b"m3": (13, 0), b"gj": (25, 9), b"hz": (44, 0), b"s": (7, 0),
}
UNIT_NAMES = {13: "m3", 25: "J", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A",
              35: "V", 44: "Hz", 7: "s"}

# M-Bus channels (gas, water, heat meters behind the electricity meter): device type 0-n:24.1.0 uses
# the EN 13757-3 medium codes
MEDIUM = {3: "gas", 4: "heat", 6: "hot_water", 7: "water"}

# FLAG manufacturer ids (first 3 letters of the identification) of meters in the vectors
MANUFACTURERS = {b"ISK": "Iskraemeco", b"KFM": "Kaifa", b"KAM": "Kamstrup", b"LGZ": "Landis+Gyr",
                 b"LGF": "Landis+Gyr", b"SAG": "Sagemcom", b"ESY": "EasyMeter"}

# OBIS -> canonical code: the DLMS table plus the DSMR equipment identifier 0-0:96.1.1
CODES = dict(meters.FIELD_BY_OBIS)
CODES[meters.obis_key(0, 96, 1, 1)] = meters.TEXT_BASE + R.T_METER_ID
GAS_VALUE_DSMR3 = meters.obis_key(0, 24, 3, 0)  # DSMR 2.2/3: header line, value on the next line

# states
_HUNT = 0
_LINE = 1
_CRC = 2

# counters (index into P1Reader.counts)
OK = 0
ERR_CRC = 1  # CRC-16 mismatch: telegram dropped
ERR_NO_CRC = 2  # no CRC while require_crc is set: telegram dropped
ERR_TRUNCATED = 3  # a new "/" before the "!" of the telegram being read: it is dropped
CRC_ABSENT = 4  # telegrams accepted without a CRC (DSMR 2.2/3 send none)
LINES_SKIPPED = 5  # lines not understood or too long (logs, profiles, malformed)
VALUES_DROPPED = 6  # values beyond the Reading's room (items or string pool)
ERR_MALFORMED = 7  # not a telegram: identification not "/XXX...", binary bytes, or no value line
COUNT_NAMES = ("telegrams_ok", "crc_error", "crc_missing", "truncated", "crc_absent", "lines_skipped",
               "values_dropped", "malformed")

_HEX = bytearray(256)
for _i in range(256):
    _HEX[_i] = 255
for _i in range(10):
    _HEX[0x30 + _i] = _i
for _i in range(6):
    _HEX[0x41 + _i] = 10 + _i
    _HEX[0x61 + _i] = 10 + _i


class P1Reader:
    """Feed chunks of a P1 port (115200 8N1); get Readings. Same use as HanReader:
    i = reader.push(buf, i, n); if reader.has_reading: use(reader.reading); or reader.feed(chunk).
    A telegram is checked against its CRC when it has one (DSMR 4+); require_crc=True also drops
    telegrams without one. flush() completes a telegram whose CRC line is cut off at end of input."""

    def __init__(self, line_capacity=1024, require_crc=False, reading=None):
        self.line = bytearray(line_capacity)
        self.n = 0
        self.overflow = False
        self.require_crc = require_crc
        self.reading = reading if reading is not None else R.Reading()
        self.has_reading = False
        self.readings = 0
        self.counts = [0] * len(COUNT_NAMES)
        self.bytes_skipped = 0
        self.last_error = None
        self.state = _HUNT
        self.crc = 0
        self.digits = 0
        self.crc_value = 0
        self.lines = 0
        self.ident = -1  # pool offset of the identification text, -1 = none
        self.ident_len = 0
        self.gs = [0] * MAX_GROUPS
        self.ge = [0] * MAX_GROUPS
        self.obis = bytearray(6)
        self.cont = -1  # item index waiting for a DSMR 2.2/3 value line, -1 = none
        self.cont_unit = b""

    # --- public ---
    def push(self, data, pos=0, end=-1):
        """Consume data[pos:end] up to the end of the next telegram; returns the next index."""
        if end < 0:
            end = len(data)
        self.has_reading = False
        line = self.line
        cap = len(line)
        t = _ARC
        while pos < end:
            b = data[pos]
            pos += 1
            st = self.state
            if st == _LINE:
                if b == SLASH and (self.n == 0 or self.lines == 0 or self.binary):
                    # a new telegram: at a line start, inside the identification line (which holds
                    # no "/"), or after binary bytes (the "/" before was noise)
                    if self.lines and not self.binary:
                        self._error(ERR_TRUNCATED)
                    self._begin()
                    continue
                self.crc = (self.crc >> 8) ^ t[(self.crc ^ b) & 0xFF]
                if b == BANG and self.n == 0:
                    self.state = _CRC
                    self.digits = 0
                    self.crc_value = 0
                elif b == LF:
                    self._line()
                    self.n = 0
                    self.overflow = False
                elif self.n < cap:
                    line[self.n] = b
                    self.n += 1
                    if (b < 0x20 and b != CR) or b > 0x7E:
                        if self.lines:  # the identification may hold a control character
                            self.binary = True
                else:
                    self.overflow = True
                continue
            if st == _HUNT:
                if b == SLASH:
                    self._begin()
                else:
                    self.bytes_skipped += 1
                continue
            h = _HEX[b]
            if h < 16:
                self.crc_value = (self.crc_value << 4) | h
                self.digits += 1
                if self.digits < CRC_DIGITS:
                    continue
            elif b == SLASH:
                pos -= 1  # the next telegram follows at once: leave its "/" for the next call
            if self._finish():
                return pos
        return pos

    def reset(self):
        """Forget a telegram begun: the next one starts at its "/" whatever came before."""
        self.state = _HUNT
        self.has_reading = False

    def flush(self):
        """End of input: complete a telegram that stopped after "!" (no line end). True if it
        gave a reading."""
        self.has_reading = False
        if self.state == _CRC:
            return self._finish()
        return False

    def feed(self, data):
        """Generator over the Readings completed by this chunk (allocates a generator)."""
        return R.readings_from(self, data)

    def counters(self):
        d = {}
        for i in range(len(COUNT_NAMES)):
            d[COUNT_NAMES[i]] = self.counts[i]
        d["readings"] = self.readings
        d["bytes_skipped"] = self.bytes_skipped
        return d

    # --- telegram ---
    def _error(self, code):
        self.counts[code] += 1
        self.last_error = COUNT_NAMES[code]

    def _begin(self):
        self.reading.clear()
        self.state = _LINE
        self.crc = _ARC[SLASH]  # CRC of "/" from init 0
        self.line[0] = SLASH
        self.n = 1
        self.overflow = False
        self.lines = 0
        self.ident = -1
        self.cont = -1
        self.binary = False

    def _finish(self):
        """The CRC part ended: check it, complete the reading. True when a reading is ready."""
        self.state = _HUNT
        if self.digits == 0:
            if self.require_crc:
                self._error(ERR_NO_CRC)
                return False
            self.counts[CRC_ABSENT] += 1
        elif self.crc_value != self.crc:
            self._error(ERR_CRC)
            return False
        rd = self.reading
        if self.binary or not rd.n_items or not self._ident_ok():
            self._error(ERR_MALFORMED)  # e.g. binary frames seen while detecting the protocol
            return False
        if self.ident >= 0:
            i = self._new_item(0)
            if i >= 0:
                rd.item_kind[i] = R.KIND_STR
                rd.item_value[i] = self.ident
                rd.item_len[i] = self.ident_len
        rd.element_count = self.lines
        problem = meters.map_reading(rd, False)
        if problem:
            self.last_error = "map_" + meters.MAP_NAMES[problem]
        rd.list_number = 0  # NVE list numbers do not apply to P1
        rd.manufacturer = None
        if self.ident >= 0:
            if rd.text_item[R.T_LIST_VERSION] < 0:
                rd.text_item[R.T_LIST_VERSION] = rd.n_items - 1
            if self.ident_len >= 3:
                o = self.ident
                p = rd.pool
                flag = bytes((p[o] & 0xDF, p[o + 1] & 0xDF, p[o + 2] & 0xDF))  # upper case
                rd.manufacturer = MANUFACTURERS.get(flag)
        _tariff_totals(rd)
        self.counts[OK] += 1
        self.readings += 1
        self.has_reading = True
        return True

    def _ident_ok(self):
        """The identification starts with the 3-letter manufacturer flag (IEC 62056-21 §6.3.14)."""
        if self.ident < 0 or self.ident_len < 3:
            return False
        pool = self.reading.pool
        for k in range(3):
            c = pool[self.ident + k] & 0xDF
            if not 0x41 <= c <= 0x5A:
                return False
        return True

    # --- lines ---
    def _line(self):
        """One complete line (CR LF not included) of the telegram being read."""
        line = self.line
        n = self.n
        while n and line[n - 1] == CR:
            n -= 1
        self.lines += 1
        if self.overflow:
            self._error(LINES_SKIPPED)
            return
        if self.lines == 1:  # identification "/XXXZ ident"
            k = n - 1 if n - 1 < IDENT_MAX else IDENT_MAX
            self.ident = self._pool(1, k)
            self.ident_len = k
            return
        if not n:
            self.lines -= 1  # blank lines do not count
            return
        if line[0] == OPEN:
            self._continuation(n)
            return
        p = self._parse_obis(n)
        if p < 0:
            self._error(LINES_SKIPPED)
            return
        count = 0
        gs = self.gs
        ge = self.ge
        while p < n and line[p] == OPEN:
            q = p + 1
            while q < n and line[q] != CLOSE:
                q += 1
            if q >= n or count >= MAX_GROUPS:
                self._error(LINES_SKIPPED)
                return
            gs[count] = p + 1
            ge[count] = q
            count += 1
            p = q + 1
        if count == 0:
            self._error(LINES_SKIPPED)
            return
        ob = self.obis
        key = meters.obis_key(ob[0], ob[2], ob[3], ob[4])
        if count == 1:
            self._value(gs[0], ge[0], 1, None)
        elif count == 2 and self._is_tst(gs[0], ge[0]):
            # (capture time)(value): M-Bus channel readings 0-n:24.2.1, Belgian peak 1-0:1.6.0
            self._time_item(gs[0], ge[0])
            self._value(gs[1], ge[1], 1, None)
        elif count == 6 and key == GAS_VALUE_DSMR3 and self._is_tst(gs[0], ge[0], True):
            # DSMR 2.2/3: 0-n:24.3.0(time)(..)(..)(..)(OBIS)(unit), the value on the next line
            self._time_item(gs[0], ge[0])
            self.cont_unit = bytes(line[gs[5] : ge[5]])
            self.cont = self._new_item(1)
        else:
            self._error(LINES_SKIPPED)  # event logs (99.97.0), monthly profiles (98.1.0)

    def _continuation(self, n):
        """A line "(value)": the reading of the DSMR 2.2/3 gas header line before it."""
        i = self.cont
        self.cont = -1
        line = self.line
        q = 1
        while q < n and line[q] != CLOSE:
            q += 1
        if i < 0 or q >= n:
            self._error(LINES_SKIPPED)
            return
        self._fill_value(i, 1, q, self.cont_unit)

    def _parse_obis(self, n):
        """Read "A-B:C.D.E[*F|.F]" into self.obis; returns the offset of the first "(" or -1."""
        line = self.line
        ob = self.obis
        p = 0
        seps = (0x2D, 0x3A, 0x2E, 0x2E)  # - : . .
        for k in range(5):
            v = 0
            q = p
            while q < n and 0x30 <= line[q] <= 0x39 and q - p < 3:
                v = v * 10 + line[q] - 0x30
                q += 1
            if q == p or v > 255:
                return -1
            ob[k] = v
            p = q
            if k < 4:
                if p >= n or line[p] != seps[k]:
                    return -1
                p += 1
        ob[5] = 255
        if p < n and (line[p] == STAR or line[p] == 0x2E):
            v = 0
            q = p + 1
            while q < n and 0x30 <= line[q] <= 0x39 and q - p < 4:
                v = v * 10 + line[q] - 0x30
                q += 1
            if q == p + 1 or v > 255:
                return -1
            ob[5] = v
            p = q
        return p if p < n and line[p] == OPEN else -1

    def _is_tst(self, s, e, bare=False):
        """A DSMR timestamp YYMMDDhhmmssX; bare: also without the S/W suffix (DSMR 2.2/3 gas line,
        the only place where twelve digits are a time and not an identifier)."""
        n = e - s
        if n != TST_LEN and not (bare and n == TST_LEN - 1):
            return False
        line = self.line
        for k in range(s, s + 12):
            if not 0x30 <= line[k] <= 0x39:
                return False
        return n == TST_LEN - 1 or line[e - 1] in (0x53, 0x57)

    def _tst_pool(self, s, e):
        """The timestamp at line[s:e] as a 12-byte COSEM date-time in the pool; offset or -1."""
        rd = self.reading
        o = rd.pool_used
        if o + 12 > len(rd.pool):
            return -1
        line = self.line
        f = [0] * 6  # small: one list per timestamp line
        for k in range(6):
            f[k] = (line[s + 2 * k] - 0x30) * 10 + line[s + 2 * k + 1] - 0x30
        pool = rd.pool
        year = 2000 + f[0]
        pool[o] = year >> 8
        pool[o + 1] = year & 0xFF
        pool[o + 2] = f[1]
        pool[o + 3] = f[2]
        pool[o + 4] = 0xFF  # weekday not specified
        pool[o + 5] = f[3]
        pool[o + 6] = f[4]
        pool[o + 7] = f[5]
        pool[o + 8] = 0xFF  # hundredths not specified
        pool[o + 9] = 0x80  # deviation not specified (local time)
        pool[o + 10] = 0x00
        pool[o + 11] = 0x80 if e - s == TST_LEN and line[e - 1] == 0x53 else 0x00  # clock status: DST
        rd.pool_used = o + 12
        return o

    def _pool(self, s, n):
        """Copy line[s:s+n] to the pool; offset or -1 when full."""
        rd = self.reading
        o = rd.pool_used
        if o + n > len(rd.pool):
            return -1
        pool = rd.pool
        line = self.line
        for k in range(n):
            pool[o + k] = line[s + k]
        rd.pool_used = o + n
        return o

    def _new_item(self, tagged):
        """Next item, named by self.obis when tagged; -1 (counted) when the Reading is full."""
        rd = self.reading
        i = rd.n_items
        if i >= rd.max_items:
            self._error(VALUES_DROPPED)
            return -1
        rd.n_items = i + 1
        rd.item_has_scaler[i] = 0
        rd.item_scaler[i] = 0
        rd.item_unit[i] = 0
        rd.item_len[i] = 0
        rd.item_code[i] = R.NO_CODE
        if tagged:
            ob = self.obis
            o = 6 * i
            for k in range(6):
                rd.item_obis[o + k] = ob[k]
            rd.item_tagged[i] = 1
            rd.item_position[i] = 255
            if ob[0] <= 1 and ob[1] == 0 and ob[5] == 255:  # electricity, not an M-Bus channel
                rd.item_code[i] = CODES.get(meters.obis_key(ob[0], ob[2], ob[3], ob[4]), R.NO_CODE)
        else:
            rd.item_tagged[i] = 0
            rd.item_position[i] = 254
        return i

    def _time_item(self, s, e):
        """An untagged date-time item (the capture time of the value that follows it)."""
        o = self._tst_pool(s, e)
        if o < 0:
            self._error(VALUES_DROPPED)
            return
        i = self._new_item(0)
        if i >= 0:
            rd = self.reading
            rd.item_kind[i] = R.KIND_TIME
            rd.item_value[i] = o
            rd.item_len[i] = 12

    def _value(self, s, e, tagged, unit):
        i = self._new_item(tagged)
        if i >= 0:
            self._fill_value(i, s, e, unit)

    def _fill_value(self, i, s, e, unit):
        """Item i from the group text line[s:e]: a number with unit (exact integer and exponent,
        converted to the DLMS unit), a timestamp, or else the text itself."""
        rd = self.reading
        line = self.line
        p = s
        neg = p < e and line[p] == 0x2D
        if neg:
            p += 1
        v = 0
        digits = 0
        exp = 0
        point = False
        while p < e:
            c = line[p]
            if 0x30 <= c <= 0x39:
                v = v * 10 + c - 0x30
                digits += 1
                if point:
                    exp -= 1
            elif c == 0x2E and not point:
                point = True
            else:
                break
            p += 1
        if digits and p < e and line[p] == STAR:
            unit = bytes(line[p + 1 : e]).lower()
            p = e
        elif unit is not None:
            unit = unit.lower()
        if digits and p == e and unit is not None:
            u = UNITS.get(unit)
            rd.item_kind[i] = R.KIND_INT
            rd.item_value[i] = -v if neg else v
            rd.item_has_scaler[i] = 1
            if u is None:
                rd.item_scaler[i] = exp
                rd.item_unit[i] = 0  # unknown unit: the number is kept, no canonical field
            else:
                rd.item_scaler[i] = exp + u[1]
                rd.item_unit[i] = u[0]
            return
        if self._is_tst(s, e):
            o = self._tst_pool(s, e)
            if o >= 0:
                # the meter clock stays a 12-byte string: meters.map_reading makes it meter_time
                rd.item_kind[i] = R.KIND_STR if rd.item_code[i] == meters.CODE_CLOCK else R.KIND_TIME
                rd.item_value[i] = o
                rd.item_len[i] = 12
                return
        o = self._pool(s, e - s)
        if o < 0:
            rd.n_items -= 1  # no room for the text: the item is dropped
            self._error(VALUES_DROPPED)
            return
        rd.item_kind[i] = R.KIND_STR
        rd.item_value[i] = o
        rd.item_len[i] = e - s


def _tariff_totals(rd):
    """DSMR sends energy per tariff (1-0:1.8.1, 1-0:1.8.2, ...) and no total register: when the
    total 1-0:1.8.0 / 2.8.0 is absent, the canonical kWh field is the exact sum of the tariffs."""
    for field, c in ((R.F_E_IMPORT, 1), (R.F_E_EXPORT, 2)):
        if rd.field_present[field]:
            continue
        total = 0
        exp = 0
        found = 0
        ob = rd.item_obis
        for i in range(rd.n_items):
            o = 6 * i
            if not (rd.item_tagged[i] and ob[o] == 1 and ob[o + 1] == 0 and ob[o + 2] == c and ob[o + 3] == 8
                    and 1 <= ob[o + 4] <= 9 and rd.item_kind[i] == R.KIND_INT and rd.item_has_scaler[i]
                    and rd.item_unit[i] == meters.UNIT_WH):
                continue
            v = rd.item_value[i]
            e = rd.item_scaler[i]
            if not found:
                total = v
                exp = e
            elif e < exp:
                total = total * 10 ** (exp - e) + v
                exp = e
            else:
                total += v * 10 ** (e - exp)
            found += 1
        if found:
            rd.field_value[field] = total
            rd.field_exp[field] = exp + meters.FIELD_SHIFT[field]
            rd.field_present[field] = 1


def channels(rd):
    """M-Bus channel readings of a P1 telegram (gas, water, heat meters): a list of dicts
    {"channel", "medium", "device_type", "id", "obis", "value", "unit", "time"} (allocates)."""
    from hanport import render

    out = []
    ob = rd.item_obis
    types = {}
    ids = {}
    for i in range(rd.n_items):
        o = 6 * i
        if not rd.item_tagged[i] or ob[o] != 0 or ob[o + 1] == 0:
            continue
        ch = ob[o + 1]
        if ob[o + 2] == 24 and ob[o + 3] == 1 and ob[o + 4] == 0:
            v = render.item_value(rd, i)
            try:
                types[ch] = int(v)
            except ValueError:
                pass
        elif ob[o + 2] == 96 and ob[o + 3] == 1 and ob[o + 4] in (0, 1):
            ids[ch] = render.item_value(rd, i)
    for i in range(rd.n_items):
        o = 6 * i
        if not (rd.item_tagged[i] and ob[o] == 0 and ob[o + 1] and ob[o + 2] == 24 and ob[o + 3] in (2, 3)
                and rd.item_kind[i] == R.KIND_INT):
            continue
        ch = ob[o + 1]
        t = None
        if i and not rd.item_tagged[i - 1] and rd.item_kind[i - 1] == R.KIND_TIME:
            t = render.cosem_time(rd.pool, rd.item_value[i - 1])
        dt = types.get(ch)
        out.append({"channel": ch, "medium": MEDIUM.get(dt), "device_type": dt, "id": ids.get(ch),
                    "obis": render.obis_text(ob, o), "value": render.decimal(rd.item_value[i], rd.item_scaler[i]),
                    "unit": UNIT_NAMES.get(rd.item_unit[i]), "time": t})
    return out


def decode_telegram(text):
    """The canonical dict of one P1 telegram (str or bytes), None if it does not check out."""
    if isinstance(text, str):
        try:
            text = text.encode("latin-1")  # one byte per character, as the port sends them
        except (UnicodeError, LookupError):
            text = text.encode()
    r = P1Reader(len(text) + 2)
    for rd in r.feed(text):
        return rd.as_dict()
    if r.flush():
        return r.reading.as_dict()
    return None
