# Reading: preallocated storage for one decoded meter message (every item the frame carried,
# plus the canonical fields), filled in place by dlms.py and meters.py without allocating.
from hanport.buffers import const, copy

# --- Item kinds (what an A-XDR leaf became; IEC 62056-6-2 data types) ---
KIND_INT = 1  # integer types: value is the register as an int
KIND_STR = 2  # octet-string / visible-string: value is an offset into Reading.pool, length in item_len
KIND_TIME = 3  # COSEM date-time octet-string(12): value is an offset into Reading.pool
KIND_FLOAT32 = 4  # value holds the IEEE-754 bits (decoded only when rendered)
KIND_FLOAT64 = 5
KIND_BOOL = 6
NO_CODE = 255  # Reading.item_code of an item that maps to no canonical field

_MAX_ITEMS = const(64)  # largest list seen: Swedish Aidon, 27 values; room for twice that with margin
_POOL_BYTES = const(768)  # strings and date-times of one message (Kamstrup list 3 uses ~80 bytes)

# --- Canonical fields (README "Reading schema"). Order matters: index constants below. ---
# Numeric fields hold an integer and a power-of-ten exponent; text fields point into the pool.
NUMERIC_FIELDS = (
    "active_import_w",
    "active_export_w",
    "reactive_import_var",
    "reactive_export_var",
    "current_l1_a",
    "current_l2_a",
    "current_l3_a",
    "voltage_l1_v",
    "voltage_l2_v",
    "voltage_l3_v",
    "active_import_kwh",
    "active_export_kwh",
    "reactive_import_kvarh",
    "reactive_export_kvarh",
)
F_P_IMPORT = 0
F_P_EXPORT = 1
F_Q_IMPORT = 2
F_Q_EXPORT = 3
F_I_L1 = 4
F_I_L2 = 5
F_I_L3 = 6
F_U_L1 = 7
F_U_L2 = 8
F_U_L3 = 9
F_E_IMPORT = 10
F_E_EXPORT = 11
F_R_IMPORT = 12
F_R_EXPORT = 13
N_NUMERIC = 14

TEXT_FIELDS = ("list_version", "meter_id", "meter_type")
T_LIST_VERSION = 0
T_METER_ID = 1
T_METER_TYPE = 2
N_TEXT = 3
_NO_FIELDS = bytes(N_NUMERIC)


class Reading:
    """One decoded message. Reused in place: copy with as_dict() to keep it."""

    def __init__(self, max_items=_MAX_ITEMS, pool_bytes=_POOL_BYTES):
        self.max_items = max_items
        # items: every value the frame carried, in frame order
        self.n_items = 0
        self.item_obis = bytearray(6 * max_items)  # A B C D E F per item
        self.item_tagged = bytearray(max_items)  # 1: the frame sent the OBIS; 2: a layout table named it
        self.item_position = bytearray(max_items)  # index among untagged values (255 = tagged)
        self.item_kind = bytearray(max_items)
        self.item_value = [0] * max_items
        self.item_len = [0] * max_items
        self.item_has_scaler = bytearray(max_items)  # 1: scaler/unit sent in the frame or from a table
        self.item_scaler = [0] * max_items  # power of ten to the item's DLMS unit
        self.item_unit = bytearray(max_items)  # DLMS unit enum (27 W, 29 var, 30 Wh, 32 varh, 33 A, 35 V)
        self.item_code = bytearray(max_items)  # canonical field code (meters.FIELD_BY_OBIS), 255 = none
        self.pool = bytearray(pool_bytes)
        self.pool_used = 0
        # header date-time (APDU) and the body layout
        self.header_time = -1  # pool offset of the APDU date-time, -1 when absent
        self.element_count = 0  # elements of the body's top structure
        # canonical fields
        self.field_value = [0] * N_NUMERIC
        self.field_exp = [0] * N_NUMERIC  # value * 10**exp, in the unit the field name states
        self.field_present = bytearray(N_NUMERIC)
        self.text_item = [-1] * N_TEXT  # item index holding the text, -1 = absent
        self.time_offset = -1  # pool offset of meter_time (clock item, else APDU header)
        self.manufacturer = None  # constant str from the meter table
        self.list_number = 0  # 1, 2 or 3 (NVE list), 0 = unknown

    def clear(self):
        self.n_items = 0
        self.pool_used = 0
        self.header_time = -1
        self.element_count = 0
        copy(self.field_present, 0, _NO_FIELDS, 0, N_NUMERIC)
        ti = self.text_item
        ti[0] = ti[1] = ti[2] = -1  # N_TEXT entries
        self.time_offset = -1
        self.manufacturer = None
        self.list_number = 0

    # --- read access (no allocation for ints) ---
    def has(self, field):
        return self.field_present[field] == 1

    def fixed(self, field):
        """(integer, exponent) of a numeric field: value = integer * 10**exponent; None if absent."""
        if not self.field_present[field]:
            return None
        return (self.field_value[field], self.field_exp[field])

    def text(self, t):
        """Text field as str (allocates), None when absent."""
        i = self.text_item[t]
        if i < 0:
            return None
        return pool_text(self.pool, self.item_value[i], self.item_len[i])

    def as_dict(self):
        """Plain dict in the canonical schema (allocates). Decimals are floats here; use
        render.reading_json() for exact text on 32-bit-float MicroPython."""
        # (its module by a long name: a short one would be one more name interned on a board, which never
        # calls this; the names a board holds are counted, see docs/firmware.md on the qstr pool)
        return __import__("hanport.readingdict", None, None, ("reading_dict",)).reading_dict(self)


def readings_from(reader, data):
    """Generator over the Readings any reader (HanReader, AutoReader, P1Reader) completes from one
    chunk, through its allocation-free push(data, pos, end) / has_reading / reading interface."""
    pos = 0
    end = len(data)
    while pos < end:
        pos = reader.push(data, pos, end)
        if reader.has_reading:
            yield reader.reading


def pool_text(pool, offset, length):
    """Printable ASCII as str; anything else as lowercase hex (never raises)."""
    printable = True
    for i in range(offset, offset + length):
        b = pool[i]
        if b < 0x20 or b > 0x7E:
            printable = False
            break
    if printable:
        return bytes(pool[offset : offset + length]).decode()
    return "".join("%02x" % pool[i] for i in range(offset, offset + length))
