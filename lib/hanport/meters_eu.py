# Push lists of meters outside Norway (Austrian Iskraemeco AM550 and Landis+Gyr E450 lists, DLMS push lists
# that name their capture objects), loaded by meters.py only for a frame no Norwegian table knows.
from hanport import meters as M
from hanport import reading as R
from hanport.buffers import const, copy

# Every module-level name is interned for good when this module loads (a qstr), and a stock ESP32 image's
# heap has room for ~38 more names than a Norwegian meter interns before MicroPython's next qstr pool
# (~8 KB at once): so the tables are one tuple, _T, and the constants const() (no name kept).

# OBIS groups C, D of objects that name a list or a meter (IEC 62056-6-2 / DLMS UA Blue Book 4.4, 4.5)
_PUSH_SETUP_C = const(25)  # 0-b:25.9.0.255 push setup (class 40): its logical name identifies the list
_PUSH_SETUP_D = const(9)
_DEVICE_NAME_C = const(42)  # 0-0:42.0.0.255 COSEM logical device name: 3-letter FLAG id + serial number

# Wiener Netze customer interface (IR, IEC 62056-21 optical port), the same list from the Iskraemeco
# AM550 and the Landis+Gyr E450: structure of 9 = meter clock (date-time), +A, -A, +R, -R, +P, -P, +Q, -Q,
# each a double-long-unsigned in Wh, varh, W, var, no scaler (pocki80's Wiener Netze notes as copied in
# machinekoder/wn_smart_reader; Noschvie/shrdzm Device_IM350.cpp "e450IRWien": 1.8.0 2.8.0 3.8.0 4.8.0
# 1.7.0 2.7.0 3.7.0 4.7.0).
_WN_COUNT = const(9)

# Kärnten Netz customer interface (P1, RJ12), Iskraemeco AM550: structure of 12 = the push setup's logical
# name 0-6:25.9.0.255 (the list identifier), meter number (visible digits), time (4), date (5), +A, -A, +R, -R,
# +P, -P (double-long-unsigned, Wh varh W), two customer-information strings (pocki80's Kärnten Netz notes in
# machinekoder/wn_smart_reader; Noschvie/shrdzm Device_IM350.cpp "AM550/IM350 Carinthia"). The walker
# reads the leading OBIS octet-string as the name of the meter number: the list is re-split here.
_KN_COUNT = const(12)
# Siemens IM350 of E-Werk Wels (eww): the same list without the two strings, structure of 10
# (xeniter/eww_ewerk_wels_smartmeter_readout decode_example_output.txt; Noschvie/shrdzm Device_IM350.cpp
# "IM350 Wels", the same parser as Kärnten Netz's)
_WELS_COUNT = const(10)
_KN_VALUES = const(6)  # +A -A +R -R +P -P: the first six codes of build()'s obis
_KN_FIRST_VALUE = const(4)  # item of +A once the list identifier has its own item: list id, meter no, time, date

# Lists that name their values by OBIS send no scaler; for the makers below, energy comes in Wh / varh
# and power in W / var (10**0) in every public source of their lists: scs/smartmeter-datacollector (Swiss
# VSE list of the L+G E360, E450, E570 and Iskraemeco AM550, its tests' values), rddl-network/EnergyAgent
# (Austrian E450, "49.928" kWh of 1.8.0 = 49928), horfic/esphome-dlms (Stromnetz Graz E450, "12001890 /
# 1000 = 12001,890kWh", "830W"). Current and voltage: the same Swiss list is 0.1 V on the E360 and AM550
# but 1 V on the E450 and E570, 0.01 A on the E450 but 1 A on the E570, and the frame does not name the
# model: their values stay in obis only (unknown_scale). The maker: the FLAG id (DLMS UA) that opens the
# COSEM logical device name, else a ciphered frame's system title (IDIS: FLAG id + 5 bytes).

# These meters send their counters in every push (1-10 s), not once an hour as NVE's list 3. The first push
# of each hour of the meter clock (its date, hour and DST flag: the repeated autumn hour is another hour),
# within _HOUR_PUSH_S seconds of the full hour, stands for the hour's list: identify() sets its Meter's
# hourly_counters for that push (meters.map_reading makes it list 3, whose counters the accounting books).
# A first push later than that (pushes lost around the boundary) books nothing: the accounting spreads the
# hours between two booked ones as estimated.
_HOUR_PUSH_S = const(20)


