# Meter knowledge as data: which OBIS code is which canonical field, each meter's fixed scalers
# and positional layouts (NEK OBIS List Information sheets); map() applies them to a decoded Reading in place.
from hanport import reading as R
from hanport.buffers import SLICE_COPY, const, copy

# --- OBIS codes (A B C D E F) of the NEK OBIS List Information sheets, as sent: 6 bytes ---
_LIST_VERSION = const(b"\x01\x01\x00\x02\x81\xff")  # 1-1:0.2.129.255
CLOCK = b"\x00\x00\x01\x00\x00\xff"  # 0-0:1.0.0.255 (Kamstrup sends 0-1:1.0.0.255)

def obis_key(a, c, d, e):
    """Lookup key for an OBIS code; B (channel: Aidon 0, Kamstrup 1) and F (=255) are checked apart."""
    return (a << 24) | (c << 16) | (d << 8) | e


# --- DLMS unit enums (IEC 62056-6-2) ---
UNIT_W = 27
UNIT_VAR = 29
UNIT_WH = 30
UNIT_VARH = 32
UNIT_A = 33
UNIT_V = 35

# Canonical numeric fields: DLMS unit of the register and the shift from it to the field's unit
FIELD_UNIT = bytes((UNIT_W, UNIT_W, UNIT_VAR, UNIT_VAR, UNIT_A, UNIT_A, UNIT_A, UNIT_V, UNIT_V, UNIT_V,
                    UNIT_WH, UNIT_WH, UNIT_VARH, UNIT_VARH))
FIELD_SHIFT = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -3, -3, -3, -3)  # energy fields are kWh / kvarh

# OBIS -> code: 0..13 numeric field, TEXT_BASE + text field, CODE_CLOCK
TEXT_BASE = 32
CODE_CLOCK = 64
FIELD_BY_OBIS = {
    obis_key(1, 0, 2, 129): TEXT_BASE + R.T_LIST_VERSION,
    obis_key(0, 96, 1, 0): TEXT_BASE + R.T_METER_ID,
    obis_key(1, 0, 0, 5): TEXT_BASE + R.T_METER_ID,  # Kamstrup 1-1:0.0.5.255
    obis_key(0, 96, 1, 7): TEXT_BASE + R.T_METER_TYPE,
    obis_key(1, 96, 1, 1): TEXT_BASE + R.T_METER_TYPE,  # Kamstrup 1-1:96.1.1.255
    obis_key(0, 1, 0, 0): CODE_CLOCK,
    obis_key(1, 1, 7, 0): R.F_P_IMPORT,
    obis_key(1, 2, 7, 0): R.F_P_EXPORT,
    obis_key(1, 3, 7, 0): R.F_Q_IMPORT,
    obis_key(1, 4, 7, 0): R.F_Q_EXPORT,
    obis_key(1, 31, 7, 0): R.F_I_L1,
    obis_key(1, 51, 7, 0): R.F_I_L2,
    obis_key(1, 71, 7, 0): R.F_I_L3,
    obis_key(1, 32, 7, 0): R.F_U_L1,
    obis_key(1, 52, 7, 0): R.F_U_L2,
    obis_key(1, 72, 7, 0): R.F_U_L3,
    obis_key(1, 1, 8, 0): R.F_E_IMPORT,
    obis_key(1, 2, 8, 0): R.F_E_EXPORT,
    obis_key(1, 3, 8, 0): R.F_R_IMPORT,
    obis_key(1, 4, 8, 0): R.F_R_EXPORT,
}

# Fixed scalers (power of ten to W, var, A, V, Wh, varh) per field, for meters that send none.
#                   P+ P- Q+ Q-  IL1 IL2 IL3 UL1 UL2 UL3 A+ A- R+ R-
_KAMSTRUP_SCALERS = const((0, 0, 0, 0, -2, -2, -2, 0, 0, 0, 1, 1, 1, 1))  # Kamstrup HAN-NVE rev 3.1
_KAMSTRUP_CT_SCALERS = const((0, 0, 0, 0, -3, -3, -3, 0, 0, 0, 1, 1, 1, 1))  # type 685x CT meters
_KAIFA_SCALERS = const((0, 0, 0, 0, -3, -3, -3, -1, -1, -1, 0, 0, 0, 0))  # Kaifa KFM_001 OBIS sheet


