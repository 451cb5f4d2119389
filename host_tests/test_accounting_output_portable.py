# The accounting as users see it: the /data.json and <base>/accounting object (exact kWh/kW text from
# the integers, null while unknown) and its Home Assistant discovery configs; CPython and MicroPython.
import json

import accounting_gen as G

from hanport import accounting_json as J
from hanport import accounting_views as V
from hanport import appjson, hass
from hanport import localtime as LT
from hanport import reading as R
from hanport.accounting import Accounting
from hanport.latest import Latest
from hanport.render import decimal

KEYS = [row[0] for row in J.ACCOUNTING_FIELDS]


def _h(y, m, d, hh=0):
    """UTC hour index of a UTC date and hour."""
    return LT.days_from_date(y, m, d) * 24 + hh


def _list3(h, imp, exp, p_imp=1500, p_exp=0):
    """A real Kaifa hourly list (counters in Wh) stamped h:00:10 local time."""
    return G.decode_one(G.templates("kaifa")[0].make(h * 3600, 10, imp, exp, p_imp, p_exp))


def _list2(t, p_imp, p_exp=0):
    return G.decode_one(G.templates("kaifa")[1].make(t, None, None, None, p_imp, p_exp))


def _obj(acc):
    text = appjson.accounting_json(acc.summary())
    d = json.loads(text)
    return text, d


def _text_of(text, key):
    """The literal JSON text of one top-level value (to check the exact decimals, not a float)."""
    i = text.index('"%s":' % key) + len(key) + 3
    j = i
    while text[j] not in ",}":
        j += 1
    return text[i:j]


def test_every_key_present_and_null_before_anything_is_known():
    acc = Accounting()
    text, d = _obj(acc)
    assert sorted(d) == sorted(KEYS) and len(KEYS) == len(set(KEYS))
    for k in KEYS:
        if k != "current_hour_partial":
            assert d[k] is None, k  # unknown is null, never 0
    assert d["current_hour_partial"] is True  # no power seen yet: nothing of this hour is covered


def test_history_values_stay_null_until_the_first_complete_hour():
    acc = Accounting()
    h = _h(2024, 2, 1, 10)
    acc.update(_list3(h, 1000000, 5000), h * 3600 + 10)  # the first hourly list: an anchor, no hour yet
    for k in range(1, 60):
        acc.update(_list2(h * 3600 + 10 + 10 * k, 3600, 0), h * 3600 + 10 + 10 * k)
    text, d = _obj(acc)
    s = acc.summary()
    assert s["today_import_wh"] == 0 and s["capacity_w"] == 0  # the summary's "nothing recorded yet"
    for k in KEYS:
        if k.startswith("current_hour_"):
            continue
        assert d[k] is None, k
    # power was seen from the hour boundary on: the running hour is a whole-hour estimate already
    assert _text_of(text, "current_hour_import_kwh_est") == decimal(s["current_hour_import_wh_est"], -3)
    assert s["current_hour_import_wh_est"] == 1500 * 10 // 3600 + 3600 * 580 // 3600
    assert d["current_hour_partial"] is False


