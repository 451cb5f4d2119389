# Push lists of meters outside Norway (Austrian Iskraemeco AM550 and Landis+Gyr E450 lists, DLMS push lists
# that name their capture objects), loaded by meters.py only for a frame no Norwegian table knows.
from hanport import meters as M
from hanport import reading as R
from hanport.buffers import const, copy

# --- OBIS codes (IEC 62056-6-1), as sent: 6 bytes ---
_E_IMPORT = b"\x01\x00\x01\x08\x00\xff"  # 1-0:1.8.0.255 active energy +A, Wh
_E_EXPORT = b"\x01\x00\x02\x08\x00\xff"  # 1-0:2.8.0.255 active energy -A, Wh
_R_IMPORT = b"\x01\x00\x03\x08\x00\xff"  # 1-0:3.8.0.255 reactive energy +R, varh
_R_EXPORT = b"\x01\x00\x04\x08\x00\xff"  # 1-0:4.8.0.255 reactive energy -R, varh
_P_IMPORT = b"\x01\x00\x01\x07\x00\xff"  # 1-0:1.7.0.255 active power +P, W
_P_EXPORT = b"\x01\x00\x02\x07\x00\xff"  # 1-0:2.7.0.255 active power -P, W
_Q_IMPORT = b"\x01\x00\x03\x07\x00\xff"  # 1-0:3.7.0.255 reactive power +Q, var
_Q_EXPORT = b"\x01\x00\x04\x07\x00\xff"  # 1-0:4.7.0.255 reactive power -Q, var

# OBIS groups C, D of objects that name a list or a meter (IEC 62056-6-2 / DLMS UA Blue Book 4.4, 4.5)
_PUSH_SETUP_C = const(25)  # 0-b:25.9.0.255 push setup (class 40): its logical name identifies the list
_PUSH_SETUP_D = const(9)
_DEVICE_NAME_C = const(42)  # 0-0:42.0.0.255 COSEM logical device name: 3-letter FLAG id + serial number

# These meters send their counters in every push (1-10 s), not once an hour as NVE's list 3. The first push
# of each hour of the meter clock (its date, hour and DST flag: the repeated autumn hour is another hour),
# within _HOUR_PUSH_S seconds of the full hour, stands for the hour's list: list 3, whose counters the
# accounting books. A first push later than that (pushes lost around the boundary) books nothing: the
# accounting spreads the hours between two booked ones as estimated.
_HOUR_PUSH_S = const(20)


def _with_hourly(meter):
    """meter, with meter.hourly: the same meter for the push that stands for an hourly list."""
    h = M.Meter(meter.manufacturer, b"", meter.scalers)
    h.layout_obis = meter.layout_obis
    h.layout_codes = meter.layout_codes
    meter.hourly = h
    return meter


# The Austrian lists send energy in Wh / varh and power in W / var, no scaler: 10**0 for every field
# they carry (P, Q, A, R; they carry no current or voltage).
#           P+ P- Q+ Q-  IL1 IL2 IL3 UL1 UL2 UL3 A+ A- R+ R-
_AT_SCALERS = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

# Wiener Netze customer interface (IR, IEC 62056-21 optical port), the same list from the Iskraemeco
# AM550 and the Landis+Gyr E450: structure of 9 = meter clock (date-time), +A, -A, +R, -R, +P, -P, +Q, -Q,
# each a double-long-unsigned (pocki80's Wiener Netze notes as copied in machinekoder/wn_smart_reader;
# Noschvie/shrdzm Device_IM350.cpp "e450IRWien": 1.8.0 2.8.0 3.8.0 4.8.0 1.7.0 2.7.0 3.7.0 4.7.0).
_WN_COUNT = const(9)
WIENER_NETZE = _with_hourly(M.Meter(None, b"", _AT_SCALERS, hourly_counters=False, layouts={
    _WN_COUNT: (M.CLOCK, _E_IMPORT, _E_EXPORT, _R_IMPORT, _R_EXPORT, _P_IMPORT, _P_EXPORT, _Q_IMPORT, _Q_EXPORT)}))

# Kärnten Netz customer interface (P1, RJ12), Iskraemeco AM550: structure of 12 = the push setup's logical
# name 0-6:25.9.0.255 (the list identifier), meter number (visible digits), time (4), date (5), +A, -A, +R, -R,
# +P, -P (double-long-unsigned, Wh varh W), two customer-information strings (pocki80's Kärnten Netz notes in
# machinekoder/wn_smart_reader; Noschvie/shrdzm Device_IM350.cpp "AM550/IM350 Carinthia"). The walker
# reads the leading OBIS octet-string as the name of the meter number: the list is re-split here.
_KN_COUNT = const(12)
_KN_LIST = b"\x00\x06\x19\x09\x00\xff"  # 0-6:25.9.0.255
_KN_VALUES = (_E_IMPORT, _E_EXPORT, _R_IMPORT, _R_EXPORT, _P_IMPORT, _P_EXPORT)
_KN_FIRST_VALUE = const(4)  # item of +A once the list identifier has its own item: list id, meter no, time, date
KAERNTEN_NETZ = _with_hourly(M.Meter(None, b"", _AT_SCALERS, hourly_counters=False))
_KN_CODES = bytes(M.FIELD_BY_OBIS[M.obis_key(c[0], c[2], c[3], c[4])] for c in _KN_VALUES)

