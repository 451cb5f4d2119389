# Firmware benchmarks on the host (printed, never asserted): frame-to-MQTT latency and /data.json
# latency under concurrent clients, both while decoding; the heap in use after boot and in steady state.
"""Usage: python tools/bench_firmware.py [--seconds 15] [--clients 1,4,8]

Runs firmware/ (as .mpy, like on the device) under the MicroPython unix port with a loopback
mosquitto and the meter simulator (Kaifa: every message carries the meter clock, so each MQTT
state is matched to the frame that produced it). Times are wall-clock on this machine: an ESP32 at
240 MHz is roughly 10-30x slower at the Python parts, and its WiFi adds milliseconds.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_host  # noqa: E402


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def fmt_ms(values):
    if not values:
        return "no samples"
    return "median %.2f ms, p99 %.2f ms, max %.2f ms (n=%d)" % (
        statistics.median(values) * 1000, pct(values, 99) * 1000, max(values) * 1000, len(values))


def mqtt_latency(rig, seconds):
    import paho.mqtt.client as mqtt

    arrivals = {}
    lock = threading.Lock()

    def on_message(c, u, m):
        t = time.time()
        d = json.loads(m.payload)
        with lock:
            arrivals.setdefault(d.get("meter_time"), t)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench")
    c.on_message = on_message
    c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe("han/state")
    c.connect("127.0.0.1", rig.mqtt_port)
    c.loop_start()
    time.sleep(seconds)
    c.loop_stop()
    c.disconnect()
    lat = []
    for f in rig.frames_sent():
        t = arrivals.get(f["meter_time"])
        if t is not None and f["sent"]:
            lat.append(t - f["t"])
    return lat


def http_latency(rig, clients, seconds):
    lat = []
    errors = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                code, _, _ = rig.http("/data.json", timeout_s=10)
            except OSError as e:
                code = repr(e)
            dt = time.perf_counter() - t0
            with lock:
                (lat if code == 200 else errors).append(dt if code == 200 else code)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--speed", type=float, default=20, help="meter clock x (Kaifa: a frame every 2 s / speed)")
    args = ap.parse_args(argv)
    have_broker = run_host.mosquitto_binary() is not None
    work = tempfile.mkdtemp(prefix="bench_fw_")
    rig = run_host.Rig(work, meter="kaifa", speed=args.speed, mqtt=have_broker, heap="512K")
    print("firmware benchmark: MicroPython unix port (%s), Kaifa simulator at x%g (a frame every %.0f ms), "
          "%s" % (os.path.basename(run_host.MICROPYTHON), args.speed, 2000 / args.speed,
                  "loopback mosquitto" if have_broker else "no broker (MQTT figures skipped)"))
    try:
        rig.start()
        time.sleep(1.0)
        st = rig.status()
        boot = None
        for line in rig.log_tail(100000).splitlines():
            if "heap in use after boot" in line:
                boot = int(line.split("after boot ")[1].split(" ")[0])
        print("heap in use after boot (after gc): %s bytes (64-bit unix port; -X heapsize=%s)" % (boot, rig.heap))
        if have_broker:
            lat = mqtt_latency(rig, args.seconds)
            print("frame -> MQTT state (last byte sent -> subscriber got it): %s" % fmt_ms(lat))
        for n in [int(x) for x in args.clients.split(",") if x]:
            before = rig.status()["readings"]
            lat, errors = http_latency(rig, n, args.seconds / 2)
            after = rig.status()["readings"]
            print("/data.json with %d concurrent client(s): %s, %.0f req/s, %d busy/errors; decoded %d frames "
                  "meanwhile" % (n, fmt_ms(lat), len(lat) / (args.seconds / 2), len(errors), after - before))
        st = json.loads(rig.http("/status?gc=1")[2])
        print("heap in use in steady state (after gc): %d bytes; free %d" % (st["heap_used_after_gc"],
                                                                        st["heap_free_after_gc"]))
        print("decoder: %d frames ok, %d readings, mqtt published %d, superseded %d" % (
            st["decoder"]["frames_ok"], st["readings"], st["mqtt"]["published"], st["mqtt"]["superseded"]))
    finally:
        rig.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