def test_values_are_exact_decimals_of_the_integers():
    acc = Accounting()
    h = _h(2024, 2, 1, 10)
    imp = 1000000
    exp = 5000
    per_hour = (1234, 2001, 999, 3000)
    acc.update(_list3(h, imp, exp), h * 3600 + 10)
    for i, wh in enumerate(per_hour):
        t0 = (h + i) * 3600 + 10
        for k in range(1, 360):  # list 2 every 10 s: the running hour is integrated (not partial)
            acc.update(_list2(t0 + 10 * k, 1800, 7), t0 + 10 * k)
        imp += wh
        exp += 7
        acc.update(_list3(h + i + 1, imp, exp, 1800, 7), t0 + 3600)
    for k in range(1, 100):
        t = (h + 4) * 3600 + 10 + 10 * k
        acc.update(_list2(t, 1800, 7), t)
    s = acc.summary()
    text, d = _obj(acc)
    assert _text_of(text, "last_hour_import_kwh") == "3.000"
    assert _text_of(text, "last_hour_export_kwh") == "0.007"
    assert d["last_hour_start"] == "2024-02-01T14:00:00+01:00" and d["last_hour_estimated"] is False
    assert _text_of(text, "today_import_kwh") == "7.234" and _text_of(text, "today_export_kwh") == "0.028"
    assert _text_of(text, "month_import_kwh") == "7.234"
    # capacity: one day so far, its highest hour 3000 Wh -> 3.000 kW, step 1 (2-5 kW)
    assert _text_of(text, "month_capacity_kw") == "3.000"
    assert d["capacity_step"] == 1
    assert _text_of(text, "capacity_step_low_kw") == "2.000" and _text_of(text, "capacity_step_high_kw") == "5.000"
    assert d["today_estimated"] is False and d["month_estimated"] is False and d["capacity_estimated"] is False
    assert d["current_hour_partial"] is False
    assert _text_of(text, "current_hour_import_kwh_est") == decimal(s["current_hour_import_wh_est"], -3)
    assert s["current_hour_import_wh_est"] == 1800 * 990 // 3600  # 99 intervals of 10 s at 1800 W
    assert _text_of(text, "capacity_headroom_kwh") == decimal(s["capacity_headroom_wh"], -3)
    assert s["capacity_headroom_wh"] == 3000 - s["current_hour_import_wh_est"]
    assert _text_of(text, "next_step_headroom_kwh") == decimal(s["capacity_next_step_headroom_wh"], -3)
    assert s["capacity_next_step_headroom_wh"] == 5000 - s["current_hour_import_wh_est"]
    assert _text_of(text, "last_month_capacity_kw") == "null"  # January has no day in the history: not known
    # every value is the exact decimal of its summary integer, also where a float would round
    for key, src, exp_, _ in J.ACCOUNTING_FIELDS:
        if exp_ is not None and s[src] is not None:
            assert _text_of(text, key) == decimal(s[src], exp_), key


def test_gap_hours_are_marked_estimated():
    acc = Accounting()
    h = _h(2024, 3, 5, 6)
    acc.update(_list3(h, 2000000, 0), h * 3600 + 10)
    acc.update(_list3(h + 1, 2001000, 0), h * 3600 + 3610)
    acc.update(_list3(h + 4, 2010001, 0), h * 3600 + 4 * 3600 + 10)  # two lists lost: 9001 Wh over 3 hours
    text, d = _obj(acc)
    assert d["last_hour_estimated"] is True
    assert _text_of(text, "last_hour_import_kwh") == "3.000"  # 3001, 3000, 3000: remainder to the first
    assert d["today_estimated"] is True and d["month_estimated"] is True
    assert d["capacity_estimated"] is True  # the day's highest hour (3001 Wh) is a spread one
    assert _text_of(text, "month_capacity_kw") == "3.001"


def test_top_step_has_no_upper_bound_and_no_next_step():
    acc = Accounting(steps_kw=(2, 5))
    h = _h(2024, 2, 1, 10)
    acc.update(_list3(h, 1000000, 0), h * 3600 + 10)
    acc.update(_list3(h + 1, 1006000, 0), h * 3600 + 3610)
    text, d = _obj(acc)
    assert d["capacity_step"] == 2 and _text_of(text, "capacity_step_low_kw") == "5.000"
    assert d["capacity_step_high_kw"] is None and d["next_step_headroom_kwh"] is None
    assert _text_of(text, "month_capacity_kw") == "6.000"


def test_data_json_carries_the_accounting_object():
    acc_text = appjson.accounting_json(Accounting().summary())
    d = json.loads(_joined(appjson.data_json(None, 0, acc_text.encode(), Latest(), 0)))
    assert d["seq"] == 0 and d["age_ms"] is None and sorted(d["accounting"]) == sorted(KEYS)
    state = appjson.state_json('{"list":1,"active_import_w":1696,"obis":{}}', 3)
    d = json.loads(_joined(appjson.data_json(state.encode(), 250, acc_text.encode(), Latest(), 0)))
    assert d["age_ms"] == 250 and d["seq"] == 3 and d["active_import_w"] == 1696
    assert d["accounting"]["last_hour_import_kwh"] is None
    d = json.loads(_joined(appjson.data_json(state.encode(), 250, None, Latest(), 0)))
    assert "accounting" not in d and d["latest"] == {}  # accounting not running