# FLAG manufacturer ids (DLMS UA) that open a COSEM logical device name and a system title (IDIS: FLAG id
# + 5 bytes): the meter's maker
_FLAG = ((b"ISK", "Iskraemeco"), (b"LGZ", "Landis+Gyr"))
# (FLAG id, Meter of a list that names its values by OBIS: the frame sends no scaler, see _UNSCALED_KNOWN)
_NAMED = tuple((_f, _with_hourly(M.Meter(_name, b"", None, hourly_counters=False))) for _f, _name in _FLAG)

# Push lists of these makers that name their values by OBIS send no scaler; energy comes in Wh / varh
# and power in W / var (10**0) in every public source: scs/smartmeter-datacollector (Swiss VSE list of
# the L+G E360, E450, E570 and Iskraemeco AM550, its tests' values), rddl-network/EnergyAgent (Austrian
# E450, "49.928" kWh of 1.8.0 = 49928), horfic/esphome-dlms (Stromnetz Graz E450, "12001890 / 1000 =
# 12001,890kWh", "830W"). Current and voltage: the same Swiss list is 0.1 V on the E360 and AM550 but
# 1 V on the E450 and E570, 0.01 A on the E450 but 1 A on the E570, and the frame does not name the
# model: their values stay in obis only (unknown_scale).
#                P+ P- Q+ Q-  IL1 IL2 IL3 UL1 UL2 UL3 A+ A- R+ R-
_UNSCALED_KNOWN = b"\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01"


def identify(rd, positional):
    """The Meter for a body no Norwegian table knows, after naming what this module knows of it
    (meters.map_reading then scales); meters.GENERIC when nothing here fits. Meter.hourly for the push
    that stands for an hourly list."""
    meter = _identify(rd, positional)
    if meter is M.GENERIC:
        return meter
    o = rd.item_value[0] if meter is WIENER_NETZE else _clock(rd)
    return meter.hourly if _first_push_of_hour(rd, o) else meter


def _clock(rd):
    """Pool offset of the list's date-time (0-0:1.0.0.255), else of the APDU header's; -1 if none."""
    for i in range(rd.n_items):
        if rd.item_code[i] == M.CODE_CLOCK and rd.item_kind[i] == R.KIND_STR and rd.item_len[i] == 12:
            return rd.item_value[i]
    return rd.header_time


def _first_push_of_hour(rd, o):
    """True for the first push of an hour of the meter clock at pool offset o, within _HOUR_PUSH_S of
    the full hour. The hour last seen is kept on the Reading (one per reader)."""
    if o < 0:
        return False
    p = rd.pool
    year = p[o] << 8 | p[o + 1]
    hour = p[o + 5]
    minute = p[o + 6]
    second = p[o + 7]
    if year < 2000 or year > 2199 or hour > 23 or minute > 59:  # (the key stays a small int on 32-bit)
        return False
    key = (((year * 13 + p[o + 2]) * 32 + p[o + 3]) * 24 + hour) * 2 + (p[o + 11] >> 7)
    last = getattr(rd, "eu_hour", -1)
    rd.eu_hour = key
    return key != last and minute == 0 and (second < _HOUR_PUSH_S or second == 0xFF)


def _identify(rd, positional):
    n = rd.n_items
    if positional:
        if rd.element_count == _WN_COUNT and n == _WN_COUNT and _is_clock(rd, 0) and _ints(rd, 1, n):
            return WIENER_NETZE
        return M.GENERIC
    if (rd.element_count == _KN_COUNT and n == _KN_COUNT - 1 and rd.item_tagged[0] == 1
            and M.starts_with(rd.item_obis, 0, 6, _KN_LIST) and rd.item_kind[0] == R.KIND_STR and not rd.item_tagged[1]
            and _ints(rd, _KN_FIRST_VALUE - 1, _KN_FIRST_VALUE - 1 + len(_KN_VALUES))):
        return _kaernten(rd)
    return _named(rd)


def _is_clock(rd, i):
    return rd.item_kind[i] == R.KIND_STR and rd.item_len[i] == 12 and not rd.item_tagged[i]