def _kaifa_layouts():
    # Kaifa KFM_001 sends no OBIS codes: the element count names the list, the position the value.
    # (Built once at import; the names below are locals, so they take no RAM on a board afterwards.)
    meter_id = b"\x00\x00\x60\x01\x00\xff"  # 0-0:96.1.0.255
    meter_type = b"\x00\x00\x60\x01\x07\xff"  # 0-0:96.1.7.255
    p_import = b"\x01\x00\x01\x07\x00\xff"  # 1-0:1.7.0.255 active power +
    p_export = b"\x01\x00\x02\x07\x00\xff"  # 1-0:2.7.0.255 active power -
    q_import = b"\x01\x00\x03\x07\x00\xff"  # 1-0:3.7.0.255 reactive power +
    q_export = b"\x01\x00\x04\x07\x00\xff"  # 1-0:4.7.0.255 reactive power -
    i_l1 = b"\x01\x00\x1f\x07\x00\xff"  # 1-0:31.7.0.255
    i_l2 = b"\x01\x00\x33\x07\x00\xff"  # 1-0:51.7.0.255
    i_l3 = b"\x01\x00\x47\x07\x00\xff"  # 1-0:71.7.0.255
    u_l1 = b"\x01\x00\x20\x07\x00\xff"  # 1-0:32.7.0.255
    u_l2 = b"\x01\x00\x34\x07\x00\xff"  # 1-0:52.7.0.255
    u_l3 = b"\x01\x00\x48\x07\x00\xff"  # 1-0:72.7.0.255
    e_import = b"\x01\x00\x01\x08\x00\xff"  # 1-0:1.8.0.255 cumulative active energy +
    e_export = b"\x01\x00\x02\x08\x00\xff"  # 1-0:2.8.0.255
    r_import = b"\x01\x00\x03\x08\x00\xff"  # 1-0:3.8.0.255 cumulative reactive energy +
    r_export = b"\x01\x00\x04\x08\x00\xff"  # 1-0:4.8.0.255
    head = (_LIST_VERSION, meter_id, meter_type, p_import, p_export, q_import, q_export)
    one_phase = head + (i_l1, u_l1)
    three_phase = head + (i_l1, i_l2, i_l3, u_l1, u_l2, u_l3)
    hourly = (CLOCK, e_import, e_export, r_import, r_export)
    return {
        1: (p_import,),  # list 1
        9: one_phase,  # list 2, one phase
        13: three_phase,  # list 2, three phase
        14: one_phase + hourly,  # list 3, one phase
        18: three_phase + hourly,  # list 3, three phase
    }




class Meter:
    """One meter family: how to recognise it and how to scale what it sends."""

    def __init__(self, manufacturer, list_id, scalers, layouts=None, type_prefix=None, hourly_counters=True):
        self.manufacturer = manufacturer
        # True: the energy counters come once an hour, in list 3 (NVE), which the accounting books; False:
        # in every push (1-10 s, outside Norway): such messages are list 2, but for the push meters_eu takes
        # for the hour's list (meters_eu.identify sets this per message)
        self.hourly_counters = hourly_counters
        self.list_id = list_id  # prefix of the list version identifier
        self.scalers = scalers  # None: scalers come with each value in the frame
        self.type_prefix = type_prefix  # prefix of the meter type, for a variant of a family
        # layouts (untagged lists: element count -> OBIS code per position), flattened once:
        # count -> 6*count OBIS bytes, count -> canonical codes
        self.layout_obis = {}
        self.layout_codes = {}
        for count, codes in (layouts or {}).items():
            self.layout_obis[count] = b"".join(codes)
            self.layout_codes[count] = bytes(FIELD_BY_OBIS.get(obis_key(c[0], c[2], c[3], c[4]), R.NO_CODE)
                                             for c in codes)


