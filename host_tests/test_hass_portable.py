# Home Assistant discovery payloads and the state/data JSON envelopes, on CPython and MicroPython
# (host_tests/test_micropython.py runs this file under the unix port too).
import json

from hanport import HanReader, appjson, hass
from hanport import reading as R
from hanport.latest import Latest

# Aidon 6525 list 3 (robinsmidsrod/ams-han-decoder, host_tests/vectors): no IL2, has energy counters
AIDON_L3 = (
    "7ea17741088313391ee6e7000f40000000000111020209060101000281ff0a0b4149444f4e5f5630303031020209060000600100"
    "ff0a1037333539393932383939313631313130020209060000600107ff0a0436353235020309060100010700ff060000089c0202"
    "0f00161b020309060100020700ff060000000002020f00161b020309060100030700ff060000000002020f00161d0203090601"
    "00040700ff060000008702020f00161d0203090601001f0700ff10003002020fff1621020309060100470700ff10004502020f"
    "ff1621020309060100200700ff12094902020fff1623020309060100340700ff12093c02020fff1623020309060100480700ff"
    "12094002020fff1623020209060000010000ff090c07e3060c03120000ff003c00020309060100010800ff06002163ca02020f"
    "01161e020309060100020800ff060000000002020f01161e020309060100030800ff060000824602020f011620020309060100"
    "040800ff0600011b5c02020f011620bd817e"
)
# Aidon list 1 (same meter): P+ only
AIDON_L1 = "7ea02a410883130413e6e7000f40000000000101020309060100010700ff06000006a002020f00161b81df7e"


def _reading(hexframe):
    r = HanReader()
    got = [rd for rd in r.feed(bytes.fromhex(hexframe))]
    assert len(got) == 1
    return got[0]


def test_sensor_table_covers_every_field():
    assert len(hass.SENSORS) == R.N_NUMERIC
    for name, _device_class, state_class, unit in hass.SENSORS:
        assert name and unit
        assert state_class in ("measurement", "total_increasing")


def test_energy_sensors_are_energy_dashboard_ready():
    for f in (R.F_E_IMPORT, R.F_E_EXPORT):
        c = json.loads(hass.config_payload(f, "han_x", "han", {"identifiers": ["han_x"]}, 120))
        assert c["device_class"] == "energy"
        assert c["state_class"] == "total_increasing"
        assert c["unit_of_measurement"] == "kWh"
    c = json.loads(hass.config_payload(R.F_P_IMPORT, "han_x", "han", {"identifiers": ["han_x"]}, 120))
    assert (c["device_class"], c["state_class"], c["unit_of_measurement"]) == ("power", "measurement", "W")


def test_config_payload_fields():
    dev = hass.device_block("han_ab12", "HAN reader", "0.1.0", "Aidon", "6525", "7359992899161110")
    c = json.loads(hass.config_payload(R.F_U_L1, "han_ab12", "home/han", dev, 300))
    assert c["unique_id"] == "han_ab12_voltage_l1_v"
    assert c["state_topic"] == "home/han/state"
    assert c["availability_topic"] == "home/han/status"
    assert c["payload_available"] == "online" and c["payload_not_available"] == "offline"
    assert c["expire_after"] == 300
    assert c["value_template"] == "{{ value_json.voltage_l1_v | default('') }}"
    assert c["device"]["identifiers"] == ["han_ab12"]
    assert c["device"]["manufacturer"] == "Aidon" and c["device"]["model"] == "6525"
    assert c["device"]["serial_number"] == "7359992899161110"
    assert hass.config_topic("homeassistant", "han_ab12", R.F_U_L1) == \
        "homeassistant/sensor/han_ab12/voltage_l1_v/config"


def test_reactive_energy_has_no_device_class():
    c = json.loads(hass.config_payload(R.F_R_IMPORT, "n", "han", {"identifiers": ["n"]}, 60))
    assert "device_class" not in c and c["unit_of_measurement"] == "kvarh"


def test_mask_follows_the_fields_a_meter_sends():
    rd = _reading(AIDON_L3)
    mask = hass.reading_mask(rd)
    fields = hass.fields_in_mask(mask)
    assert R.F_I_L2 not in fields  # Aidon 6525 does not send IL2: no sensor for it
    assert R.F_I_L3 in fields and R.F_E_IMPORT in fields
    assert len(fields) == 13


def test_latest_merges_lists_and_reports_growth():
    lt = Latest()
    assert lt.update(_reading(AIDON_L1), 1) is True  # P+ seen for the first time
    assert lt.mask == 1 << R.F_P_IMPORT
    assert lt.update(_reading(AIDON_L1), 2) is False
    assert lt.update(_reading(AIDON_L3), 3) is True  # new fields and the identity
    assert lt.meter_id == "7359992899161110" and lt.meter_type == "6525" and lt.manufacturer == "Aidon"
    assert lt.update(_reading(AIDON_L3), 4) is False  # same identity: no change, no new strings
    assert lt.fixed(R.F_E_IMPORT) == (2188234, -2)
    assert lt.fixed(R.F_I_L2) is None
    assert lt.per_list[1] == 2 and lt.per_list[3] == 2
    assert lt.at[R.F_P_IMPORT] == 4


def test_state_and_data_envelopes():
    from hanport.render import reading_json

    rd = _reading(AIDON_L1)
    canon = reading_json(rd)
    s = appjson.state_json(canon, 7, "2024-05-01T10:00:00Z")
    d = json.loads(s)
    assert d["seq"] == 7 and d["received"] == "2024-05-01T10:00:00Z"
    assert d["active_import_w"] == 1696 and d["list"] == 1
    d2 = json.loads(appjson.state_json(canon, 8))
    assert "received" not in d2
    latest = Latest()
    latest.update(rd, 1000)
    data = json.loads(_joined(appjson.data_json(s.encode(), 1234, None, latest, 1500)))
    assert data["age_ms"] == 1234 and data["seq"] == 7 and data["obis"] == {"1-0:1.7.0.255": 1696}
    assert data["latest"] == {"active_import_w": {"value": 1696, "age_ms": 500}}
    assert json.loads(_joined(appjson.data_json(None, 0, None, Latest(), 0))) == {
        "seq": 0, "age_ms": None, "latest": {}}
    assert appjson.utc_iso((2024, 1, 2, 3, 4, 5, 0, 0)) == "2024-01-02T03:04:05Z"


def _joined(pieces):
    """/data.json's pieces (str or bytes-like) as one str."""
    return "".join(p if isinstance(p, str) else bytes(p).decode() for p in pieces)
