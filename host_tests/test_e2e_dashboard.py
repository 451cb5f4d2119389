# The dashboard's data end to end (firmware/ under MicroPython, a Kamstrup simulator at 360x: an hour
# every 10 s): the page from flash, /data.json's latest values, /power.json, /history.json; MQTT's
# retained energy counters and the early energy discovery for Home Assistant.
import gzip
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

pytestmark = [pytest.mark.usefixtures("board")]


@pytest.fixture(scope="module")
def rig(board, tmp_path_factory):
    # the meter clock starts on a fixed morning: at "now" a run after 21:30 Oslo time crossed midnight at 360x,
    # and the history's last day (yesterday's, today having no hour booked yet) was not today's sum
    r = run_host.Rig(str(tmp_path_factory.mktemp("dash")), meter="kamstrup", speed=360, mqtt=True,
                     sim_args=["--start", "2024-03-05T08:05:00"])
    try:
        r.start()
        r.wait_hourly_lists(3)  # three hourly lists: hours, a day and the capacity known
        yield r
    finally:
        r.close()


def test_dashboard_page_from_flash_gzipped_and_revalidated(rig):
    code, headers, body = rig.http("/", headers={"Accept-Encoding": "gzip"})
    assert code == 200 and headers["Content-Encoding"] == "gzip" and headers["Content-Type"].startswith("text/html")
    with open(os.path.join(ROOT, "firmware", "www", "index.html"), "rb") as f:
        assert gzip.decompress(body) == f.read()
    tag = headers["ETag"]
    assert headers["Cache-Control"] == "no-cache"
    code, headers, body = rig.http("/", headers={"If-None-Match": tag})
    assert code == 304 and body == b""


def test_data_json_has_every_fields_latest_value_and_status_the_meter(rig):
    d = json.loads(rig.http("/data.json")[2])
    latest = d["latest"]
    # Kamstrup's three lists: list 1 power only, list 2 the phases, list 3 the counters: all of them here
    for key in ("active_import_w", "voltage_l1_v", "current_l3_a", "active_import_kwh", "reactive_export_kvarh"):
        assert key in latest and latest[key]["age_ms"] >= 0, key
    for key, v in d.items():  # the latest message's values are the latest values
        if key in latest:
            assert latest[key]["value"] == v, key
    meter = json.loads(rig.http("/status")[2])["meter"]
    assert meter["manufacturer"] == "Kamstrup" and meter["meter_id"] and meter["meter_type"]


def test_power_json_is_the_last_hour_in_minute_means(rig):
    p = json.loads(rig.http("/power.json")[2])
    assert p["step_s"] == 60 and len(p["import_w"]) == len(p["export_w"]) == 60
    assert 0 <= p["age_ms"] < 60000
    seen = [v for v in p["import_w"] if v is not None]  # (minutes of device time: none closed yet in a
    assert all(isinstance(v, int) and v >= 0 for v in seen)  # short run; test_e2e_browser waits for one)
    assert p["import_w"][0] is None  # the firmware has run for less than an hour


def test_history_json_matches_the_accounting(rig):
    code, headers, body = rig.http("/history.json")
    assert code == 200, body[:200]
    h = json.loads(body)
    acc = json.loads(rig.http("/data.json")[2])["accounting"]
    h2 = json.loads(rig.http("/history.json")[2])
    if h2["hours"] != h["hours"]:  # an hourly list came in between: take the newer pair
        h, acc = h2, json.loads(rig.http("/data.json")[2])["accounting"]
    hours = h["hours"]
    assert hours and all(b[0] - a[0] == 3600 for a, b in zip(hours, hours[1:], strict=False))
    start, imp, exp, est = hours[-1]
    assert imp == round(acc["last_hour_import_kwh"] * 1000) and exp == round(acc["last_hour_export_kwh"] * 1000)
    assert est is False and h["tz"] == "Europe/Oslo"
    run = h["running_hour"]
    assert run["start"] == start + 3600 and run["import_wh"] >= 0
    day = h["days"][-1]
    assert len(day) == 7 and day[1] == round(acc["today_import_kwh"] * 1000)
    month = h["months"][-1]
    assert month[2] == round(acc["month_import_kwh"] * 1000)
    cap = h["capacity"]
    assert cap["value_w"] == round(acc["month_capacity_kw"] * 1000) and cap["step"] == acc["capacity_step"]
    assert cap["step_low_w"] == round(acc["capacity_step_low_kw"] * 1000)
    assert 1 <= len(cap["top_days"]) <= cap["top_n"] == 3
    peaks = [d[1] for d in cap["top_days"]]
    assert peaks == sorted(peaks, reverse=True) and cap["value_w"] == sum(peaks) // len(peaks)
    for d in cap["top_days"]:  # each top day is a day of the history with that peak
        assert any(x[0] == d[0] and x[3] == d[1] and x[4] == d[2] for x in h["days"]), d
    assert cap["steps_w"][:3] == [2000, 5000, 10000]


def test_energy_counters_retained_and_announced(rig):
    import paho.mqtt.client as mqtt

    got = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dash-test")
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, m.payload)
    c.connect("127.0.0.1", rig.mqtt_port)
    c.subscribe([("han/energy", 0), ("homeassistant/sensor/+/active_import_kwh/config", 0)])
    c.loop_start()
    try:
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        c.loop_stop()
        c.disconnect()
    energy = json.loads(got["han/energy"])  # retained: a late subscriber (Home Assistant restarting) has it
    assert set(energy) == {"active_import_kwh", "active_export_kwh", "reactive_import_kvarh", "reactive_export_kvarh"}
    cfg = json.loads(next(v for k, v in got.items() if k.endswith("/config")))
    assert cfg["state_topic"] == "han/energy" and "expire_after" not in cfg and cfg["device_class"] == "energy"


def test_metrics_pass_promtool(rig):
    """promtool check metrics (Debian's prometheus package: make promtool) finds nothing to lint on the
    firmware's /metrics with the accounting and its month counters in it."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool here (make promtool: tools/apt_install.sh)")
    code, _, body = rig.http("/metrics")
    assert code == 200 and b"han_accounting_recorded_seconds_total" in body and b"han_month_export_wh" in body
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