AIDON = Meter("Aidon", b"AIDON_", None)
KAMSTRUP_CT = Meter("Kamstrup", b"Kamstrup_", _KAMSTRUP_CT_SCALERS, type_prefix=b"685")
KAMSTRUP = Meter("Kamstrup", b"Kamstrup_", _KAMSTRUP_SCALERS)
KAIFA = Meter("Kaifa", b"KFM_", _KAIFA_SCALERS, _kaifa_layouts())
del _kaifa_layouts  # its bytecode leaves the heap
LANDIS_GYR = Meter("Landis+Gyr", b"EMBRIQ", None)  # E350, Aidon-like layout
GENERIC = Meter(None, b"", None)  # unknown meter: values by OBIS code, scaled only if the frame says

METERS = (AIDON, KAMSTRUP_CT, KAMSTRUP, KAIFA, LANDIS_GYR)
# Lists that carry no identifier: Kaifa list 1 (one bare value), Aidon list 1 and the Swedish Aidon list
# (OBIS-tagged structures with scalers from the first value on); anything else stays unnamed
ANONYMOUS_POSITIONAL = KAIFA
ANONYMOUS_TAGGED = AIDON

# --- results of map_reading (index into the reader's mapping counters) ---
_MAP_OK = const(0)
_MAP_UNIT_MISMATCH = const(1)  # a value's unit is not the one its OBIS code calls for: left out of the fields
_MAP_UNKNOWN_SCALE = const(2)  # a canonical value without scaler from the frame or the meter table: left out
_MAP_UNKNOWN_LAYOUT = const(3)  # untagged values whose element count no table knows
MAP_NAMES = ("ok", "unit_mismatch", "unknown_scale", "unknown_layout")


def starts_with(pool, offset, length, prefix):
    """True when pool[offset:offset + length] starts with prefix (no slice made)."""
    n = len(prefix)
    if length < n:
        return False
    for k in range(n):
        if pool[offset + k] != prefix[k]:
            return False
    return True


def _printable(rd, i):
    """True when string item i is printable ASCII (a list identifier, not binary like a date-time)."""
    pool = rd.pool
    o = rd.item_value[i]
    for k in range(o, o + rd.item_len[i]):
        b = pool[k]
        if b < 0x20 or b > 0x7E:
            return False
    return True


def _text_item(rd, code):
    """Index of the first string item whose canonical code is `code`, -1 if none."""
    codes = rd.item_code
    kinds = rd.item_kind
    for i in range(rd.n_items):
        if codes[i] == code and kinds[i] == R.KIND_STR:
            return i
    return -1


def _set_obis(rd, i, code):
    o = 6 * i
    ob = rd.item_obis
    copy(ob, o, code, 0, 6)
    rd.item_tagged[i] = 2


def _name_by_position(rd, obis, layout_codes):
    """Give each untagged item the OBIS code and canonical code of its position in the layout."""
    n = rd.n_items
    if SLICE_COPY and n == len(layout_codes):  # CPython, no null slots: positions 0..n-1
        rd.item_obis[0 : 6 * n] = obis
        rd.item_code[0:n] = layout_codes
        rd.item_tagged[0:n] = b"\x02" * n
        return
    ob = rd.item_obis
    for i in range(n):
        p = rd.item_position[i]
        if p < len(layout_codes):
            o = 6 * i
            s = 6 * p
            for k in range(6):
                ob[o + k] = obis[s + k]
            rd.item_code[i] = layout_codes[p]
            rd.item_tagged[i] = 2


def identify(rd, positional):
    """Pick the Meter for a decoded body (list identifier first, then layout)."""
    pool = rd.pool
    if (rd.n_items and rd.item_kind[0] == R.KIND_STR and not rd.item_tagged[0] and rd.item_position[0] == 0
            and _printable(rd, 0)):
        lid = 0  # bare leading text: Kamstrup list id, Kaifa list id
    else:
        lid = _text_item(rd, TEXT_BASE + R.T_LIST_VERSION)
    if lid >= 0:
        off = rd.item_value[lid]
        ln = rd.item_len[lid]
        for m in METERS:
            if not starts_with(pool, off, ln, m.list_id):
                continue
            if m.type_prefix is not None:
                tid = _text_item(rd, TEXT_BASE + R.T_METER_TYPE)
                if tid < 0 or not starts_with(pool, rd.item_value[tid], rd.item_len[tid], m.type_prefix):
                    continue
            return m
        return GENERIC
    if positional:
        return ANONYMOUS_POSITIONAL if rd.element_count == 1 else GENERIC
    if rd.n_items and rd.item_tagged[0] == 1:
        # Aidon's identifier-less lists (list 1, Swedish list): every value in its own
        # {OBIS, value, {scaler, unit}} structure from the first one on
        for i in range(rd.n_items):
            if rd.item_has_scaler[i]:
                return ANONYMOUS_TAGGED
    return GENERIC


