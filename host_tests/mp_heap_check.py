# MicroPython only: proves that feeding bytes and decoding frames allocates nothing in steady state
# (micropython.heap_lock raises MemoryError on any allocation) and prints bytes allocated per frame.
import gc
import sys
import time

import micropython
from hanvectors import build_frame, eu_frame, eu_record, norwegian_frames, unhex

from hanport import HanReader
from hanport import reading as R
from hanport.latest import PowerLog
from hanport.rawlog import RawLog


def feed_all(reader, data, rounds, power=None):
    """Push every byte of data `rounds` times in 7-byte chunks, as a UART would deliver them; each
    reading also goes to the dashboard's power log (2.5 s apart) when one is given."""
    n = len(data)
    readings = 0
    t = 0
    for _ in range(rounds):
        pos = 0
        while pos < n:
            end = pos + 7
            if end > n:
                end = n
            while pos < end:
                pos = reader.push(data, pos, end)
                if reader.has_reading:
                    readings += 1
                    if power is not None:
                        t += 2500
                        power.add(t, reader.reading)
    return readings


def locked_feed(reader, data, rounds, what, power=None):
    """feed_all with the heap locked (after a collection); exits with FAIL if anything allocated."""
    gc.collect()
    micropython.heap_lock()
    readings = -1
    try:
        readings = feed_all(reader, data, rounds, power)
    except MemoryError:
        pass
    micropython.heap_unlock()
    if readings < 0:
        print("FAIL: %s allocated while the heap was locked" % what)
        sys.exit(1)
    return readings


def main():
    frames = norwegian_frames()
    stream = b"".join(frames)
    reader = HanReader()
    feed_all(reader, stream, 1)  # warm up: first use may grow internal tables
    readings = locked_feed(reader, stream, 3, "the decode path")
    assert readings == 3 * len(frames), readings
    # the same with the raw-frame ring attached (the firmware's GET /raw), garbage in between
    reader.framer.tap = RawLog(clock_ms=time.ticks_ms)
    noisy = b"\x12\x34" + stream + b"\x7e\xa0\x05\x00"
    feed_all(reader, noisy, 1)
    locked_feed(reader, noisy, 2, "the decode path with the raw ring")
    reader.framer.tap = None
    # the dashboard's power log per reading (firmware app.on_reading): buckets close as time goes on
    power = PowerLog()
    feed_all(reader, stream, 1, power)
    locked_feed(reader, stream, 2, "the power log", power)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    readings = feed_all(reader, stream, 2)
    after = gc.mem_alloc()
    gc.enable()
    print("frames=%d heap_locked=ok bytes_allocated_per_frame=%d" % (readings, (after - before) // readings))
    # Norwegian meters never load the tables of other countries (meters_eu.py, issue 13)
    print("meters_eu_after_norwegian=%s" % ("hanport.meters_eu" in sys.modules))
    eu_check()


def eu_check():
    """The lists of meters outside Norway: Austrian (Wiener Netze, Kärnten Netz; plain, and ciphered with
    their published keys), Landis+Gyr E450 (ciphered in three blocks, named by its system title; the same
    list in clear, named by nothing), the Swiss VSE E450 list. Once meters_eu.py is loaded, decoding them
    allocates nothing either."""
    import json

    from hanvectors import VECTORS

    plain = []
    for rid in ("energyagent-am550-wn-rpi-zero2", "shrdzm-am550-kaernten-netz"):
        plain.append(build_frame(b"\xe6\xe7\x00" + unhex(eu_record(rid)["decrypted_apdu_hex"])))
    cases = [(b"".join(plain), None, len(plain), True)]
    for rid in ("energyagent-lgz-wn-rpi-zero3", "shrdzm-am550-kaernten-netz"):
        rec = eu_record(rid)
        cases.append((eu_frame(rec), rec["key_hex"], 1, True))
    rec = eu_record("esphome-dlms-parser-lg-e450")
    cases.append((unhex(rec["hex"]), rec["key_hex"], 1, True))
    cases.append((build_frame(b"\xe6\xe7\x00" + unhex(rec["decrypted_apdu_hex"])), None, 1, False))
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        swiss = [x for x in json.load(f) if x["id"] == "scs-lg-e450-unencrypted-valid-data-cfg2026"][0]
    cases.append((unhex(swiss["hex"]), None, 1, True))
    for data, key, per_feed, energy in cases:
        reader = HanReader(2048, key)
        feed_all(reader, data, 2)
        readings = locked_feed(reader, data, 3, "a list from outside Norway")
        assert readings == 3 * per_feed, readings
        assert reader.reading.has(R.F_E_IMPORT) == energy, "active import energy"
    print("eu_heap_locked=ok")


main()
