# P1/DSMR telegram tests, unchanged under CPython (pytest) and MicroPython (mp_runner.py): every P1
# vector against the values its source states, CRC checks, gas/water channels, damaged streams.
import json

from hanvectors import VECTORS

from hanport import p1
from hanport import reading as R
from hanport.crc import crc16_arc
from hanport.render import decimal, reading_json

P1_FILES = ("ndokter__dsmr_parser.json", "u9n__hanporten.json", "toreamun__amshan.json")

# dsmr_parser attribute -> (canonical field, power of ten from the stated unit to the field's unit)
DSMR_FIELDS = {
    "CURRENT_ELECTRICITY_USAGE": ("active_import_w", 3),  # kW -> W
    "CURRENT_ELECTRICITY_DELIVERY": ("active_export_w", 3),
    "INSTANTANEOUS_VOLTAGE_L1": ("voltage_l1_v", 0),
    "INSTANTANEOUS_VOLTAGE_L2": ("voltage_l2_v", 0),
    "INSTANTANEOUS_VOLTAGE_L3": ("voltage_l3_v", 0),
    "INSTANTANEOUS_CURRENT_L1": ("current_l1_a", 0),
    "INSTANTANEOUS_CURRENT_L2": ("current_l2_a", 0),
    "INSTANTANEOUS_CURRENT_L3": ("current_l3_a", 0),
    "ELECTRICITY_IMPORTED_TOTAL": ("active_import_kwh", 0),
    "ELECTRICITY_EXPORTED_TOTAL": ("active_export_kwh", 0),
    "ELECTRICITY_REACTIVE_IMPORTED_TOTAL": ("reactive_import_kvarh", 0),
    "ELECTRICITY_REACTIVE_EXPORTED_TOTAL": ("reactive_export_kvarh", 0),
}
# dsmr_parser attribute -> OBIS code of the register it names (values in the obis dict are in W, Wh)
DSMR_OBIS = {
    "ELECTRICITY_USED_TARIFF_1": ("1-0:1.8.1.255", 3),
    "ELECTRICITY_USED_TARIFF_2": ("1-0:1.8.2.255", 3),
    "ELECTRICITY_DELIVERED_TARIFF_1": ("1-0:2.8.1.255", 3),
    "ELECTRICITY_DELIVERED_TARIFF_2": ("1-0:2.8.2.255", 3),
    "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE": ("1-0:21.7.0.255", 3),
    "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE": ("1-0:41.7.0.255", 3),
    "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE": ("1-0:61.7.0.255", 3),
    "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE": ("1-0:22.7.0.255", 3),
    "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE": ("1-0:42.7.0.255", 3),
    "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE": ("1-0:62.7.0.255", 3),
    "ELECTRICITY_ACTIVE_TARIFF": ("0-0:96.14.0.255", None),  # text as sent
    "EQUIPMENT_IDENTIFIER": ("0-0:96.1.1.255", None),
}


def _records():
    out = []
    for name in P1_FILES:
        with open(VECTORS + "/" + name) as f:
            for r in json.load(f):
                if r["kind"] == "p1":
                    out.append(r)
    return out


def _record(vid):
    for r in _records():
        if r["id"] == vid:
            return r
    raise KeyError(vid)


def _bytes(text):
    try:
        return text.encode("latin-1")
    except (UnicodeError, LookupError):  # pragma: no cover
        return text.encode()


def _norm(text):
    """Decimal text without sign noise and trailing zeros ("230.0" -> "230", "00.170" -> "0.17")."""
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = text.lstrip("0") or "0"
    if text.startswith("."):
        text = "0" + text
    return "-" + text if neg and text != "0" else text


def _shift(text, k):
    """Exact decimal text times 10**k."""
    neg = text.startswith("-")
    if neg:
        text = text[1:]
    whole, _, frac = text.partition(".")
    digits = whole + frac
    exp = -len(frac) + k
    return _norm(("-" if neg else "") + decimal(int(digits), exp))


def _decode(data, chunk=0, require_crc=False):
    r = p1.P1Reader(require_crc=require_crc)
    out = []
    step = chunk or len(data)
    for pos in range(0, len(data), step):
        for rd in r.feed(data[pos : pos + step]):
            out.append(reading_json(rd))
    if r.flush():
        out.append(reading_json(r.reading))
    return out, r


