#!/usr/bin/env python3
# Decoder benchmark (make bench): frames/s of hanport vs PyPI amshan 2.1.1 on CPython over the same
# real frames, and frames/s plus bytes allocated per frame under the MicroPython unix port.
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))
sys.path.insert(0, os.path.join(ROOT, "host_tests"))

from hanvectors import norwegian_frames  # noqa: E402

from hanport import HanReader  # noqa: E402

ROUNDS = 5  # best of, runs interleaved so that load on the machine hits both decoders alike
REPEAT = 40  # the vector frames, this many times over, make one run
CHUNK = 256  # bytes per push, as a serial read would deliver them

MP_SCRIPT = """
import time, gc
from hanvectors import norwegian_frames
from hanport import HanReader
frames = norwegian_frames()
stream = b"".join(frames)
def run(rounds):
    r = HanReader()
    n = len(stream)
    got = 0
    for _ in range(rounds):
        pos = 0
        while pos < n:
            pos = r.push(stream, pos, n)
            if r.has_reading:
                got += 1
    return got
run(1)
best = 0
for _ in range(3):
    t0 = time.ticks_us()
    got = run(%d)
    dt = time.ticks_diff(time.ticks_us(), t0)
    best = max(best, got * 1000000 // dt)
print("mp_frames_per_s=%%d" %% best)
"""


def chunks(stream):
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def bench_hanport(pieces, to_dict):
    r = HanReader()
    got = 0
    t0 = time.perf_counter()
    for piece in pieces:
        for rd in r.feed(piece):
            if to_dict:
                rd.as_dict()
            got += 1
    return got, time.perf_counter() - t0


def bench_amshan(pieces):
    from han import autodecoder, hdlc

    reader = hdlc.HdlcFrameReader(use_octet_stuffing=False)
    decoder = autodecoder.AutoDecoder()
    got = 0
    t0 = time.perf_counter()
    for piece in pieces:
        for frame in reader.read(piece):
            if frame.is_good_ffc and frame.is_expected_length:
                if decoder.decode_message_payload(frame.payload) is not None:
                    got += 1
    return got, time.perf_counter() - t0


def best_of(runs):
    """runs: name -> (fn, args). Calls them in turn ROUNDS times; name -> (frames, best seconds)."""
    out = {}
    for _ in range(ROUNDS):
        for name, (fn, args) in runs.items():
            got, t = fn(*args)
            if name not in out or t < out[name][1]:
                out[name] = (got, t)
    return out


def micropython_figures():
    bindir = os.path.dirname(sys.executable)
    mp = os.path.join(bindir, "micropython")
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "host_tests"))
    out = {}
    p = subprocess.run([mp, "-c", MP_SCRIPT % 5], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    p2 = subprocess.run([mp, os.path.join(ROOT, "host_tests", "mp_heap_check.py")], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
    for line in (p.stdout + " " + p2.stdout).split():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    if p.returncode or p2.returncode:
        out["error"] = (p.stderr + p2.stderr)[-500:]
    return out


def main():
    frames = norwegian_frames()
    stream = b"".join(frames) * REPEAT
    pieces = chunks(stream)
    n_frames = len(frames) * REPEAT
    print("decoder benchmark: %d real frames (%d distinct, Aidon/Kaifa/Kamstrup lists 1-3), %d bytes, "
          "%d-byte chunks, best of %d" % (n_frames, len(frames), len(stream), CHUNK, ROUNDS))
    runs = {"reading": (bench_hanport, (pieces, False)), "dict": (bench_hanport, (pieces, True))}
    try:
        import han  # noqa: F401  (PyPI amshan)

        runs["amshan"] = (bench_amshan, (pieces,))
    except ImportError:
        print("  amshan not installed (pip install amshan==2.1.1) - no comparison")
    res = best_of(runs)
    fps = {k: v[0] / v[1] for k, v in res.items()}
    print("  hanport (CPython %s), decode to Reading:      %8.0f frames/s" % (sys.version.split()[0], fps["reading"]))
    print("  hanport, decode + as_dict():                  %8.0f frames/s" % fps["dict"])
    if "amshan" in fps:
        print("  amshan 2.1.1 (HdlcFrameReader + AutoDecoder): %8.0f frames/s (%d of %d frames decoded)"
              % (fps["amshan"], res["amshan"][0], n_frames))
        print("  ratio hanport/amshan: %.1fx (Reading), %.1fx (with dict)"
              % (fps["reading"] / fps["amshan"], fps["dict"] / fps["amshan"]))
    mp = micropython_figures()
    print("  MicroPython unix port: %s frames/s; heap-locked decode: %s; bytes allocated per frame: %s"
          % (mp.get("mp_frames_per_s", "?"), mp.get("heap_locked", "?"), mp.get("bytes_allocated_per_frame", "?")))
    if "error" in mp:
        print("  MicroPython error: " + mp["error"])
    print("  (unix port is 64-bit; an ESP32 at 240 MHz is much slower, but 2400 baud brings < 1 frame/s)")


if __name__ == "__main__":
    main()
