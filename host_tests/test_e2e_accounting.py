# End to end, the energy accounting as users see it: the firmware under MicroPython fed by a Kamstrup
# simulator at 360x (an hour every 10 s), mosquitto; /data.json, retained <base>/accounting, discovery.
import json
import os
import sys
import time
from decimal import Decimal

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402
from test_e2e_mqtt import Sub, mqtt  # noqa: E402,F401  (paho, or the module is skipped)

from hanport import HanReader  # noqa: E402
from hanport import reading as R  # noqa: E402

pytestmark = [pytest.mark.skipif(run_host.mosquitto_binary() is None, reason="mosquitto not installed"),
              pytest.mark.usefixtures("board")]

SPEED = 360  # meter seconds per wall second: an hour in 10 s
START = "2024-02-01T10:59:50"  # the first hourly list (11:00:05) comes at once, then one every 10 s
ACC_SENSORS = ("last_hour_import_kwh", "last_hour_export_kwh", "today_import_kwh", "today_export_kwh",
               "month_capacity_kw", "capacity_step", "capacity_headroom_kwh", "next_step_headroom_kwh")
STEPS_W = (2000, 5000, 10000, 15000, 20000, 25000, 50000, 75000, 100000)  # the default thresholds


def _hourly_counters(rig):
    """{local hour "2024-02-01T12": (import Wh, export Wh)} of the hourly lists the simulator sent."""
    out = {}
    for f in rig.frames_sent():
        if f["list"] != 3:
            continue
        rd = list(HanReader().feed(bytes.fromhex(f["hex"])))[0]
        wh = []
        for field in (R.F_E_IMPORT, R.F_E_EXPORT):
            value, exp = rd.fixed(field)
            wh.append(value * 10 ** (exp + 3))
        out[f["meter_time"][:13]] = tuple(wh)
    return out


def _kwh(wh):
    return Decimal(wh) / 1000


def _expected(rig, last_hour_start):
    """The accounting values implied by the counters the simulator sent, up to the end of last_hour_start
    (hours from the first hourly list on, all on 2024-02-01)."""
    lists = _hourly_counters(rig)
    first = int(START[11:13]) + 1
    end = int(last_hour_start[11:13]) + 1
    e = [lists["2024-02-01T%02d" % hh] for hh in range(first, end + 1)]
    hours = [(e[i + 1][0] - e[i][0], e[i + 1][1] - e[i][1]) for i in range(len(e) - 1)]
    cap_w = max(h[0] for h in hours)  # one day: the month's value is that day's highest hour
    return {
        "last_hour_import_kwh": _kwh(hours[-1][0]), "last_hour_export_kwh": _kwh(hours[-1][1]),
        "today_import_kwh": _kwh(e[-1][0] - e[0][0]), "today_export_kwh": _kwh(e[-1][1] - e[0][1]),
        "month_import_kwh": _kwh(e[-1][0] - e[0][0]),
        "month_capacity_kw": _kwh(cap_w), "capacity_step": sum(1 for t in STEPS_W if cap_w >= t),
        "last_hour_estimated": False, "today_estimated": False, "capacity_estimated": False,
    }, len(hours)


def _acc(body):
    return json.loads(body, parse_float=Decimal)["accounting"]