def test_every_p1_vector_gives_one_reading_and_checks_its_crc():
    n = 0
    for rec in _records():
        out, r = _decode(_bytes(rec["text"]))
        assert len(out) == 1, (rec["id"], r.counters())
        c = r.counters()
        has_crc = "computed" in rec["notes"] and "-> OK" in rec["notes"]
        assert c["crc_error"] == 0 and c["malformed"] == 0
        if has_crc:
            assert c["crc_absent"] == 0, rec["id"]  # the stated CRC was checked and matched
        n += 1
    assert n == 18, n


def test_dsmr_parser_stated_values():
    """Source-stated values (dsmr_parser test assertions), converted to the canonical unit: kW -> W
    is an exact shift by 10**3; tariff registers appear in the obis dict in Wh."""
    checked = 0
    for rec in _records():
        if not rec["id"].startswith("dsmr-parser-") or not rec["expected"]:
            continue
        out, _ = _decode(_bytes(rec["text"]))
        d = json.loads(out[0])
        for name, want in rec["expected"].items():
            if name in DSMR_FIELDS:
                field, k = DSMR_FIELDS[name]
                assert field in d, (rec["id"], name)
                got = _norm(out[0].split('"%s":' % field)[1].split(",")[0].split("}")[0])
                assert got == _shift(want, k), (rec["id"], name, got, want)
                checked += 1
            elif name in DSMR_OBIS:
                key, k = DSMR_OBIS[name]
                got = d["obis"][key]
                if k is None:
                    assert got == want, (rec["id"], name, got)
                else:
                    text = out[0].split('"%s":' % key)[1].split(",")[0].split("}")[0]
                    assert _norm(text) == _shift(want, k), (rec["id"], name, text, want)
                checked += 1
            elif name == "EQUIPMENT_IDENTIFIER":
                assert d["meter_id"] == want
    assert checked > 100, checked


def test_meter_time_is_the_telegram_local_time():
    """dsmr_parser states the timestamp converted to UTC for W (winter, CET = UTC+1) telegrams and in
    local time for its Belgian/Hungarian ones; meter_time is the local time the meter sent."""
    want = {"dsmr-parser-v4-2": "2016-11-13T20:57:57", "dsmr-parser-v5": "2017-01-02T19:20:02",
            "dsmr-parser-fluvius-v171": "2020-05-12T13:54:09", "dsmr-parser-v5-eon-hu": "2023-07-24T15:07:30"}
    for vid, t in want.items():
        out, _ = _decode(_bytes(_record(vid)["text"]))
        assert json.loads(out[0])["meter_time"] == t, vid


def test_amshan_stated_values_and_identification():
    for rec in _records():
        if not rec["id"].startswith("amshan-p1"):
            continue
        out, r = _decode(_bytes(rec["text"]))
        d = json.loads(out[0])
        e = rec["expected"]
        assert d["list_version"] == e["identification"][1:]
        for key, want in e.items():
            if not key.startswith("1-0:"):
                continue
            number, unit = want.split(" ")
            k = 3 if unit[0] == "k" else 0
            text = out[0].split('"%s.255":' % key)[1].split(",")[0].split("}")[0]
            assert _norm(text) == _shift(number, k), (rec["id"], key)
        if "checksum" in e:
            assert "(valid)" in e["checksum"] and r.counters()["crc_absent"] == 0


def test_canonical_fields_of_a_swedish_telegram():
    """Swedish P1 (u9n/hanporten): the doc states CRC 7945 over "/" .. "!"; the fields follow from
    the lines (kW -> W, kvar -> var, kWh and kvarh as sent)."""
    rec = _record("hanporten-se-p1-ell5-example")
    text = _bytes(rec["text"])
    assert crc16_arc(text, text.index(b"/"), text.rindex(b"!") + 1) == 0x7945
    out, r = _decode(text + b"7945\r\n")
    assert r.counters()["crc_absent"] == 0 and len(out) == 1
    d = json.loads(out[0])
    assert d["active_import_w"] == 1727 and d["reactive_export_var"] == 309
    assert d["active_import_kwh"] == 6678.394 and d["reactive_export_kvarh"] == 1020.971
    assert d["current_l1_a"] == 4.2 and d["voltage_l3_v"] == 241.3
    assert d["meter_time"] == "2021-02-17T18:40:19"
    out, r = _decode(text + b"7946\r\n")
    assert out == [] and r.counters()["crc_error"] == 1


