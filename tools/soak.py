# The device load: the firmware as `make deploy` installs it, under an interpreter and a heap cap, fed
# by a simulated meter (clock 60x: hourly lists and accounting run), 3 HTTP clients and an MQTT watcher.
"""Usage: python tools/soak.py [--meter aidon|kamstrup] [--heap 112K] [--seconds 600]
                              [--interpreter PATH] [--smallest] [--frozen]

Pass: the process stays up, no MemoryError and no task crash, every HTTP answer is 200, and new
readings reach both HTTP (/data.json seq) and MQTT (han/state) in every 30 s window.
--smallest searches the smallest passing heap in 8 KB steps (tools/bench_heap.py, run by `make bench`,
does it for both meters and both installs). --frozen: the interpreter (--interpreter) is an image with
the app frozen in (build-frozen.sh manifest.py) and the flash holds main.py and config.json only.
The default interpreter is the 32-bit stand-in of a stock ESP32 image (HANPORT_MICROPYTHON32, or
../shared/tools/esp32like/micropython-esp32stock).
"""

import argparse
import contextlib
import fcntl
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_host  # noqa: E402

PATHS = ("/data.json", "/status", "/metrics", "/")  # each client, every second (the page: without its ETag)
# and the dashboard's other JSON as an open page asks for it (firmware/www/index.html: /power.json every
# 20 s, /history.json every 60 s): the first DASHBOARDS clients each have one such page open
DASHBOARD = (("/power.json", 20), ("/history.json", 60))
DASHBOARDS = 1
LAST_METRIC = b"\nhan_accounting_unassigned_gaps_total "  # the last family /metrics sends (accounting on)
WINDOW_S = 30
# soaks running side by side (tools/bench_heap.py) install and boot one at a time: the install
# rebuilds the shared build/ trees, and two boots at once would compete for the CPU
START_LOCK = os.path.join(run_host.BUILD, ".soak-start.lock")


