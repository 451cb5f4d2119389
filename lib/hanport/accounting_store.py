# The state of hanport.accounting that outlives a reboot: history, counters, references and meter id,
# created empty here (Accounting.__init__), turned into bytes and back, saved and loaded through a
# hanport.persist.Store (two copies with a CRC). Imported when needed (a board may unload it after).
import struct
import sys
from array import array

from hanport.accounting import DAYS_KEPT, HOURS_KEPT, MAX_ID_BYTES, MONTHS_KEPT, N_COUNTERS, N_PENDING
from hanport.buffers import const

_STATE_VERSION = const(1)
_DAY_S = const(86400)
_PERIOD_LIST2_MS = const(10000)  # list 2 period (docs/han-notes.md §list-timing), for readings without a time or clock
_HEAD = "<BBBB%ds" % MAX_ID_BYTES  # version, flags (1: reference, 2: previous), pending count, id length
_HEAD_BYTES = 4 + MAX_ID_BYTES
_REF = const("<iqq")  # boundary hour (UTC hours since 1970), import Wh, export Wh: reference, previous, pending
_REF_BYTES = const(20)
# The arrays, in this order on flash as their bytes are in RAM (little endian: every board and PC this runs
# on): (array type, length, empty value, attribute names). A slot of the hour, day and month rings holds
# index % length; energies are Wh, power W.
_ARRAYS = (
    ("I", N_COUNTERS, 0, ("counts",)),  # index C_*
    ("i", HOURS_KEPT, -1, ("h_idx",)),  # hour start, UTC hours since 1970; -1 = empty
    ("i", HOURS_KEPT, 0, ("h_imp", "h_exp")),
    ("B", HOURS_KEPT, 0, ("h_flags",)),  # F_EST
    ("i", DAYS_KEPT, -1, ("d_idx",)),  # local day number (days since 1970-01-01)
    ("i", DAYS_KEPT, 0, ("d_imp", "d_exp", "d_max")),  # d_max: highest hourly import of the day
    ("B", DAYS_KEPT, 0, ("d_maxh", "d_nh", "d_flags")),  # that hour (hours after local midnight), hours recorded
    ("i", MONTHS_KEPT, -1, ("m_idx",)),  # LT.month_index of the local month
    ("i", MONTHS_KEPT, 0, ("m_imp", "m_exp", "m_cap")),  # m_cap: capacity value, W (floor)
    ("B", MONTHS_KEPT, 0, ("m_flags",)),
)
_REFS_END = _HEAD_BYTES + _REF_BYTES * (2 + N_PENDING)


def _size(code, n):
    """Bytes of an array of _ARRAYS."""
    return n if code == "B" else 4 * n


STATE_BYTES = _REFS_END + sum(_size(code, n) * len(names) for code, n, _, names in _ARRAYS)
if sys.byteorder != "little":
    raise ImportError("hanport.accounting_store: the flash image is the arrays' little-endian bytes")


def init(acc, store=None, steps_kw=(), top_days=1, max_power_w=0, max_sample_gap_s=0, save_interval_s=0):
    """Accounting.__init__ (its arguments): the settings, the running hour, and the state, empty (and the
    hourly list's scratch). Here, not there: one-time code, out of the heap with this module."""
    acc.store = store
    acc.steps_w = sorted(int(round(k * 1000)) for k in steps_kw)  # kW thresholds as W, ascending
    acc.top_n = max(1, int(top_days))
    acc.max_wh_per_h = max_power_w
    # (both below _STALE_MS: a pinned time must still read as longer ago)
    acc.max_gap_ms = min(max_sample_gap_s, _DAY_S) * 1000
    acc.save_interval_ms = min(save_interval_s, _DAY_S) * 1000
    # meter clock of the reading being handled (no tuple per reading)
    acc.c_y = acc.c_mo = acc.c_d = acc.c_hh = acc.c_mi = acc.c_s = acc.c_hu = 0
    # running hour (RAM only); times are ms from the internal origin (see REBASE_MS)
    acc.org_ms = None  # now_s * 1000 (or meter clock UTC ms) at the origin
    acc.tk_last = None  # the last ticks_ms seen (update or tick) and its internal time
    acc.tk_t = 0
    acc.t_last = None  # time of the last reading
    acc.period_ms = _PERIOD_LIST2_MS  # time between messages, for readings without a clock
    acc.t_sure = False  # the last reading's time is not in doubt (see _time_ms)
    acc.run_t0 = None  # time of the last hour boundary seen
    acc.run_wh = [0, 0]  # integrated power since then, [import, export]: whole Wh
    acc.run_wms = [0, 0]  # and the rest, W*ms below _WMS_PER_WH
    acc.run_partial = True  # the estimate does not cover the whole running hour
    acc.smp_t = [None, None]  # last power sample, [import, export]: time, W
    acc.smp_w = [0, 0]
    acc.cur_h = None  # start of the running hour, UTC hours
    acc.l_h = None  # newest hour boundary of an accepted or pending list, and when it came (sure
    acc.l_t = None  # times only): l_th hours + l_t ms (0..HOUR_MS), so the origin can move any
    acc.l_th = 0  # distance; RAM only: after a boot the first 02:00 of autumn is not guessed
    acc.l_on_time = False  # that list came as long after the one before as their clocks differ
    acc.dirty = 0  # 2: hours or references changed (save soon), 1: only counters (save with the next)
    acc.changed = False
    acc.saved_t = None
    acc.load_error = False  # the saved state was unreadable (wrong version): started empty
    for code, n, v, names in _ARRAYS:
        for name in names:
            setattr(acc, name, array(code, [v] * n) if code != "B" else bytearray(n))
    acc.meter_id = ""
    acc.id_raw = bytearray(MAX_ID_BYTES)  # the meter id's bytes in the reading that set meter_id
    acc.id_raw_n = -1  # their length, -1: not known (compare as text)
    acc.taken = bytearray(DAYS_KEPT)  # scratch of Accounting._top
    # reference (the last accepted hourly list), the one before it, rejected lists pending
    acc.a_ok = acc.p_ok = False
    acc.a_h = acc.a_imp = acc.a_exp = acc.p_h = acc.p_imp = acc.p_exp = acc.r_n = 0
    acc.r_h = [0] * N_PENDING
    acc.r_imp = [0] * N_PENDING
    acc.r_exp = [0] * N_PENDING


