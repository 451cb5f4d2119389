# Home Assistant never blank (firmware/ under MicroPython, a Kamstrup simulator at 360x: an hour every
# 10 s): the meter's energy counters retained on <base>/energy, their sensors announced as soon as the
# meter has identified itself (before its first hourly list), without expire_after.
import json
import os
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

pytestmark = [pytest.mark.usefixtures("board")]

ENERGY = {"active_import_kwh", "active_export_kwh", "reactive_import_kvarh", "reactive_export_kvarh"}


def _collect(port, topics, until, timeout_s):
    import paho.mqtt.client as mqtt

    got = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="energy-test-%d" % os.getpid())
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, m.payload)
    c.connect("127.0.0.1", port)
    c.subscribe([(t, 0) for t in topics])
    c.loop_start()
    try:
        deadline = time.monotonic() + timeout_s
        while not until(got) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        c.loop_stop()
        c.disconnect()
    return got


def test_energy_sensors_announced_early_and_counters_retained(tmp_path):
    # speed 20: the first hourly list comes minutes after start; the meter identifies itself in list 2
    r = run_host.Rig(str(tmp_path), meter="kamstrup", speed=20, mqtt=True)
    try:
        r.start()
        cfg_topic = "homeassistant/sensor/+/active_import_kwh/config"
        got = _collect(r.mqtt_port, (cfg_topic,), lambda g: g, 30)
        assert got, r.log_tail()
        assert r.status()["messages_per_list"]["3"] == 0  # announced before the first hourly list
        cfg = json.loads(next(iter(got.values())))
        assert cfg["state_topic"] == "han/energy" and "expire_after" not in cfg and cfg["device_class"] == "energy"
        assert cfg["state_class"] == "total_increasing" and cfg["unit_of_measurement"] == "kWh"
        assert "{{ value_json.active_import_kwh" in cfg["value_template"]
    finally:
        r.close()


def test_energy_counters_retained_after_an_hourly_list(tmp_path):
    r = run_host.Rig(str(tmp_path), meter="kamstrup", speed=360, mqtt=True)
    try:
        r.start()
        deadline = time.monotonic() + 40
        while r.status()["messages_per_list"]["3"] < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        # a subscriber that comes later (Home Assistant restarting) gets the latest counters at once
        got = _collect(r.mqtt_port, ("han/energy",), lambda g: g, 10)
        energy = json.loads(got["han/energy"])
        assert set(energy) == ENERGY
        latest = json.loads(r.http("/data.json")[2])
        if latest.get("list") == 3:  # the counters the meter sent, exactly (decimal text, no float)
            for k in ENERGY:
                assert energy[k] == latest[k], k
    finally:
        r.close()
