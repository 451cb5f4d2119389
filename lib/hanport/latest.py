# The latest value of every canonical field across messages (list 1 refreshes P+ only, list 3 the
# counters), the meter's identity, and the last hour of active power (the dashboard's plot: the mean
# of each minute, in two preallocated rings). Updated in place from a Reading without allocating.
from array import array

from hanport import reading as R
from hanport.buffers import const

try:
    from time import ticks_add, ticks_diff
except ImportError:  # CPython: plain integers (tests pass their own milliseconds)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b


class Latest:
    """Latest (integer, exponent) per numeric field; identity strings; counts per list."""

    def __init__(self):
        n = R.N_NUMERIC
        self.value = [0] * n
        self.exp = [0] * n
        self.present = bytearray(n)
        self.at = [0] * n  # caller's clock (e.g. ticks_ms) when the field was last refreshed
        self.mask = 0  # bit f set: field f was seen at least once
        self.per_list = [0, 0, 0, 0]  # messages seen per list number (0 = unknown)
        self.manufacturer = None
        self.list_version = None
        self.meter_id = None
        self.meter_type = None
        self.identity_changes = 0  # bumps when manufacturer, id or type change

    def update(self, rd, now):
        """Copy the fields a Reading carries. Returns True when the set of seen fields grew or the
        meter identity changed (a reason to re-send discovery)."""
        grew = False
        fp = rd.field_present
        for f in range(R.N_NUMERIC):
            if fp[f]:
                self.value[f] = rd.field_value[f]
                self.exp[f] = rd.field_exp[f]
                self.present[f] = 1
                self.at[f] = now
                bit = 1 << f
                if not self.mask & bit:
                    self.mask |= bit
                    grew = True
        ln = rd.list_number
        self.per_list[ln if 0 <= ln <= 3 else 0] += 1
        changed = False
        if rd.manufacturer is not None and rd.manufacturer != self.manufacturer:
            self.manufacturer = rd.manufacturer
            changed = True
        t = _text(rd, R.T_LIST_VERSION, self.list_version)
        if t is not None:
            self.list_version = t
        t = _text(rd, R.T_METER_ID, self.meter_id)
        if t is not None:
            self.meter_id = t
            changed = True
        t = _text(rd, R.T_METER_TYPE, self.meter_type)
        if t is not None:
            self.meter_type = t
            changed = True
        if changed:
            self.identity_changes += 1
        return grew or changed

    def fixed(self, f):
        """(integer, exponent) of field f, None if never seen."""
        if not self.present[f]:
            return None
        return (self.value[f], self.exp[f])


def _text(rd, t, old):
    """The text field as a new str when it differs from `old`; None when absent or unchanged
    (compares bytes first, so an unchanged identity allocates nothing)."""
    i = rd.text_item[t]
    if i < 0:
        return None
    off = rd.item_value[i]
    ln = rd.item_len[i]
    if old is not None and len(old) == ln:
        pool = rd.pool
        same = True
        for k in range(ln):
            if pool[off + k] != ord(old[k]):
                same = False
                break
        if same:
            return None
    return R.pool_text(rd.pool, off, ln)


STEP_MS = const(60000)  # one bucket: a minute (24 list-1 messages at 2.5 s: Aidon, Kaifa, Kamstrup)
BUCKETS = const(60)  # 60 minutes
NONE = const(0xFFFF)  # a bucket without a reading (the rings hold unsigned 16-bit W)
TOP_W = const(0xFFFE)  # a mean above this is kept as this (a home's supply, 3 x 63 A at 230 V, is 43 kW)


class PowerLog:
    """Mean import and export W of each STEP_MS bucket over the last BUCKETS (two rings, 240 bytes),
    filled in place. Only add() stays in the heap: the dashboard's reader (firmware/dash.py) loads
    with its answer and reads the rings as they would be after closing the buckets now closes."""

    def __init__(self):
        self.imp = array("H", [NONE] * BUCKETS)
        self.exp = array("H", [NONE] * BUCKETS)
        self.head = 0  # the slot of the newest closed bucket
        self.start = None  # ticks (ms) when the open bucket began; None before the first reading
        self.sum_imp = self.sum_exp = self.n_imp = self.n_exp = 0  # the open bucket

    def add(self, now_ms, rd):
        """The active power of a Reading (W; Aidon's list 1 has import only, so export's mean is over
        the messages that carry it), after closing the open bucket and every empty one up to now_ms."""
        fp = rd.field_present
        if not (fp[R.F_P_IMPORT] or fp[R.F_P_EXPORT]):
            return
        if self.start is None:
            self.start = now_ms
        late = ticks_diff(now_ms, self.start) // STEP_MS
        if late > 0:
            self.start = ticks_add(self.start, late * STEP_MS)
            for _ in range(min(late, BUCKETS)):  # (silent longer than the ring: all of it empty)
                self.head = (self.head + 1) % BUCKETS
                self.imp[self.head] = min(self.sum_imp // self.n_imp, TOP_W) if self.n_imp and late <= BUCKETS else NONE
                self.exp[self.head] = min(self.sum_exp // self.n_exp, TOP_W) if self.n_exp and late <= BUCKETS else NONE
                self.sum_imp = self.sum_exp = self.n_imp = self.n_exp = 0
        if fp[R.F_P_IMPORT]:
            self.sum_imp += watts(rd, R.F_P_IMPORT)
            self.n_imp += 1
        if fp[R.F_P_EXPORT]:
            self.sum_exp += watts(rd, R.F_P_EXPORT)
            self.n_exp += 1


def watts(rd, f):
    """Field f of rd as whole watts (the meters send W with exponent 0; others are scaled, floor)."""
    v = rd.field_value[f]
    e = rd.field_exp[f]
    while e > 0:
        v *= 10
        e -= 1
    while e < 0:
        v //= 10
        e += 1
    return v