def save(acc):
    """Write the state to the store now, in pieces of one array each (no buffer of the whole: a
    board's heap is fragmented after a while). True on success."""
    if acc.store is None:
        return False
    ok = acc.store.save(_pieces(acc), STATE_BYTES)
    if ok:
        acc.dirty = 0
    return ok


def load(acc):
    """Read the state from the store. True if a saved state was restored."""
    data = acc.store.load()
    if data is None:
        return False
    if not unpack(acc, data):
        acc.load_error = True
        return False
    acc.cur_h = acc.l_h = acc.l_t = None
    acc.l_on_time = False
    return True


def pack(acc):
    """The state as a bytearray (STATE_BYTES long)."""
    buf = bytearray(STATE_BYTES)
    o = 0
    for p in _pieces(acc):
        buf[o : o + len(p)] = p
        o += len(p)
    return buf


def _pieces(acc):
    """The state as bytes pieces, made one at a time: header and references, then each array."""
    head = bytearray(_REFS_END)
    mid = acc.meter_id.encode()[:MAX_ID_BYTES]
    flags = (1 if acc.a_ok else 0) | (2 if acc.p_ok else 0)
    struct.pack_into(_HEAD, head, 0, _STATE_VERSION, flags, acc.r_n, len(mid), mid)
    refs = [(acc.a_h, acc.a_imp, acc.a_exp), (acc.p_h, acc.p_imp, acc.p_exp)]
    refs += [(acc.r_h[k], acc.r_imp[k], acc.r_exp[k]) for k in range(N_PENDING)]
    for k in range(2 + N_PENDING):
        struct.pack_into(_REF, head, _HEAD_BYTES + k * _REF_BYTES, *refs[k])
    yield head
    head = None
    for _, _, _, names in _ARRAYS:
        for name in names:
            yield bytes(getattr(acc, name))


def unpack(acc, data):
    """Restore the state from pack() bytes. False (state untouched) if they are not of this version."""
    if len(data) != STATE_BYTES or data[0] != _STATE_VERSION:
        return False
    _, flags, rn, idlen, mid = struct.unpack_from(_HEAD, data, 0)
    if rn > N_PENDING or idlen > MAX_ID_BYTES:
        return False
    acc.meter_id = bytes(mid[:idlen]).decode()
    acc.id_raw_n = -1
    acc.a_ok = bool(flags & 1)
    acc.p_ok = bool(flags & 2)
    acc.r_n = rn
    refs = [struct.unpack_from(_REF, data, _HEAD_BYTES + k * _REF_BYTES) for k in range(2 + N_PENDING)]
    acc.a_h, acc.a_imp, acc.a_exp = refs[0]
    acc.p_h, acc.p_imp, acc.p_exp = refs[1]
    for k in range(N_PENDING):
        acc.r_h[k], acc.r_imp[k], acc.r_exp[k] = refs[2 + k]
    o = _REFS_END
    for code, n, _, names in _ARRAYS:
        size = _size(code, n)
        for name in names:
            raw = bytes(data[o : o + size])
            getattr(acc, name)[:] = raw if code == "B" else array(code, raw)
            o += size
    return True
