# Heap in use after boot on the 32-bit ESP32 stand-in, over several boots of one flash: boots that
# validate config.json (its cache config.json.ok removed first) and boots that take the cache.
"""Usage: python tools/boot_heap.py [--boots 3] [--meter kamstrup] [--heap 112K]

Installs the firmware as `make deploy` does (tools/run_host.py), starts it against the meter simulator
and reads the "heap in use after boot" line of each boot. Prints one JSON object:
{"validating": [bytes, ...], "cached": [bytes, ...], "qstrs": n}. A boot that keeps more than another
of the same firmware keeps something the boot should have let go (docs/firmware.md, "Heap").
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_host  # noqa: E402

_BOOT_LINE = re.compile(r"heap in use after boot (\d+)")


def _wait_boot_line(rig, n, timeout_s=20.0):
    # the n-th boot line of the firmware log (1-based), once it is there
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _BOOT_LINE.findall(rig.log_tail(10 ** 7))
        if len(found) >= n:
            return int(found[n - 1])
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
    n = 0
    try:
        rig.start(wait_http_s=30)  # the first boot validates (no cache yet)
        for kind in ("validating", "cached"):
            while len(out[kind]) < boots:
                if n:
                    run_host.stop(rig.fw)
                    if kind == "validating" and os.path.exists(cache):
                        os.remove(cache)
                    rig.cfg = None  # the same flash and config.json
                    rig.start_firmware()
                n += 1
                out[kind].append(_wait_boot_line(rig, n))
        q = re.findall(r"n_qstr=(\d+)", rig.log_tail(10 ** 7))
        out["qstrs"] = int(q[-1]) if q else None
    finally:
        rig.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], usage=__doc__)
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--meter", default="kamstrup")
    ap.add_argument("--heap", default=None)
    args = ap.parse_args(argv)
    print(json.dumps(boot_heaps(args.boots, args.meter, args.heap)))


if __name__ == "__main__":
    main()
