# MicroPython only: proves that Accounting.update(rd, ticks_ms=...) and tick() allocate nothing (lists
# 1, 2 and the hourly list 3, store=None) across a ticks wrap, origin moves and a week of silence, once
# accounting_hourly, which an hourly list imports, is loaded: the warm-up hours load it. Also measures what
# a list 3 allocates when the firmware has unloaded it (list3_load_bytes).
import gc
import sys
import time

import accounting_gen as G
import hanvectors
import micropython

from hanport import HanReader
from hanport import localtime as LT
from hanport import reading as R
from hanport.accounting import C_GAPS, C_HOURS, REBASE_MS, RES_ANCHOR, RES_HOUR, Accounting

SLOT_MS = 10000  # list 2 every 10 s (Kaifa), list 1 between them
SLOTS = 360  # per hour; slot 0 is the hourly list (xx:00:10)
HOURS = 90  # > REBASE_MS: the origin moves at least once
SILENCE_AT = 40  # after this hour the meter is silent for SILENCE_H hours, ticks go on
SILENCE_H = 7 * 24  # longer than half the 32-bit ticks period (2**29 ms, 6.2 days)
TICK_MS = 10000  # ticker steps during the silence (the firmware ticks every second: same effect)
WARM_HOURS = 3
WRAP_AFTER_MS = (WARM_HOURS * 60 + 30) * 60 * 1000  # ticks wrap 30 minutes into the locked run
N_LIST1 = 4  # real list 1 readings kept (each holds a decoder)
# hanport.* loaded on demand
PARTS = ("accounting_hourly", "accounting_views", "accounting_store", "accounting_capacity",
         "accounting_history", "localtime")


def list1_readings():
    """Decoded real list 1 frames (P+ only), each its own Reading."""
    out = []
    for f in hanvectors.norwegian_frames():
        rd = G.decode_one(f)
        if rd is not None and rd.list_number == 1 and rd.field_present[R.F_P_IMPORT]:
            out.append(rd)
            if len(out) == N_LIST1:
                break
    return out


def push_frame(reader, frame):
    """Decode one whole frame with the firmware's reader (allocation-free); its Reading."""
    pos = 0
    n = len(frame)
    while pos < n:
        pos = reader.push(frame, pos, n)
        if reader.has_reading:
            return reader.reading
    return None