def test_tariff_registers_sum_to_the_total_when_no_total_is_sent():
    """DSMR sends 1-0:1.8.1 and 1-0:1.8.2 and no 1-0:1.8.0: active_import_kwh is their exact sum."""
    rd = None
    r = p1.P1Reader()
    for x in r.feed(_bytes(_record("dsmr-parser-v4-2")["text"])):
        rd = x
    assert decimal(*rd.fixed(R.F_E_IMPORT)) == "3016.829"  # 1581.123 + 1435.706
    assert decimal(*rd.fixed(R.F_E_EXPORT)) == "0.000"


def test_gas_and_water_channels():
    got = {}
    for vid in ("dsmr-parser-v2-2", "dsmr-parser-v4-2", "dsmr-parser-fluvius-v171", "amshan-p1-b"):
        r = p1.P1Reader()
        for rd in r.feed(_bytes(_record(vid)["text"]) + b"\r\n"):
            got[vid] = p1.channels(rd)
    # values stated by the sources (GAS_METER_READING, HOURLY_GAS_METER_READING) or read from the line
    assert got["dsmr-parser-v2-2"][0]["value"] == "1.001" and got["dsmr-parser-v2-2"][0]["medium"] == "gas"
    assert got["dsmr-parser-v2-2"][0]["time"] == "2016-11-07T19:00:00"
    v42 = got["dsmr-parser-v4-2"][0]
    assert v42["value"] == "981.443" and v42["unit"] == "m3" and v42["id"] == "4819243993373755377509728609491464"
    fl = got["dsmr-parser-fluvius-v171"]
    assert [(c["channel"], c["medium"], c["value"]) for c in fl] == [(1, "gas", "112.384"), (2, "water", "872.234")]
    assert got["amshan-p1-b"][0]["value"] == "4890.857" and got["amshan-p1-b"][0]["time"] == "2018-09-24T13:00:00"


def test_chunking_back_to_back_and_damage():
    a = _bytes(_record("amshan-p1-a-landisgyr-360")["text"])  # ends at its CRC, no line end
    b = _bytes(_record("dsmr-parser-v5")["text"])
    whole, _ = _decode(a + b)
    assert len(whole) == 2
    for chunk in (1, 2, 7, 100):
        out, _ = _decode(a + b, chunk)
        assert out == whole, chunk
    # one changed digit: CRC error, the next telegram still decodes
    bad = bytearray(a)
    bad[a.index(b"230.1")] = ord("3")
    out, r = _decode(bytes(bad) + b)
    assert out == whole[1:] and r.counters()["crc_error"] == 1
    # cut short, then a full telegram: the cut one is dropped and counted
    out, r = _decode(a[: len(a) // 2] + b"\r\n" + b)
    assert out == whole[1:] and r.counters()["truncated"] == 1
    # garbage and binary bytes around
    noise = bytes(range(256))
    out, r = _decode(noise + a + noise + b + noise)
    assert out == whole


def test_require_crc_drops_telegrams_without_one():
    old = _bytes(_record("dsmr-parser-v3")["text"])
    out, r = _decode(old)
    assert len(out) == 1 and r.counters()["crc_absent"] == 1
    out, r = _decode(old, require_crc=True)
    assert out == [] and r.counters()["crc_missing"] == 1


def test_binary_data_is_never_a_telegram():
    """HDLC frames seen by the P1 parser (auto-detection) give nothing, even with "/" and "!"."""
    from hanvectors import norwegian_frames

    data = b"".join(norwegian_frames())
    out, r = _decode(data + b"/\n!\r\n" + data + b"/AB\n\x01\x02(\n!\r\n")
    assert out == []


def test_decode_telegram_helper():
    d = p1.decode_telegram(_record("amshan-p1-kamstrup")["text"])
    assert d["meter_manufacturer"] == "Kamstrup" and d["active_import_w"] == 2202
    assert d["obis"]["1-0:1.8.0.255"] == 60995424  # Wh
    assert p1.decode_telegram("garbage") is None