def test_accounting_discovery_configs():
    dev = hass.device_block("han_ab12", "HAN reader", "0.1.0", "Kaifa", "MA304H3E", "6970631400000018")
    keys = set(KEYS)
    seen = set()
    for i in range(len(hass.ACCOUNTING_SENSORS)):
        key = hass.ACCOUNTING_SENSORS[i][0]
        assert key in keys  # read from the accounting message
        topic = hass.accounting_config_topic("homeassistant", "han_ab12", i)
        assert topic == "homeassistant/sensor/han_ab12/%s/config" % key
        c = json.loads(hass.accounting_config_payload(i, "han_ab12", "home/han", dev))
        assert c["unique_id"] == "han_ab12_" + key
        assert c["state_topic"] == "home/han/accounting"
        assert c["value_template"] == "{{ value_json.%s }}" % key
        assert c["availability_topic"] == "home/han/status"
        assert c["payload_available"] == "online" and c["payload_not_available"] == "offline"
        assert c["device"] == dev
        assert "expire_after" not in c  # the message is retained and sent only on change
        # derived values: never energy-dashboard sensors (docs/han-notes.md §energy-sensors)
        assert c["state_class"] == "measurement"
        assert c.get("device_class") != "energy"
        if key.endswith("_kwh"):
            assert c["unit_of_measurement"] == "kWh" and "device_class" not in c
        elif key.endswith("_kw"):
            assert c["unit_of_measurement"] == "kW" and c["device_class"] == "power"
        else:
            assert key == "capacity_step" and "unit_of_measurement" not in c and "device_class" not in c
        seen.add(key)
    assert seen == {"last_hour_import_kwh", "last_hour_export_kwh", "today_import_kwh", "today_export_kwh",
                    "month_capacity_kw", "capacity_step", "capacity_headroom_kwh", "next_step_headroom_kwh"}
    # no clash with the meter's own sensors (same prefix and node)
    for f in range(R.N_NUMERIC):
        assert R.NUMERIC_FIELDS[f] not in seen


def test_accounting_sensors_wait_for_the_energy_counter():
    assert not hass.accounting_ready(1 << R.F_P_IMPORT)
    assert hass.accounting_ready((1 << R.F_P_IMPORT) | (1 << R.F_E_IMPORT))


def test_live_json_from_the_hours_template_equals_the_full_object():
    # the firmware makes accounting_views' summary and JSON template once per running hour (or hourly
    # list) and fills in the running hour's values with Accounting.live_json: at every reading the result
    # must be the text accounting_json(summary()) gives, over day and month boundaries, from the very
    # first reading (nothing known), in hours without power readings, on the top step and below it
    for steps in ((2, 5, 10), (1,)):
        acc = Accounting(steps_kw=steps)
        h = _h(2024, 1, 31, 20)  # a month boundary (local time) within the run
        imp = 1000000
        made = None
        checked = 0
        for i in range(30):
            t0 = (h + i) * 3600 + 10
            for k in range(1, 360, 7 if i % 3 else 41):  # some hours with few power readings
                t = t0 + 10 * k
                acc.update(_list2(t, 1000 + 150 * (i % 7) + k, 3 * (i % 2)), t)
                if made is None or made[0] != acc.now_hour():
                    made = (acc.now_hour(), J.json_template(acc.summary()))
                assert acc.live_json(*made[1]) == J.accounting_json(acc.summary()), (steps, i, k)
                checked += 1
            imp += 900 + 97 * (i % 11)
            acc.update(_list3(h + i + 1, imp, 10 * i, 1800, 0), t0 + 3600)
            made = None  # an hourly list: the template is made anew
        assert checked > 1000


def test_a_summary_holds_until_the_next_local_day():
    """The firmware makes the summary anew after an hourly list or when next_day_hour() comes: the
    first UTC hour of the next local (Norwegian) day. Winter is UTC+1: 2026-12-02 00:00 local is
    2026-12-01 23:00 UTC. The spring switch (2026-03-29, the last Sunday of March, 02:00 -> 03:00)
    makes a 23-hour day: 2026-03-30 00:00 local is UTC+2, 2026-03-29 22:00 UTC. The autumn switch
    (2026-10-25, 03:00 -> 02:00) a 25-hour one: 2026-10-26 00:00 local is UTC+1, 2026-10-25 23:00 UTC."""
    assert V.next_day_hour(None) is None
    assert V.next_day_hour(_h(2026, 12, 1, 12)) == _h(2026, 12, 1, 23)
    assert V.next_day_hour(_h(2026, 12, 1, 22)) == _h(2026, 12, 1, 23)
    assert V.next_day_hour(_h(2026, 12, 1, 23)) == _h(2026, 12, 2, 23)  # (that hour is the next day's first)
    assert V.next_day_hour(_h(2026, 3, 28, 23)) == _h(2026, 3, 29, 22)
    assert V.next_day_hour(_h(2026, 10, 24, 22)) == _h(2026, 10, 25, 23)


def _joined(pieces):
    """/data.json's pieces (str or bytes-like) as one str."""
    return "".join(p if isinstance(p, str) else bytes(p).decode() for p in pieces)
