# Thousands of frames through the whole app (UART -> decoder -> MQTT + HTTP) under a MicroPython heap
# cap (-X heapsize): no MemoryError, no crashed task, every frame decoded, and the heap does not grow.
import json
import os
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

mqtt = pytest.importorskip("paho.mqtt.client")

FRAMES = 3000
HEAP = "320K"  # the 64-bit unix port; boot uses ~190 KB of it (see docs/firmware.md for the ESP32)
GROWTH_LIMIT_BYTES = 12 * 1024


@pytest.mark.skipif(run_host.mosquitto_binary() is None, reason="mosquitto not installed (make mosquitto)")
def test_thousands_of_frames_under_a_heap_cap(tmp_path):
    # Aidon at 400x real time: a list 1/2 frame every ~6 ms, hourly lists included (~2 h of meter time)
    rig = run_host.Rig(str(tmp_path), meter="aidon", speed=400, heap=HEAP,
                       sim_args=["--no-pace", "--count", str(FRAMES), "--wait-client", "30"])
    states = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="heap-test")
    pause = threading.Event()
    stop = threading.Event()
    http_codes = []

    def hammer():
        while not stop.is_set():
            if pause.is_set():
                time.sleep(0.02)
                continue
            for path in ("/data.json", "/metrics", "/"):
                try:
                    http_codes.append(rig.http(path, timeout_s=10)[0])
                except OSError:
                    http_codes.append(-1)

    try:
        rig.start()
        c.on_message = lambda cl, u, m: states.append(m.payload)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe("han/state")
        c.connect("127.0.0.1", rig.mqtt_port)
        c.loop_start()
        t = threading.Thread(target=hammer)
        t.start()
        samples = []
        deadline = time.monotonic() + 120
        st = None
        while time.monotonic() < deadline:
            time.sleep(1.5)
            pause.set()
            time.sleep(0.3)  # let in-flight requests finish: measure the app, not a client's page
            st = json.loads(rig.http("/status?gc=1")[2])
            pause.clear()
            samples.append((st["readings"], st["heap_used_after_gc"]))
            if st["readings"] >= FRAMES:
                break
        stop.set()
        t.join(30)
        time.sleep(1.5)
        c.loop_stop()
        log = rig.log_tail(10 ** 7)
        assert rig.fw.poll() is None, log[-3000:]
        assert "MemoryError" not in log and "Traceback" not in log, log[-3000:]
        assert st["readings"] == FRAMES and st["decoder"]["frames_ok"] == FRAMES
        assert st["task_crashes"] == {} and st["healthy"] is True
        assert st["messages_per_list"]["3"] >= 1  # hourly lists went through too
        assert set(http_codes) <= {200, 503} and http_codes.count(200) > 100
        # only the latest state is kept while MQTT is busy: none lost that was not superseded
        assert len(states) >= 500
        assert st["mqtt"]["published"] + st["mqtt"]["superseded"] == FRAMES
        steady = [h for n, h in samples if n >= FRAMES // 5]
        assert len(steady) >= 3, samples
        growth = max(steady) - min(steady)
        print("heap after gc (readings, bytes):", samples)
        assert growth <= GROWTH_LIMIT_BYTES, samples
    finally:
        stop.set()
        rig.close()


BOOT_SPREAD_LIMIT_BYTES = 1024  # validating and cached boots of one firmware: the same live objects


def test_every_boot_keeps_the_same_heap(tmp_path):
    """On the 32-bit stand-in at 112 KB: a boot that validates config.json (config.py loaded, then
    unloaded) keeps no more heap than one that takes the validation's cache. (A boot that built the
    app before the event loop kept config.py's ~3 KB for good on some builds: a pointer left on the C
    stack under the loop's long-lived frames.)"""
    binary = run_host.standin_binary()
    if binary is None:
        pytest.skip("no 32-bit ESP32 stand-in here (../shared/tools/esp32like/micropython-esp32stock, or set "
                    "HANPORT_MICROPYTHON32)")
    import boot_heap

    r = boot_heap.boot_heaps(2, "kamstrup", interpreter=binary, workdir=str(tmp_path))
    print("heap in use after boot:", r)
    every = r["validating"] + r["cached"]
    assert max(every) - min(every) < BOOT_SPREAD_LIMIT_BYTES, r
