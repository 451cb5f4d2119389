#!/usr/bin/env python3
# Decryption benchmark (make bench): decrypt + decode time per ciphered frame under the MicroPython
# unix port (GHASH in Python over cryptolib) and on CPython (`cryptography`). Prints, never asserts.
"""usage: python3 tools/bench_crypto.py      (CPython figures, then the same run under .venv/bin/micropython)
       micropython tools/bench_crypto.py  (MICROPYPATH=lib:host_tests; MicroPython figures only)"""
import gc
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
ROUNDS = 30  # messages per case (the best of 3 runs is printed)


def ticks_us():
    if MICROPYTHON:
        return time.ticks_us()
    return time.perf_counter_ns() // 1000


def elapsed_us(t0):
    if MICROPYTHON:
        return time.ticks_diff(time.ticks_us(), t0)
    return ticks_us() - t0


def cases():
    """(name, bytes of one message, key, auth key, protocol) for every case."""
    import json

    from hanvectors import VECTORS, build_frame, frame_info, norwegian_frames, unhex
    from test_mbus_portable import EVN, EVN_KEY

    from hanport import wire_build

    key = "000102030405060708090a0b0c0d0e0f"
    auth = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    plain = max(norwegian_frames(), key=len)  # the largest list (Aidon/Kamstrup hourly)
    info = frame_info(plain)
    title = b"KAM\x00\x01\x02\x03\x04"
    out = [("plain-hdlc-%dB" % len(plain), plain, None, None, "hdlc")]
    for sc in (0x20, 0x30):
        apdu = wire_build.encrypt_apdu(info[3:], key, title, 1, sc, auth)
        out.append(("own-sc%02x-hdlc-%dB" % (sc, len(apdu)), build_frame(info[:3] + apdu), key, auth, "hdlc"))
    apdu = wire_build.encrypt_apdu(info[3:], key, title, 1, 0x30, auth)
    out.append(("own-sc30-mbus-%dB" % len(apdu), wire_build.build_frames(apdu, 120), key, auth, "mbus"))
    evn = unhex(EVN)
    out.append(("evn-sc20-mbus-%dB" % len(evn), evn, EVN_KEY, None, "mbus"))
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        for r in json.load(f):
            if r["id"] == "scs-lg-e570-encrypted-valid-data":
                data = unhex(r["hex"])
                out.append(("e570-gbt-sc20-hdlc-%dB" % len(data), data, r["key_hex"], None, "hdlc"))
    return out


def run_case(data, key, auth, protocol):
    from hanport import HanReader, mbus

    t0 = ticks_us()
    framer = mbus.MbusReader() if protocol == "mbus" else None
    r = HanReader(2048, key, auth, framer)
    setup = elapsed_us(t0)
    n = len(data)

    def once(rounds):
        got = 0
        for _ in range(rounds):
            pos = 0
            while pos < n:
                pos = r.push(data, pos, n)
                if r.has_reading:
                    got += 1
        return got

    assert once(1) == 1, "no reading"
    best = None
    for _ in range(3):
        t0 = ticks_us()
        once(ROUNDS)
        dt = elapsed_us(t0) // ROUNDS
        best = dt if best is None or dt < best else best
    alloc = -1
    if MICROPYTHON:
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        once(5)
        alloc = (gc.mem_alloc() - before) // 5
        gc.enable()
    return best, setup, alloc


def primitives():
    """GCM building blocks alone: table set-up per key, GHASH and CTR per 16-byte block."""
    from hanport import gcm

    key = b"0123456789abcdef"
    t0 = ticks_us()
    g = gcm.new(key)
    setup = elapsed_us(t0)
    buf = bytearray(512)
    iv = bytes(12)
    blocks = len(buf) // 16
    t0 = ticks_us()
    for _ in range(10):
        g.crypt(iv, buf, 0, len(buf))
    ctr = elapsed_us(t0) / (10 * blocks)
    t0 = ticks_us()
    for _ in range(10):
        g.encrypt(iv, None, buf, 0, len(buf))
    both = elapsed_us(t0) / (10 * blocks)
    return g.backend, setup, ctr, both


def main():
    impl = "micropython" if MICROPYTHON else "cpython"
    backend, setup, ctr, both = primitives()
    print("%s gcm backend=%s key_setup_us=%d ctr_us_per_block=%.2f ctr_and_ghash_us_per_block=%.2f"
          % (impl, backend, setup, ctr, both))
    for name, data, key, auth, protocol in cases():
        us, setup, alloc = run_case(data, key, auth, protocol)
        line = "%s case=%s decrypt_decode_us_per_frame=%d reader_setup_us=%d" % (impl, name, us, setup)
        if alloc >= 0:
            line += " bytes_allocated_per_frame=%d" % alloc
        print(line)


def run_micropython():
    """Run this script under the MicroPython unix port next to the interpreter (.venv/bin)."""
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(mp):
        print("micropython not found next to %s: skipped" % sys.executable)
        return
    env = dict(os.environ, MICROPYPATH=os.path.join(root, "lib") + ":" + os.path.join(root, "host_tests"))
    p = subprocess.run([mp, "-X", "heapsize=4M", os.path.abspath(__file__)], env=env, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    if p.returncode:
        sys.stdout.write(p.stderr)


if MICROPYTHON:
    main()
elif __name__ == "__main__":
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "lib"))
    sys.path.insert(0, os.path.join(here, "..", "host_tests"))
    main()
    run_micropython()
