# Output formats of a Reading: exact decimal text from (integer, exponent), ISO 8601 meter time,
# the canonical dict and JSON (README "Reading schema"). Integer math only, never float rounding.
import json
import struct

from hanport import reading as R


def decimal(value, exp):
    """Exact decimal text of value * 10**exp ("9.3", "-0.05", "230.0", "4272440")."""
    if exp >= 0:
        return str(value * 10**exp) if value else "0"
    neg = value < 0
    digits = str(-value if neg else value)
    n = -exp
    if len(digits) <= n:
        digits = "0" * (n - len(digits) + 1) + digits
    text = digits[:-n] + "." + digits[-n:]  # trailing zeros kept: they show the meter's resolution
    return "-" + text if neg else text


def number(value, exp):
    """value * 10**exp as an int, or the float nearest to the exact decimal: both operands of the
    division are exact doubles and IEEE division rounds correctly (CPython: repr gives the decimal)."""
    if exp >= 0:
        return value * 10**exp
    return value / 10**-exp


def cosem_time(pool, o):
    """ISO 8601 local time "YYYY-MM-DDTHH:MM:SS[.hh]" of a 12-byte COSEM date-time, None if the date
    or time is unspecified or out of range. The deviation byte is not applied: meters disagree on
    its sign and meaning, and the meter clock is Norwegian local time (docs/han-notes.md §meter-clock)."""
    if o < 0:
        return None
    year = (pool[o] << 8) | pool[o + 1]
    month = pool[o + 2]
    day = pool[o + 3]
    hour = pool[o + 5]
    minute = pool[o + 6]
    second = pool[o + 7]
    hundredths = pool[o + 8]
    if year == 0xFFFF or not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        return None
    if second == 0xFF:
        second = 0
    elif second > 59:
        return None
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (year, month, day, hour, minute, second)
    if hundredths < 100 and hundredths:
        text += ".%02d" % hundredths
    return text


def obis_text(ob, o):
    """OBIS code as A-B:C.D.E.F (value groups A to F of IEC 62056-6-1)."""
    return "%d-%d:%d.%d.%d.%d" % (ob[o], ob[o + 1], ob[o + 2], ob[o + 3], ob[o + 4], ob[o + 5])


def item_value(rd, i):
    """Python value of item i: scaled number in its DLMS unit, text, ISO time, float or bool."""
    kind = rd.item_kind[i]
    v = rd.item_value[i]
    if kind == R.KIND_INT:
        return number(v, rd.item_scaler[i]) if rd.item_has_scaler[i] else v
    if kind == R.KIND_STR:
        return R.pool_text(rd.pool, v, rd.item_len[i])
    if kind == R.KIND_TIME:
        t = cosem_time(rd.pool, v)
        return t if t is not None else R.pool_text(rd.pool, v, 12)
    if kind == R.KIND_BOOL:
        return v != 0
    if kind == R.KIND_FLOAT32:
        return struct.unpack(">f", struct.pack(">I", v))[0]
    return struct.unpack(">d", struct.pack(">Q", v))[0]


def _item_json(rd, i):
    kind = rd.item_kind[i]
    if kind == R.KIND_INT:
        v = rd.item_value[i]
        return decimal(v, rd.item_scaler[i]) if rd.item_has_scaler[i] else str(v)
    v = item_value(rd, i)
    if kind == R.KIND_BOOL:
        return "true" if v else "false"
    if kind == R.KIND_FLOAT32 or kind == R.KIND_FLOAT64:
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else "null"
    return json.dumps(v)


def _header(rd):
    """(name, json text) of the identity fields present in the reading, in schema order."""
    out = []
    for t in range(R.N_TEXT):
        i = rd.text_item[t]
        if i >= 0:
            out.append((R.TEXT_FIELDS[t], json.dumps(R.pool_text(rd.pool, rd.item_value[i], rd.item_len[i]))))
    if rd.manufacturer is not None:
        out.append(("meter_manufacturer", json.dumps(rd.manufacturer)))
    if rd.list_number:
        out.append(("list", str(rd.list_number)))
    t = cosem_time(rd.pool, rd.time_offset)
    if t is not None:
        out.append(("meter_time", json.dumps(t)))
    return out


def _pieces(rd, head):
    """The canonical JSON object of a Reading as small str pieces, in schema order."""
    yield "{"
    sep = ""
    if head:
        yield head
        sep = ","
    for name, text in _header(rd):
        yield '%s"%s":%s' % (sep, name, text)
        sep = ","
    for f in range(R.N_NUMERIC):
        if rd.field_present[f]:
            yield '%s"%s":%s' % (sep, R.NUMERIC_FIELDS[f], decimal(rd.field_value[f], rd.field_exp[f]))
            sep = ","
    yield sep + '"obis":{'
    sep = ""
    for i in range(rd.n_items):
        if rd.item_tagged[i]:
            yield '%s"%s":%s' % (sep, obis_text(rd.item_obis, 6 * i), _item_json(rd, i))
            sep = ","
    yield "}}"


def reading_json(rd, head=None):
    """The canonical JSON object of a Reading, decimals exact (one line, no spaces, ASCII only).
    head: members put first ('"seq":7', the MQTT state message), without copying the text again."""
    return "".join(_pieces(rd, head))


def reading_json_into(rd, buf, head=None):
    """reading_json() written into the preallocated bytearray buf (no large block allocated, only
    small pieces); returns its length, or -1 when it does not fit (buf then holds a cut text)."""
    n = 0
    size = len(buf)
    for piece in _pieces(rd, head):
        b = piece.encode()
        k = len(b)
        if n + k > size:
            return -1
        buf[n : n + k] = b
        n += k
    return n
