# Heap in use after boot on the 32-bit ESP32 stand-in, over several boots of one flash: boots that
# validate config.json (its cache config.json.ok removed first) and boots that take the cache.
"""Usage: python tools/boot_heap.py [--boots 3] [--meter kamstrup] [--heap 112K] [--smallest]

Installs the firmware as `make deploy` does (tools/run_host.py), starts it against the meter simulator
and reads the "heap in use after boot" line of each boot. Prints one JSON object:
{"validating": [bytes, ...], "cached": [bytes, ...], "qstrs": n}. A boot that keeps more than another
of the same firmware keeps something the boot should have let go (docs/firmware.md, "Heap").
--smallest adds "smallest_boot_kb": the smallest heap (1 KB steps, by bisection below 112 KB) at which
--boots fresh flashes each boot twice (validating, then cached) up to a served HTTP port: the boot's
peak, which lies above the heap in use after it (the boot-only module, the settings' validation).
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_host  # noqa: E402
import soak  # noqa: E402


def _wait_boot(rig, since, timeout_s=20.0):
    # (heap in use after boot, qstrs) of the boot whose log begins at offset since, once it is there
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = rig.log_tail(10 ** 7)[since:]
        used = soak.heap_after_boot(log)[0]
        qstrs = soak.boot_qstrs(log)
        if used is not None and qstrs is not None:
            return used, qstrs
        time.sleep(0.2)
    raise RuntimeError("no boot line:\n" + rig.log_tail(2000))


def boot_heaps(boots=3, meter="kamstrup", heap=None, interpreter=None, workdir=None):
    """{"validating": [...], "cached": [...], "qstrs": n}: heap in use after each boot, in bytes."""
    interpreter = interpreter or run_host.standin_binary()
    if interpreter is None:
        raise RuntimeError("no 32-bit stand-in (set HANPORT_MICROPYTHON32)")
    heap = heap or run_host.standin_test_heap(interpreter)
    workdir = workdir or tempfile.mkdtemp(prefix="boot-heap-")
    rig = run_host.Rig(workdir, meter=meter, speed=60, heap=heap, interpreter=interpreter)
    out = {"validating": [], "cached": [], "qstrs": None}
    cache = os.path.join(workdir, "flash", "config.json.ok")
    first = True
    try:
        for kind in ("validating", "cached"):
            while len(out[kind]) < boots:
                since = 0
                if first:
                    rig.start(wait_http_s=30)  # the first boot validates (no cache yet)
                    first = False
                else:
                    run_host.stop(rig.fw)
                    if kind == "validating" and os.path.exists(cache):
                        os.remove(cache)
                    since = len(rig.log_tail(10 ** 7))  # (the log goes on across boots)
                    rig.cfg = None  # the same flash and config.json
                    rig.start_firmware()
                used, out["qstrs"] = _wait_boot(rig, since)
                out[kind].append(used)
    finally:
        rig.close()
    return out


def boots_at(kb, boots, meter, interpreter):
    """True if `boots` fresh flashes each boot twice (validating, cached) at a heap of kb KB."""
    for _ in range(boots):
        workdir = tempfile.mkdtemp(prefix="boot-heap-")
        rig = run_host.Rig(workdir, meter=meter, speed=60, heap="%dK" % kb, interpreter=interpreter)
        try:
            rig.start(wait_http_s=20)
            run_host.stop(rig.fw)
            rig.cfg = None  # the same flash and config.json: this boot takes the cache
            rig.start_firmware(20)
        except RuntimeError:  # "firmware HTTP did not come up" (a MemoryError in its log)
            return False
        finally:
            rig.close()
    return True


def smallest_boot_kb(boots=2, meter="kamstrup", interpreter=None, low_kb=80, high_kb=112):
    """The smallest heap in KB at which boots_at passes (None if not even at high_kb)."""
    interpreter = interpreter or run_host.standin_binary()
    if not boots_at(high_kb, boots, meter, interpreter):
        return None
    while high_kb - low_kb > 1:  # passes at high_kb; low_kb is taken to fail
        mid = (low_kb + high_kb) // 2
        if boots_at(mid, boots, meter, interpreter):
            high_kb = mid
        else:
            low_kb = mid
    return high_kb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], usage=__doc__)
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--meter", default="kamstrup")
    ap.add_argument("--heap", default=None)
    ap.add_argument("--smallest", action="store_true")
    args = ap.parse_args(argv)
    out = boot_heaps(args.boots, args.meter, args.heap)
    if args.smallest:
        out["smallest_boot_kb"] = smallest_boot_kb(args.boots, args.meter)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