def build():
    # _T, built once at import ("build": a name the app interns anyway; the names in here are locals, so
    # they are not interned)
    # --- OBIS codes (IEC 62056-6-1) as sent, 6 bytes each, in the Wiener Netze order (units of these lists) ---
    # 1-0:1.8.0.255 +A Wh, 1-0:2.8.0.255 -A Wh, 1-0:3.8.0.255 +R varh, 1-0:4.8.0.255 -R varh,
    # 1-0:1.7.0.255 +P W, 1-0:2.7.0.255 -P W, 1-0:3.7.0.255 +Q var, 1-0:4.7.0.255 -Q var;
    # then 0-6:25.9.0.255, the push setup that names the Kärnten Netz list
    obis = (b"\x01\x00\x01\x08\x00\xff\x01\x00\x02\x08\x00\xff\x01\x00\x03\x08\x00\xff\x01\x00\x04\x08\x00\xff"
            b"\x01\x00\x01\x07\x00\xff\x01\x00\x02\x07\x00\xff\x01\x00\x03\x07\x00\xff\x01\x00\x04\x07\x00\xff"
            b"\x00\x06\x19\x09\x00\xff")
    at = (0,) * R.N_NUMERIC  # the Austrian lists: Wh, varh, W, var, no scaler (and no current or voltage)
    wn = M.Meter(None, b"", at, hourly_counters=False, layouts={
        _WN_COUNT: (M.CLOCK,) + tuple(obis[6 * k : 6 * k + 6] for k in range(8))})
    kn = M.Meter(None, b"", at, hourly_counters=False)
    known = bytearray(R.N_NUMERIC)  # the fields whose scale the makers' named lists fix (above)
    for f in (R.F_P_IMPORT, R.F_P_EXPORT, R.F_Q_IMPORT, R.F_Q_EXPORT, R.F_E_IMPORT, R.F_E_EXPORT,
              R.F_R_IMPORT, R.F_R_EXPORT):
        known[f] = 1
    kn_codes = bytes(M.FIELD_BY_OBIS[M.obis_key(obis[6 * k], obis[6 * k + 2], obis[6 * k + 3],
                                                obis[6 * k + 4])] for k in range(_KN_VALUES))
    # (a str made from bytes: the name "Iskraemeco" is not interned for good as a literal would be)
    return (wn, kn, M.Meter(b"Iskraemeco".decode(), b"", None, hourly_counters=False),
            M.Meter("Landis+Gyr", b"", None, hourly_counters=False), kn_codes, bytes(known),
            obis[48:], b"ISK", b"LGZ", obis)  # (48: 0-6:25.9.0.255 in obis)


# _T: the Meters of the Wiener Netze and Kärnten Netz lists and of the named lists of Iskraemeco and of
# Landis+Gyr; the Kärnten Netz values' canonical codes; 1 per field whose scale the named lists' makers
# fix; the Kärnten Netz list identifier; the FLAG ids of Iskraemeco and Landis+Gyr; the OBIS codes above
_T = build()
del build
_T_WN = const(0)
_T_KN = const(1)
_T_ISK = const(2)
_T_LGZ = const(3)
_T_KN_CODES = const(4)
_T_KNOWN = const(5)
_T_KN_LIST = const(6)
_T_FLAG_ISK = const(7)
_T_FLAG_LGZ = const(8)
_T_OBIS = const(9)


def identify(rd, positional):
    """The Meter for a body no Norwegian table knows, after naming what this module knows of it
    (meters.map_reading then scales); meters.GENERIC when nothing here fits. The Meter's hourly_counters
    is set for this message: True for the push that stands for an hourly list."""
    n = rd.n_items
    kind = rd.item_kind
    o = -1  # pool offset of the meter clock
    if positional:  # Wiener Netze: the clock, then 8 double-long-unsigned
        if rd.element_count != _WN_COUNT or n != _WN_COUNT or kind[0] != R.KIND_STR or rd.item_len[0] != 12:
            return M.GENERIC
        for i in range(n):
            if rd.item_tagged[i] or (i and (kind[i] != R.KIND_INT or rd.item_len[i] != 4)):
                return M.GENERIC
        meter = _T[_T_WN]
        o = rd.item_value[0]
    elif ((rd.element_count == _KN_COUNT or rd.element_count == _WELS_COUNT) and n == rd.element_count - 1
          and rd.item_tagged[0] == 1
          and M.starts_with(rd.item_obis, 0, 6, _T[_T_KN_LIST]) and kind[0] == R.KIND_STR
          and not rd.item_tagged[1] and _kn(rd)):
        meter = _T[_T_KN]
    else:
        meter = _named(rd)
        if meter is M.GENERIC:
            return meter
    if o < 0:  # the list's date-time (0-0:1.0.0.255), else the APDU header's
        o = rd.header_time
        for i in range(rd.n_items):
            if rd.item_code[i] == M.CODE_CLOCK and kind[i] == R.KIND_STR and rd.item_len[i] == 12:
                o = rd.item_value[i]
                break
    # the first push of an hour of the meter clock, within _HOUR_PUSH_S of the full hour? The hour last
    # seen is kept on the Reading (one per reader)
    meter.hourly_counters = False
    if o >= 0:
        p = rd.pool
        year = p[o] << 8 | p[o + 1]
        if 2000 <= year <= 2199 and p[o + 5] <= 23 and p[o + 6] <= 59:  # (the key stays a small int on 32-bit)
            key = (((year * 13 + p[o + 2]) * 32 + p[o + 3]) * 24 + p[o + 5]) * 2 + (p[o + 11] >> 7)
            last = getattr(rd, "eu_hour", -1)
            rd.eu_hour = key
            meter.hourly_counters = key != last and p[o + 6] == 0 and (p[o + 7] < _HOUR_PUSH_S or p[o + 7] == 0xFF)
    return meter