_eu = None  # hanport.meters_eu once loaded (False: not installed)


def _foreign(rd, positional):
    """The tables of meters outside Norway (meters_eu.py), imported with the first frame no Norwegian table
    knows and kept for the next ones: an Aidon, Kaifa or Kamstrup never loads them."""
    global _eu
    if _eu is None:
        try:
            from hanport import meters_eu
        except ImportError:  # a build without it: values by OBIS code only, as before
            meters_eu = False
        except MemoryError:  # no room for its code and names now: values by OBIS code, tried again next frame
            return GENERIC  # (a stock ESP32 image's heap with the app as .mpy files: docs/deploy.md)
        _eu = meters_eu
    return _eu.identify(rd, positional) if _eu else GENERIC


def map_reading(rd, positional):
    """Name untagged values, scale and map every value to the canonical fields. Returns a MAP_ code
    (the first problem seen; the fields that could be mapped are mapped either way)."""
    result = _MAP_OK
    n = rd.n_items
    if not positional and n and not rd.item_tagged[0] and rd.item_kind[0] == R.KIND_STR:
        if _printable(rd, 0):
            _set_obis(rd, 0, _LIST_VERSION)  # Kamstrup: the list id comes first, without its OBIS code
            rd.item_code[0] = TEXT_BASE + R.T_LIST_VERSION
        elif rd.item_len[0] == 12:
            _set_obis(rd, 0, CLOCK)  # EVN, L+G E450: the body starts with a bare COSEM date-time
            rd.item_code[0] = CODE_CLOCK
    meter = identify(rd, positional)
    if meter is GENERIC:
        meter = _foreign(rd, positional)
        n = rd.n_items  # (meters_eu may give a list identifier an item of its own)
    rd.manufacturer = meter.manufacturer
    if positional:
        obis = meter.layout_obis.get(rd.element_count)
        if obis is None:
            result = _MAP_UNKNOWN_LAYOUT
        else:
            layout_codes = meter.layout_codes[rd.element_count]
            _name_by_position(rd, obis, layout_codes)
    scalers = meter.scalers
    kinds = rd.item_kind
    codes = rd.item_code
    present = rd.field_present
    has_scaler = rd.item_has_scaler
    item_scaler = rd.item_scaler
    item_unit = rd.item_unit
    no_code = R.NO_CODE
    for i in range(n):
        code = codes[i]
        if code == no_code:
            continue
        kind = kinds[i]
        if code < R.N_NUMERIC:
            if kind != R.KIND_INT or present[code]:
                continue
            if has_scaler[i]:
                if item_unit[i] != FIELD_UNIT[code]:
                    result = result or _MAP_UNIT_MISMATCH
                    continue
            elif scalers is not None:
                item_scaler[i] = scalers[code]
                item_unit[i] = FIELD_UNIT[code]
                has_scaler[i] = 1
            else:
                result = result or _MAP_UNKNOWN_SCALE
                continue
            rd.field_value[code] = rd.item_value[i]
            rd.field_exp[code] = item_scaler[i] + FIELD_SHIFT[code]
            present[code] = 1
        elif code == CODE_CLOCK:
            if kind == R.KIND_STR and rd.item_len[i] == 12 and rd.time_offset < 0:
                kinds[i] = R.KIND_TIME
                rd.time_offset = rd.item_value[i]
        elif kind == R.KIND_STR:
            t = code - TEXT_BASE
            if rd.text_item[t] < 0:
                rd.text_item[t] = i
    if rd.time_offset < 0:
        rd.time_offset = rd.header_time
    fp = rd.field_present
    if meter.hourly_counters and (fp[R.F_E_IMPORT] or fp[R.F_E_EXPORT] or fp[R.F_R_IMPORT] or fp[R.F_R_EXPORT]):
        rd.list_number = 3
    elif n == 1 and fp[R.F_P_IMPORT]:
        rd.list_number = 1
    else:
        rd.list_number = 2
    return result
