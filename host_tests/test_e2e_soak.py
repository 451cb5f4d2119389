# The heap budget, kept by every change: the firmware installed as `make deploy` installs it on a stock
# image runs the device load (tools/soak.py) on the 32-bit stand-in at run_host.STANDIN_TEST_HEAP.
import os
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402
import soak  # noqa: E402

METERS = ("aidon", "kamstrup")
SECONDS = float(os.environ.get("HANPORT_SOAK_S", "150"))  # `python tools/soak.py --seconds 600`: the full run
# (150 s at 60x: two and a half meter hours, so two hourly lists and their accounting per meter)

pytestmark = pytest.mark.skipif(run_host.mosquitto_binary() is None, reason="mosquitto not installed")


def test_aidon_and_kamstrup_within_the_heap_budget_with_3_http_clients(tmp_path):
    """Aidon and Kamstrup simulators at 60x (hourly lists and the accounting run), each against its
    own firmware at -X heapsize=STANDIN_TEST_HEAP (112K, a plain ESP32's heap),
    3 HTTP clients fetching /data.json, /status, /metrics and / every second, MQTT watched: no
    MemoryError, no task crash, every answer 200, readings on HTTP and MQTT in every 30 s window,
    one MQTT connection and no `offline`."""
    binary = run_host.standin_binary()
    if binary is None:
        pytest.skip("no 32-bit ESP32 stand-in here (../shared/tools/esp32like/micropython-esp32stock, or set "
                    "HANPORT_MICROPYTHON32): the heap budget of a plain ESP32 was not checked")
    results = {}

    def run(meter):
        results[meter] = soak.soak(meter, run_host.standin_test_heap(binary), SECONDS, binary, str(tmp_path / meter))

    threads = [threading.Thread(target=run, args=(m,)) for m in METERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 240)
    for meter in METERS:
        r = results[meter]
        print(meter, {k: r.get(k) for k in ("http_answers", "mqtt_states", "readings", "heap_used_after_boot",
                                             "heap_free_after_boot", "lowest_free_after_gc")})
        assert r["ok"], (meter, r["why"])
        assert r["http_answers"] >= SECONDS * 3 * 4 * 0.8 and r["mqtt_states"] > 0
    # the names interned (qstrs, never freed) leave room before this interpreter's next pool
    pool_starts = soak.next_qstr_pool(binary)  # the first name of the large pool
    for meter in METERS:
        used = results[meter]["qstrs_after_boot"]
        print(meter, "qstrs after boot", used, "the next pool at", pool_starts)
        assert used is not None and pool_starts - 1 - used >= soak.QSTR_ROOM_MIN, (
            "%s: %s names interned after boot, the next qstr pool (~8 KB of heap at once) begins at name %d: "
            "fewer new names (globals, attributes, short string constants) or fewer elsewhere"
            % (meter, used, pool_starts))