def _kn(rd):
    """The Kärnten Netz list, when its values are the six double-long-unsigned: give the list identifier
    its own item (its OBIS bytes copied to the pool, as the frame sent them in its first element), keep
    the meter number as meter_id, name the six registers. False (nothing changed) if it does not fit."""
    n = rd.n_items
    o = rd.pool_used
    for i in range(_KN_FIRST_VALUE - 1, _KN_FIRST_VALUE - 1 + _KN_VALUES):
        if rd.item_kind[i] != R.KIND_INT or rd.item_len[i] != 4 or rd.item_tagged[i]:
            return False
    if o + 6 > len(rd.pool):
        return False
    ob = rd.item_obis
    for b in range(n, 0, -1):  # every item one place up: item b-1 onto item b, all its columns
        a = b - 1
        copy(ob, 6 * b, ob, 6 * a, 6)
        rd.item_tagged[b] = rd.item_tagged[a]
        rd.item_position[b] = rd.item_position[a]
        rd.item_kind[b] = rd.item_kind[a]
        rd.item_value[b] = rd.item_value[a]
        rd.item_len[b] = rd.item_len[a]
        rd.item_has_scaler[b] = rd.item_has_scaler[a]
        rd.item_scaler[b] = rd.item_scaler[a]
        rd.item_unit[b] = rd.item_unit[a]
        rd.item_code[b] = rd.item_code[a]
    rd.n_items = n + 1
    copy(rd.pool, o, ob, 0, 6)  # item 0 keeps its OBIS: the frame's 0-6:25.9.0.255
    rd.pool_used = o + 6
    rd.item_value[0] = o
    rd.item_len[0] = 6
    rd.item_code[0] = M.TEXT_BASE + R.T_LIST_VERSION
    rd.item_tagged[1] = 0  # the meter number: no OBIS code is published for it
    rd.item_position[1] = 0
    rd.item_code[1] = M.TEXT_BASE + R.T_METER_ID
    codes = _T[_T_KN_CODES]
    for k in range(_KN_VALUES):
        i = _KN_FIRST_VALUE + k
        copy(ob, 6 * i, _T[_T_OBIS], 6 * k, 6)
        rd.item_tagged[i] = 2
        rd.item_code[i] = codes[k]
    return True


def _named(rd):
    """A list whose values the frame names by OBIS (push list with capture objects, OBIS/value pairs):
    the push setup's logical name is the list identifier, the COSEM logical device name the meter id and
    its FLAG id the maker (else the FLAG id of the ciphered frame's system title). For a known maker,
    energy and power get the scale its lists use, as if the frame had sent it (a scaler it did send is
    kept); other values keep their OBIS codes only (meters.map_reading counts unknown_scale)."""
    ob = rd.item_obis
    buf = None  # where the FLAG id is: the pool (device name), else the system title
    o = 0
    for i in range(rd.n_items):
        if rd.item_tagged[i] != 1 or rd.item_kind[i] != R.KIND_STR or ob[6 * i] != 0 or ob[6 * i + 5] != 0xFF:
            continue
        c = ob[6 * i + 2]
        if c == _PUSH_SETUP_C and ob[6 * i + 3] == _PUSH_SETUP_D and ob[6 * i + 4] == 0:
            if rd.item_len[i] == 6:
                rd.item_code[i] = M.TEXT_BASE + R.T_LIST_VERSION
        elif c == _DEVICE_NAME_C and ob[6 * i + 1] == 0 and ob[6 * i + 3] == 0 and ob[6 * i + 4] == 0:
            rd.item_code[i] = M.TEXT_BASE + R.T_METER_ID
            if rd.item_len[i] >= 3:
                buf = rd.pool
                o = rd.item_value[i]
    if buf is None:
        env = getattr(rd, "envelope", None)  # set by reader.open_envelope
        if env is None or not env.ciphered:
            return M.GENERIC
        buf = env.system_title
    if M.starts_with(buf, o, 3, _T[_T_FLAG_ISK]):
        meter = _T[_T_ISK]
    elif M.starts_with(buf, o, 3, _T[_T_FLAG_LGZ]):
        meter = _T[_T_LGZ]
    else:
        return M.GENERIC
    codes = rd.item_code
    known = _T[_T_KNOWN]
    for i in range(rd.n_items):
        c = codes[i]
        if c < R.N_NUMERIC and known[c] and rd.item_kind[i] == R.KIND_INT and not rd.item_has_scaler[i]:
            rd.item_has_scaler[i] = 1
            rd.item_scaler[i] = 0
            rd.item_unit[i] = M.FIELD_UNIT[c]
    return meter
