# The latest value of every canonical field across messages (list 1 refreshes P+ only, list 3 the
# counters), and the meter's identity. Updated in place from a Reading without allocating.
from hanport import reading as R


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