def _ints(rd, i, j):
    """True when items i..j-1 are untagged 4-byte integers (double-long-unsigned)."""
    for k in range(i, j):
        if rd.item_kind[k] != R.KIND_INT or rd.item_len[k] != 4 or rd.item_tagged[k]:
            return False
    return True


def _kaernten(rd):
    """Give the list identifier its own item (its OBIS bytes copied to the pool, as the frame sent them
    in its first element), keep the meter number as meter_id, name the six registers."""
    o = rd.pool_used
    if o + 6 > len(rd.pool):
        return M.GENERIC
    n = rd.n_items
    for i in range(n, 0, -1):  # every item one place up
        _move(rd, i - 1, i)
    rd.n_items = n + 1
    ob = rd.item_obis
    copy(rd.pool, o, ob, 0, 6)  # item 0 keeps its OBIS: the frame's 0-6:25.9.0.255
    rd.pool_used = o + 6
    rd.item_value[0] = o
    rd.item_len[0] = 6
    rd.item_code[0] = M.TEXT_BASE + R.T_LIST_VERSION
    rd.item_tagged[1] = 0  # the meter number: no OBIS code is published for it
    rd.item_position[1] = 0
    rd.item_code[1] = M.TEXT_BASE + R.T_METER_ID
    for k in range(len(_KN_VALUES)):
        i = _KN_FIRST_VALUE + k
        copy(ob, 6 * i, _KN_VALUES[k], 0, 6)
        rd.item_tagged[i] = 2
        rd.item_code[i] = _KN_CODES[k]
    return KAERNTEN_NETZ


def _move(rd, a, b):
    """Copy item a onto item b (all its columns)."""
    copy(rd.item_obis, 6 * b, rd.item_obis, 6 * a, 6)
    rd.item_tagged[b] = rd.item_tagged[a]
    rd.item_position[b] = rd.item_position[a]
    rd.item_kind[b] = rd.item_kind[a]
    rd.item_value[b] = rd.item_value[a]
    rd.item_len[b] = rd.item_len[a]
    rd.item_has_scaler[b] = rd.item_has_scaler[a]
    rd.item_scaler[b] = rd.item_scaler[a]
    rd.item_unit[b] = rd.item_unit[a]
    rd.item_code[b] = rd.item_code[a]


def _named(rd):
    """A list whose values the frame names by OBIS (push list with capture objects, OBIS/value pairs):
    the push setup's logical name is the list identifier, the COSEM logical device name the meter id and
    its FLAG id the maker (else the FLAG id of the ciphered frame's system title). For a known maker,
    energy and power get the scale its lists use (_UNSCALED_KNOWN); other values keep their OBIS codes
    only (meters.map_reading counts unknown_scale)."""
    meter = M.GENERIC
    ob = rd.item_obis
    for i in range(rd.n_items):
        if rd.item_tagged[i] != 1 or rd.item_kind[i] != R.KIND_STR or ob[6 * i] != 0 or ob[6 * i + 5] != 0xFF:
            continue
        c = ob[6 * i + 2]
        if c == _PUSH_SETUP_C and ob[6 * i + 3] == _PUSH_SETUP_D and ob[6 * i + 4] == 0:
            if rd.item_len[i] == 6:
                rd.item_code[i] = M.TEXT_BASE + R.T_LIST_VERSION
        elif c == _DEVICE_NAME_C and ob[6 * i + 1] == 0 and ob[6 * i + 3] == 0 and ob[6 * i + 4] == 0:
            rd.item_code[i] = M.TEXT_BASE + R.T_METER_ID
            meter = _maker(rd.pool, rd.item_value[i], rd.item_len[i])
    if meter is M.GENERIC:
        env = getattr(rd, "envelope", None)  # set by reader.open_envelope
        if env is not None and env.ciphered:
            meter = _maker(env.system_title, 0, len(env.system_title))
    if meter is not M.GENERIC:
        _scale_known(rd)
    return meter


def _maker(buf, o, n):
    """The Meter of the FLAG id that opens buf[o:o + n], GENERIC if none here."""
    for f, m in _NAMED:
        if M.starts_with(buf, o, n, f):
            return m
    return M.GENERIC


def _scale_known(rd):
    """Give each integer energy and power value the scaler and unit its maker's lists use, as if the
    frame had sent them (a scaler the frame did send is kept)."""
    codes = rd.item_code
    for i in range(rd.n_items):
        code = codes[i]
        if code < R.N_NUMERIC and _UNSCALED_KNOWN[code] and rd.item_kind[i] == R.KIND_INT and not rd.item_has_scaler[i]:
            rd.item_has_scaler[i] = 1
            rd.item_scaler[i] = 0
            rd.item_unit[i] = M.FIELD_UNIT[code]
