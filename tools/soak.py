# The device load: the firmware as `make deploy` installs it, under an interpreter and a heap cap, fed
# by a simulated meter (clock 60x: hourly lists and accounting run), 3 HTTP clients and an MQTT watcher.
"""Usage: python tools/soak.py [--meter aidon|kamstrup] [--heap 112K] [--seconds 600]
                              [--interpreter PATH] [--smallest] [--frozen]

Pass: the process stays up, no MemoryError and no task crash, every HTTP answer is 200, and new
readings reach both HTTP (/data.json seq) and MQTT (han/state) in every 30 s window.
--smallest searches the smallest passing heap in 8 KB steps (what `make bench` prints).
The default interpreter is the 32-bit stand-in of a stock ESP32 image (HANPORT_MICROPYTHON32, or
../shared/tools/esp32like/micropython-esp32stock).
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_host  # noqa: E402

PATHS = ("/data.json", "/status", "/metrics", "/")
WINDOW_S = 30


class Load:
    """HTTP clients each fetching PATHS once a second, and an MQTT subscriber counting states."""

    def __init__(self, rig, clients=3):
        self.rig = rig
        self.clients = clients
        self.stop = threading.Event()
        self.codes = {}
        self.failures = []  # (time, path, what) of every non-200 answer or error
        self.states = []  # arrival times of han/state messages
        self.offline = 0  # `offline` seen on han/status (the last will: a dropped connection)
        self.seqs = []  # (time, seq) seen on /data.json
        self.lock = threading.Lock()
        self.threads = []
        self.mq = None

    def _client(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            for path in PATHS:
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
        for _ in range(self.clients):
            t = threading.Thread(target=self._client, daemon=True)
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
         speed=60.0, env_extra=None):
    """Run the load; returns a dict of the verdict and figures (never raises on a failing firmware)."""
    interpreter = interpreter or run_host.standin_binary()
    if interpreter is None:
        raise RuntimeError("no 32-bit stand-in (set HANPORT_MICROPYTHON32)")
    workdir = workdir or tempfile.mkdtemp(prefix="soak-")
    rig = run_host.Rig(workdir, meter=meter, speed=speed, heap=heap, interpreter=interpreter, env_extra=env_extra)
    res = {"meter": meter, "heap": heap, "seconds": seconds, "ok": False, "why": []}
    load = None
    try:
        try:
            rig.start(wait_http_s=30)
        except RuntimeError as e:
            res["why"].append("did not start: %s" % str(e)[-600:])
            return res
        load = Load(rig, clients)
        load.start()
        t0 = time.monotonic()
        low_free = None
        last_status = None
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
        load.finish()
        log = rig.log_tail(10 ** 7)
        alive = rig.fw.poll() is None
        if not alive:
            res["why"].append("firmware exited with %s" % rig.fw.returncode)
        for bad in ("MemoryError", "Traceback", "crashed"):
            if bad in log:
                i = log.index(bad)
                res["why"].append("%s in the log: %s" % (bad, log[max(0, i - 300): i + 300]))
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
        boot = _boot_heap(log)
        res.update({
            "http_answers": sum(load.codes.values()), "http_codes": load.codes, "mqtt_states": len(load.states),
            "heap_used_after_boot": boot[0], "heap_free_after_boot": boot[1], "lowest_free_after_gc": low_free,
            "readings": last_status and last_status.get("readings"),
            "task_crashes": last_status and last_status.get("task_crashes"),
            "mqtt_connects": last_status and last_status["mqtt"].get("connects"),
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


def _boot_heap(log):
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


def smallest_heap(meter, seconds, interpreter=None, start_kb=160, floor_kb=48, step_kb=8):
    """Smallest heap (step_kb steps) at which the load passes: walks down from start_kb until a failure."""
    best = None
    kb = start_kb
    while kb >= floor_kb:
        r = soak(meter, "%dK" % kb, seconds, interpreter)
        if not r["ok"]:
            return best, r
        best = kb
        kb -= step_kb
    return best, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meter", default="aidon", choices=("aidon", "kaifa", "kamstrup"))
    ap.add_argument("--heap", default=run_host.ESP32_HEAP)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interpreter", default=None)
    ap.add_argument("--smallest", action="store_true", help="search the smallest passing heap (8 KB steps)")
    ap.add_argument("--start-kb", type=int, default=160)
    args = ap.parse_args(argv)
    if args.smallest:
        kb, fail = smallest_heap(args.meter, args.seconds, args.interpreter, args.start_kb)
        print(json.dumps({"meter": args.meter, "smallest_heap_kb": kb,
                          "first_failure": fail and {"heap": fail["heap"], "why": fail["why"]}}))
        return 0 if kb else 1
    r = soak(args.meter, args.heap, args.seconds, args.interpreter)
    print(json.dumps(r, indent=1))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