class Run:
    def __init__(self, meter, start_h, tk):
        self.meter = meter
        self.start_h = start_h
        self.acc = Accounting()  # as the firmware makes it, without a store
        self.r3 = HanReader()
        self.r2 = HanReader()
        self.l1 = list1_readings()
        self.tk = tk
        self.tk_start = tk
        self.n_hours = 0  # hourly lists fed
        self.results = 0  # RES_HOUR / RES_ANCHOR seen
        self.l3_bytes = 0  # with measure: bytes the list 3 updates allocated (gc disabled)
        self.l12_bytes = 0
        self.l12_n = 0

    def frames(self, h):
        """Frames of hour h, built ahead (building allocates): list 3, list 2 of each quarter."""
        m = self.meter
        out = [m.list3(h)]
        for q in range(G.QUARTERS):
            out.append(m.list2(h * 3600 + q * G.QUARTER_S + 15))
        return out

    def hour(self, h, frames, measure=False):
        """One hour of messages; frames from frames(h)."""
        acc = self.acc
        tk = self.tk
        l1 = self.l1
        n1 = len(l1)
        rd2 = None
        for j in range(SLOTS):
            if j == 0:
                rd = push_frame(self.r3, frames[0])
                if measure:
                    a = gc.mem_alloc()
                    res = acc.update(rd, ticks_ms=tk)
                    self.l3_bytes += gc.mem_alloc() - a
                else:
                    res = acc.update(rd, ticks_ms=tk)
                if res == RES_HOUR or res == RES_ANCHOR:
                    self.results += 1
            else:
                if j % (SLOTS // G.QUARTERS) == 1 or rd2 is None:
                    rd2 = push_frame(self.r2, frames[1 + j * G.QUARTERS // SLOTS])
                if measure:
                    a = gc.mem_alloc()
                    acc.update(rd2, ticks_ms=tk)
                    self.l12_bytes += gc.mem_alloc() - a
                    self.l12_n += 1
                else:
                    acc.update(rd2, ticks_ms=tk)
            acc.tick(time.ticks_add(tk, 2000))
            if measure:
                a = gc.mem_alloc()
                acc.update(l1[j % n1], ticks_ms=time.ticks_add(tk, SLOT_MS // 2))
                self.l12_bytes += gc.mem_alloc() - a
                self.l12_n += 1
            else:
                acc.update(l1[j % n1], ticks_ms=time.ticks_add(tk, SLOT_MS // 2))
            tk = time.ticks_add(tk, SLOT_MS)
        self.tk = tk
        self.n_hours += 1

    def silence(self, hours):
        acc = self.acc
        tk = self.tk
        for _ in range(hours * 3600000 // TICK_MS):
            acc.tick(tk)
            tk = time.ticks_add(tk, TICK_MS)
        self.tk = tk


def locked(label, fn):
    """fn() with the heap locked; exits on any allocation."""
    gc.collect()
    micropython.heap_lock()
    try:
        fn()
    except MemoryError as e:
        micropython.heap_unlock()
        print("FAIL: %s allocated while the heap was locked" % label)
        sys.print_exception(e)
        sys.exit(1)
    micropython.heap_unlock()


def unload_parts():
    """Forget the on-demand parts as the firmware does after an hourly list (firmware/mem.py unload)."""
    import hanport

    for leaf in PARTS:
        sys.modules.pop("hanport." + leaf, None)
        try:
            delattr(hanport, leaf)
        except (AttributeError, KeyError):  # (not loaded: MicroPython's module delattr says KeyError)
            pass


def check_hours(run):
    """Every exact hour recorded is the meter's counter difference; the silence is one spread gap."""
    m = run.meter
    unit = m.unit_wh
    exact = 0
    for u, imp, exp, est in run.acc.hours():
        h = u // 3600
        if not est:
            (a0, b0), (a1, b1) = m.registers(h), m.registers(h + 1)
            assert (imp, exp) == ((a1 - a0) * unit, (b1 - b0) * unit), h
            exact += 1
    c = run.acc.counts
    assert c[C_GAPS] == 1, c[C_GAPS]
    assert c[C_HOURS] == run.n_hours - 2, (c[C_HOURS], run.n_hours)  # all but the anchor and the gap
    assert exact > 24
    ri, re, partial = run.acc.running_wh()
    assert ri > 0 and not partial, (ri, partial)


def main():
    mask = time.ticks_add(0, -1)  # ticks period - 1 (2**30 - 1 on 32-bit)
    start_h = LT.dst_range_s(2024)[1] // 3600 - 230  # the autumn switch falls after the silence
    meter = G.Meter("kaifa", 5, start_h)
    for h in range(start_h, start_h + WARM_HOURS + HOURS + SILENCE_H + 8):
        meter.registers(h)  # its tables grown now, collected as they grow (32-bit: its PRNG makes garbage)
        gc.collect()
    run = Run(meter, start_h, time.ticks_add(0, -WRAP_AFTER_MS))
    # warm up: the first hours grow tables (history slots, meter id, decoder) and load accounting_hourly
    h = start_h
    for _ in range(WARM_HOURS):
        run.hour(h, run.frames(h))
        h += 1
    t0 = run.acc.t_last
    gc.collect()
    heap_used = gc.mem_alloc()
    wrapped = False
    for _ in range(HOURS):
        fr = run.frames(h)
        before = run.tk
        locked("Accounting.update (hour %d)" % (h - start_h), lambda h=h, fr=fr: run.hour(h, fr))
        if run.tk < before:
            wrapped = True
        h += 1
        if h - start_h == SILENCE_AT:
            before = run.tk
            locked("Accounting.tick (silence)", lambda: run.silence(SILENCE_H))
            wrapped = wrapped or run.tk < before
            h += SILENCE_H
    elapsed_ms = (HOURS * 3600 + SILENCE_H * 3600) * 1000
    assert wrapped, "ticks did not wrap"
    assert elapsed_ms > 2 * REBASE_MS and abs(run.acc.t_last) < REBASE_MS, (t0, run.acc.t_last)
    check_hours(run)
    # bytes per update with the collector off (0 when the locked run passed)
    gc.collect()
    gc.disable()
    n = 4
    for _ in range(n):
        fr = run.frames(h)
        run.hour(h, fr, measure=True)
        h += 1
    gc.enable()
    l3 = run.l3_bytes // n
    l12 = run.l12_bytes // run.l12_n
    # a list 3 after the parts were unloaded: it loads accounting_hourly again; bytes allocated (collector
    # off) and still held after a collection (the module, as nothing unloads it here)
    unload_parts()
    fr = run.frames(h)
    gc.collect()
    before = gc.mem_alloc()
    run.l3_bytes = 0
    gc.disable()
    run.hour(h, fr, measure=True)
    gc.enable()
    gc.collect()
    print("hours=%d heap_locked=ok list3_bytes_per_update=%d list12_bytes_per_update=%d ticks_period_mask=%d"
          " heap_used=%d list3_load_bytes=%d list3_load_kept=%d"
          % (run.n_hours, l3, l12, mask, heap_used, run.l3_bytes, gc.mem_alloc() - before))


main()