def test_accounting_in_data_json_mqtt_and_discovery(tmp_path):
    rig = run_host.Rig(str(tmp_path), meter="kamstrup", speed=SPEED,
                       sim_args=["--start", START, "--wait-client", "30"],
                       overrides={"mqtt.accounting_interval_s": 3, "mqtt.expire_after_s": 90})
    sub = None
    try:
        rig.start()
        sub = Sub(rig.mqtt_port, ("han/accounting", "homeassistant/#"))
        # two complete hours (11-12, 12-13) need the hourly lists of 11:00, 12:00 and 13:00: ~20 s
        deadline = time.monotonic() + 35
        acc = None
        while time.monotonic() < deadline:
            acc = _acc(rig.http("/data.json")[2])
            if acc["last_hour_start"] and acc["last_hour_start"] >= "2024-02-01T12:00":
                break
            time.sleep(0.3)
        assert acc and acc["last_hour_start"] and acc["last_hour_start"] >= "2024-02-01T12:00", \
            (acc, rig.log_tail())
        # /data.json: exact decimals of the counter differences (a list 3 may land between the reads, and
        # today's sum follows it once the ticker made the summary again: under a loaded CI, >0.6 s once)
        for _ in range(10):
            acc = _acc(rig.http("/data.json")[2])
            want, n_hours = _expected(rig, acc["last_hour_start"])
            if all(acc[k] == v for k, v in want.items()):
                break
            time.sleep(0.3)
        assert n_hours >= 2
        for k, v in want.items():
            assert acc[k] == v, (k, acc[k], v, acc)
        assert acc["last_hour_start"].endswith(":00:00+01:00")
        lo, hi = acc["capacity_step_low_kw"], acc["capacity_step_high_kw"]
        assert lo <= acc["month_capacity_kw"] < hi
        for k in ("capacity_headroom_kwh", "next_step_headroom_kwh", "current_hour_import_kwh_est"):
            assert isinstance(acc[k], Decimal) and acc[k] >= 0, k
        assert acc["last_month_capacity_kw"] is None  # January: no day recorded, not known (not 0)
        # the retained accounting message: a late subscriber gets it, equal to what /data.json shows
        assert sub.wait(lambda m: any(x[0] == "han/accounting" for x in m), 10), rig.log_tail()
        node = rig.status()["node_id"]
        late = Sub(rig.mqtt_port, ("han/accounting", "homeassistant/sensor/%s/+/config" % node))
        assert late.wait(lambda m: len(m) >= 1 + len(ACC_SENSORS), 10)
        late.close()
        topic, payload, retained, _ = late.topic("han/accounting")[0]
        assert retained is True
        first = {}  # the discovery configs are retained too: each topic's first message came from the broker's
        for x in late.msgs:  # store (one published while subscribed reaches a subscriber with retain unset)
            first.setdefault(x[0], x[2])
        assert all(first.values()), first
        msg = json.loads(payload, parse_float=Decimal)
        assert sorted(msg) == sorted(acc)
        want, _ = _expected(rig, msg["last_hour_start"])
        for k, v in want.items():
            assert msg[k] == v, (k, msg[k], v)
        # published at each completed hour, and rate-limited: at least 1 s apart, and a message without
        # a new hour at least mqtt.accounting_interval_s (3 s) after the one before
        msgs = [(json.loads(p), t) for tp, p, _, t in sub.topic("han/accounting")]
        starts = [m["last_hour_start"] for m, _ in msgs]
        assert "2024-02-01T11:00:00+01:00" in starts and "2024-02-01T12:00:00+01:00" in starts, starts
        for i in range(1, len(msgs)):
            (a, ta), (b, tb) = msgs[i - 1], msgs[i]
            assert tb - ta > 0.7, (a, b)
            if a["last_hour_start"] == b["last_hour_start"]:
                assert tb - ta > 2.5, (a, b, tb - ta)
        # discovery: one retained config per accounting sensor, the meter's device block
        assert sub.wait(lambda m: sum(1 for x in m if x[0].endswith("/config") and
                                      x[0].split("/")[3] in ACC_SENSORS) >= len(ACC_SENSORS), 10)
        cfgs = {}
        meter_dev = None
        for tp, p, _, _ in sub.msgs:
            if not tp.startswith("homeassistant/sensor/%s/" % node):
                continue
            c = json.loads(p)
            key = tp.split("/")[3]
            if key == "active_import_w":
                meter_dev = c["device"]
            if key in ACC_SENSORS:
                cfgs[key] = c
        assert sorted(cfgs) == sorted(ACC_SENSORS)
        for key, c in cfgs.items():
            assert c["state_topic"] == "han/accounting" and c["availability_topic"] == "han/status"
            assert c["unique_id"] == "%s_%s" % (node, key)
            assert c["value_template"] == "{{ value_json.%s }}" % key
            assert c["device"] == meter_dev and c["device"]["manufacturer"] == "Kamstrup"
            assert c["state_class"] == "measurement" and c.get("device_class") != "energy"
        assert cfgs["month_capacity_kw"]["device_class"] == "power"
        assert cfgs["month_capacity_kw"]["unit_of_measurement"] == "kW"
        assert cfgs["today_import_kwh"]["unit_of_measurement"] == "kWh"
        # re-sent when Home Assistant comes online
        n_before = sum(1 for x in sub.msgs if x[0].split("/")[-2:-1] == ["capacity_step"])
        sub.publish("homeassistant/status", b"online")
        assert sub.wait(lambda m: sum(1 for x in m if x[0].split("/")[-2:-1] == ["capacity_step"]) > n_before,
                        10), rig.log_tail()
        st = json.loads(rig.http("/status")[2], parse_float=Decimal)
        assert st["mqtt"]["accounting_published"] >= 2
        assert st["accounting"]["hook_errors"] == 0 and st["task_crashes"] == {}
        # /status carries the /data.json object (same cache) and the hourly lists' health
        health = {k: st["accounting"].pop(k) for k in ("hook_errors", "hook_last_error", "repeats", "gaps",
                                                       "rejects")}
        assert health == {"hook_errors": 0, "hook_last_error": None, "repeats": 0, "gaps": 0, "rejects": 0}, health
        assert sorted(st["accounting"]) == sorted(acc) and st["accounting"]["last_hour_start"]
        # the hourly lists' history was saved on flash (by the ticker, a moment after each list)
        flash = os.path.join(rig.workdir, "flash")
        assert [f for f in os.listdir(flash) if f.startswith("accounting.")], os.listdir(flash)
    finally:
        if sub is not None:
            sub.close()
        rig.close()