@contextlib.contextmanager
def one_start_at_a_time():
    os.makedirs(run_host.BUILD, exist_ok=True)
    with open(START_LOCK, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


class Load:
    """HTTP clients each fetching PATHS once a second, and an MQTT subscriber counting states."""

    def __init__(self, rig, clients=3, dashboards=DASHBOARDS):
        self.rig = rig
        self.clients = clients
        self.dashboards = dashboards
        self.stop = threading.Event()
        self.codes = {}
        self.failures = []  # (time, path, what) of every non-200 answer or error
        self.states = []  # arrival times of han/state messages
        self.offline = 0  # `offline` seen on han/status (the last will: a dropped connection)
        self.seqs = []  # (time, seq) seen on /data.json
        self.lock = threading.Lock()
        self.threads = []
        self.mq = None

    def _client(self, index):
        second = index * 7  # the clients' dashboard requests staggered
        while not self.stop.is_set():
            t0 = time.monotonic()
            second += 1
            paths = PATHS
            if index < self.dashboards:
                paths = PATHS + tuple(path for path, every_s in DASHBOARD if second % every_s == 0)
            for path in paths:
                try:
                    code, _, body = self.rig.http(path, timeout_s=10)
                except (OSError, http.client.HTTPException) as e:
                    code, body = -1, repr(e).encode()
                with self.lock:
                    self.codes[code] = self.codes.get(code, 0) + 1
                    if code != 200:
                        self.failures.append((time.monotonic(), path, code, body[:120]))
                    elif path == "/data.json":
                        try:
                            self.seqs.append((time.monotonic(), json.loads(body)["seq"]))
                        except (ValueError, KeyError):
                            self.failures.append((time.monotonic(), path, "bad json", body[:120]))
                    elif path in ("/status", "/power.json", "/history.json"):  # streamed: whole only if it parses
                        try:
                            json.loads(body)
                        except ValueError:
                            self.failures.append((time.monotonic(), path, "bad json", body[-120:]))
                    elif path == "/metrics" and (not body.endswith(b"\n") or LAST_METRIC not in body):
                        self.failures.append((time.monotonic(), path, "cut short", body[-120:]))
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

    def start(self):
        import paho.mqtt.client as mqtt

        def on_message(c, u, m):
            with self.lock:
                if m.topic.endswith("/state"):
                    self.states.append(time.monotonic())
                elif m.topic.endswith("/status") and m.payload == b"offline":
                    self.offline += 1

        self.mq = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-%d" % os.getpid())
        self.mq.on_message = on_message
        self.mq.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe([("han/state", 0), ("han/status", 0)])
        self.mq.connect("127.0.0.1", self.rig.mqtt_port)
        self.mq.loop_start()
        for index in range(self.clients):
            t = threading.Thread(target=self._client, args=(index,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)
        if self.mq is not None:
            self.mq.loop_stop()
            self.mq.disconnect()


def soak(meter="aidon", heap=run_host.ESP32_HEAP, seconds=600, interpreter=None, workdir=None, clients=3,
         dashboards=DASHBOARDS, speed=60.0, env_extra=None, frozen_app=False, start=None):
    """Run the load; returns a dict of the verdict and figures (never raises on a failing firmware).
    frozen_app: the interpreter freezes the app, the flash holds main.py and config.json only."""
    interpreter = interpreter or run_host.standin_binary()
    if interpreter is None:
        raise RuntimeError("no 32-bit stand-in (set HANPORT_MICROPYTHON32)")
    if os.sep in interpreter:
        interpreter = os.path.abspath(interpreter)  # the firmware runs in its flash folder
    workdir = workdir or tempfile.mkdtemp(prefix="soak-")
    sim_args = ("--start", start) if start else ()
    if meter.startswith("wn"):  # the Austrian push list every 10 s of meter time (the real one: every second), as
        sim_args += ("--interval", "10")  # often as a Kamstrup's list at the same speed
    rig = run_host.Rig(workdir, meter=meter, speed=speed, heap=heap, interpreter=interpreter, env_extra=env_extra,
                       frozen_app=frozen_app, sim_args=sim_args)
    res = {"meter": meter, "heap": heap, "seconds": seconds, "install": "frozen" if frozen_app else "deploy",
           "ok": False, "why": [], "workdir": workdir}
    load = None
    try:
        try:
            with one_start_at_a_time():
                rig.start(wait_http_s=30)
        except RuntimeError as e:
            res["why"].append("did not start: %s" % str(e)[-600:])
            boot = heap_after_boot(rig.log_tail(10 ** 7))
            res.update({"heap_used_after_boot": boot[0], "heap_free_after_boot": boot[1]})
            return res
        load = Load(rig, clients, dashboards)
        load.start()
        t0 = time.monotonic()
        low_free = None
        last_status = None
        timeline = []  # (s since the load began, free after gc, HTTP active) every ~30 s
        while time.monotonic() - t0 < seconds and rig.fw.poll() is None:
            time.sleep(2)
            try:
                st = json.loads(rig.http("/status")[2])
            except (OSError, ValueError, http.client.HTTPException):
                continue
            last_status = st
            free = st.get("heap_free_after_gc")
            if free and (low_free is None or free < low_free):
                low_free = free
            if free and (not timeline or time.monotonic() - t0 - timeline[-1][0] >= 30):
                timeline.append((int(time.monotonic() - t0), free, st.get("http", {}).get("active")))
        load.finish()
        log = rig.log_tail(10 ** 7)
        alive = rig.fw.poll() is None
        if not alive:
            res["why"].append("firmware exited with %s" % rig.fw.returncode)
        for bad in ("MemoryError", "Traceback", "crashed"):
            if bad in log:
                res["why"].append("%s in the log: %s" % (bad, _log_excerpt(log, bad)))
        if load.failures:
            res["why"].append("%d HTTP answers not 200, first: %r" % (len(load.failures), load.failures[0][1:]))
        if load.offline:
            res["why"].append("MQTT offline (last will) seen %d times" % load.offline)
        # readings reach HTTP and MQTT throughout: something new in every window after the first
        end = time.monotonic()
        if not load.states or not load.seqs:
            res["why"].append("no readings on %s at all" % ("MQTT" if not load.states else "HTTP"))
        w = t0 + 15  # boot and the first MQTT connect

        while w + WINDOW_S <= end:
            http_new = [s for t, s in load.seqs if w <= t < w + WINDOW_S]
            mqtt_new = [t for t in load.states if w <= t < w + WINDOW_S]
            if len(set(http_new)) < 2 or not mqtt_new:
                res["why"].append("no new readings on %s between %d and %d s" % (
                    "HTTP" if len(set(http_new)) < 2 else "MQTT", w - t0, w - t0 + WINDOW_S))
                break
            w += WINDOW_S
        boot = heap_after_boot(log)
        res.update({
            "http_answers": sum(load.codes.values()), "http_codes": load.codes, "mqtt_states": len(load.states),
            "heap_used_after_boot": boot[0], "heap_free_after_boot": boot[1], "lowest_free_after_gc": low_free,
            "qstrs_after_boot": boot_qstrs(log),
            "readings": last_status and last_status.get("readings"),
            "task_crashes": last_status and last_status.get("task_crashes"),
            "mqtt_connects": last_status and last_status["mqtt"].get("connects"),
            "free_after_gc_timeline": timeline,
        })
        if last_status and last_status.get("task_crashes"):
            res["why"].append("task crashes: %r" % last_status["task_crashes"])
        if last_status and last_status["mqtt"].get("connects", 0) > 1:
            res["why"].append("MQTT connected %d times" % last_status["mqtt"]["connects"])
        res["ok"] = alive and not res["why"]
        return res
    finally:
        if load is not None:
            load.finish()
        rig.close()


def _log_excerpt(log, word, max_lines=12):
    """The log line where word first occurs; for a traceback, the traceback down to its error line."""
    lines = log[log.rfind("\n", 0, log.index(word)) + 1:].splitlines()
    out = lines[:1]
    if word == "Traceback":
        for line in lines[1:max_lines]:
            out.append(line)
            if not line.startswith(" "):
                break
    return "\n".join(out)


QSTR_ROOM_MIN = 25  # names the running app leaves before the next qstr pool (~8 KB at once: see docs/firmware.md):
# a meter outside Norway loads meters_eu (10 more) with its first frame; with 8 left one crossed it and ran out.
# A ciphered one interns ~76 more at boot (test_e2e_push_meter keeps the same room for it).


def next_qstr_pool(interpreter):
    """The number of the first name (qstr) of the interpreter's next large pool (~8 KB of heap at once on the
    stand-in), found by host_tests/mp_qstr_check.py."""
    p = subprocess.run([interpreter, "-X", "heapsize=512K", os.path.join(run_host.ROOT, "host_tests",
                                                                           "mp_qstr_check.py")],
                       capture_output=True, text=True, timeout=120)
    if "n_qstr=" not in p.stdout:
        raise RuntimeError("mp_qstr_check.py: " + p.stdout + p.stderr)
    return int(p.stdout.split("n_qstr=")[1].split(",")[0])


def boot_qstrs(log):
    """The names (qstrs) the app had interned when it started running (its "qstr pool: ... n_qstr=N" line)."""
    for line in log.splitlines():
        if "qstr pool:" in line and "n_qstr=" in line:
            return int(line.split("n_qstr=")[1].split(",")[0])
    return None


def heap_after_boot(log):
    """(in use, free) after boot from the app's "running; heap in use after boot N bytes, free M" line."""
    key = "heap in use after boot "
    i = log.find(key)
    if i < 0:
        return None, None
    words = log[i + len(key):].split()
    try:
        return int(words[0]), int(words[3])
    except (IndexError, ValueError):
        return None, None


def smallest_heap(meter, seconds, interpreter=None, start_kb=160, floor_kb=48, step_kb=8, frozen_app=False):
    """Smallest heap (step_kb steps) at which the load passes: walks down from start_kb until a failure."""
    best = None
    kb = start_kb
    while kb >= floor_kb:
        r = soak(meter, "%dK" % kb, seconds, interpreter, frozen_app=frozen_app)
        if not r["ok"]:
            return best, r
        best = kb
        kb -= step_kb
    return best, None


def bisect_smallest_heap(try_heap, first_kb=112, floor_kb=16, ceiling_kb=512, step_kb=8):
    """Smallest heap on the step_kb grid at which the load passes, by bisection (fewer steps than a walk
    down; it assumes that a larger heap passes where a smaller one does). try_heap(kb) runs one step
    and returns its soak() result. first_kb is tried first (a plain ESP32's 112 KB: its figures are
    wanted anyway); a failure there doubles the heap up to ceiling_kb to find one that passes; a pass
    there takes the heap in use after boot as the lower bound. Returns (kb or None, [results])."""
    results = []

    def passes(kb):
        results.append(try_heap(kb))
        return results[-1]["ok"]

    def on_grid(kb):
        return max(step_kb, kb // step_kb * step_kb)

    high = on_grid(first_kb)
    low = on_grid(floor_kb) - step_kb  # taken as failing without a run
    if passes(high):
        used = results[-1].get("heap_used_after_boot")
        if used:  # no heap below what the boot leaves in use can pass (one step of margin)
            low = max(low, on_grid(used // 1024) - step_kb)
    else:
        while True:
            low = high
            if high >= ceiling_kb:
                return None, results
            high = min(on_grid(ceiling_kb), on_grid(high * 2))
            if passes(high):
                break
    while high - low > step_kb:
        mid = max(low + step_kb, on_grid((low + high) // 2))
        if passes(mid):
            high = mid
        else:
            low = mid
    return high, results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meter", default="aidon", choices=("aidon", "kaifa", "kamstrup", "wn", "wn-clear"),
                    help="wn: the simulated Austrian AM550, ciphered (with --frozen on a plain ESP32's heap); "
                         "wn-clear: its list in clear")
    ap.add_argument("--heap", default=run_host.ESP32_HEAP)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interpreter", default=None)
    ap.add_argument("--start", default=None, help="the meter's local start time, ISO (default: now): e.g. a "
                    "month's last evening, so the run crosses the month boundary")
    ap.add_argument("--smallest", action="store_true", help="search the smallest passing heap (8 KB steps)")
    ap.add_argument("--start-kb", type=int, default=160)
    ap.add_argument("--dashboards", type=int, default=DASHBOARDS,
                    help="clients that also poll the dashboard's /power.json and /history.json as an open page")
    ap.add_argument("--frozen", action="store_true",
                    help="the interpreter freezes the app (build-frozen.sh manifest.py): main.py alone on flash")
    args = ap.parse_args(argv)
    if args.frozen and not args.interpreter:
        ap.error("--frozen needs --interpreter (a stand-in built with the app frozen in)")
    if args.smallest:
        kb, fail = smallest_heap(args.meter, args.seconds, args.interpreter, args.start_kb, frozen_app=args.frozen)
        print(json.dumps({"meter": args.meter, "smallest_heap_kb": kb,
                          "first_failure": fail and {"heap": fail["heap"], "why": fail["why"]}}))
        return 0 if kb else 1
    r = soak(args.meter, args.heap, args.seconds, args.interpreter, frozen_app=args.frozen, start=args.start,
                  dashboards=args.dashboards)
    print(json.dumps(r, indent=1))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
