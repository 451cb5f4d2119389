# Meters outside Norway (issue 13), on CPython (pytest) and MicroPython (mp_runner.py): the Austrian and Swiss AM550,
# E360, E450 and E570 lists of host_tests/vectors/ (hanvectors.EU_VECTOR_FILES and scs__smartmeter-datacollector.json).
from hanvectors import build_frame, eu_frame, eu_record, unhex

from hanport import HanReader, meters
from hanport import reading as R

# canonical field -> the OBIS code its value comes from in these lists (Wh, varh, W, var: exponent 0)
_FIELDS = ((R.F_E_IMPORT, "1-0:1.8.0.255", -3), (R.F_E_EXPORT, "1-0:2.8.0.255", -3),
           (R.F_R_IMPORT, "1-0:3.8.0.255", -3), (R.F_R_EXPORT, "1-0:4.8.0.255", -3),
           (R.F_P_IMPORT, "1-0:1.7.0.255", 0), (R.F_P_EXPORT, "1-0:2.7.0.255", 0),
           (R.F_Q_IMPORT, "1-0:3.7.0.255", 0), (R.F_Q_EXPORT, "1-0:4.7.0.255", 0))

WN_FRAMES = ("energyagent-am550-wn-matthias", "energyagent-am550-wn-rpi-zero2", "energyagent-lgz-wn-rpi-zero3")


def _read(data, key=None, auth_key=None):
    """[(fixed values by field, text fields, the canonical dict)] of every reading, and the reader."""
    r = HanReader(2048, key, auth_key)
    out = []
    for rd in r.feed(data):
        fixed = {}
        for f in range(R.N_NUMERIC):
            if rd.has(f):
                fixed[f] = rd.fixed(f)
        texts = (rd.text(R.T_LIST_VERSION), rd.text(R.T_METER_ID), rd.text(R.T_METER_TYPE))
        out.append((fixed, texts, rd.as_dict()))
    return out, r


def _plain_frame(rec):
    """The deciphered APDU (or the source's plain APDU) in an HDLC frame with an LLC header: the plain list."""
    return build_frame(b"\xe6\xe7\x00" + unhex(rec.get("decrypted_apdu_hex") or rec["hex"]))


def _check(rec, got, reader):
    """One reading with exactly the derived values: fields scaled from Wh/varh/W/var, every value by OBIS."""
    assert len(got) == 1, rec["id"]
    fixed, texts, d = got[0]
    want = rec["derived"]
    n = 0
    for f, code, exp in _FIELDS:
        if code in want["obis"]:
            assert fixed[f] == (want["obis"][code], exp), (rec["id"], code, fixed.get(f))
            assert d["obis"][code] == want["obis"][code], (rec["id"], code)
            n += 1
    assert len(fixed) == n, (rec["id"], fixed)  # nothing else made canonical: no current, no voltage
    assert d["meter_time"] == want["meter_time"]
    # counters in every push (not once an hour, as NVE's list 3): list 2, which the accounting does not
    # book as an hourly list
    assert d["list"] == 2, (rec["id"], d.get("list"))
    assert texts[0] == want.get("list_version") and texts[1] == want.get("meter_id"), (rec["id"], texts)
    c = reader.counters()
    for name in meters.MAP_NAMES[1:]:
        assert c["map_" + name] == 0, (rec["id"], name)
    return d


def test_wiener_netze_list_of_am550_and_landis_gyr_ciphered_with_published_keys():
    """Wiener Netze IR list (AM550 x2, Landis+Gyr x1): structure of 9, decrypted with the published keys."""
    for rid in WN_FRAMES:
        rec = eu_record(rid)
        got, r = _read(eu_frame(rec), rec["key_hex"])
        d = _check(rec, got, r)
        assert d["obis"]["0-0:1.0.0.255"] == rec["derived"]["meter_time"]
        assert len(d["obis"]) == 9  # every value of the list, by OBIS
        assert r.counters()["deciphered"] == 1


def test_wiener_netze_list_plain():
    for rid in WN_FRAMES + ("wn-smart-reader-wn-am550-plaintext",):
        rec = eu_record(rid)
        got, r = _read(_plain_frame(rec))
        _check(rec, got, r)


def test_wiener_netze_values_the_source_states():
    """machinekoder/wn_smart_reader annotates each value of its Wiener Netze plaintext in hex."""
    rec = eu_record("wn-smart-reader-wn-am550-plaintext")
    (fixed, _, _), = _read(_plain_frame(rec))[0]
    e = rec["expected"]
    for f, label in ((R.F_E_IMPORT, "+A Wh"), (R.F_E_EXPORT, "-A Wh"), (R.F_R_IMPORT, "+R varh"),
                     (R.F_R_EXPORT, "-R varh"), (R.F_P_IMPORT, "+P W"), (R.F_P_EXPORT, "-P W"),
                     (R.F_Q_IMPORT, "+Q var"), (R.F_Q_EXPORT, "-Q var")):
        assert fixed[f][0] == int(e[label], 16), label


def test_kaernten_netz_list_ciphered_and_plain():
    """Kärnten Netz P1 list (AM550): list identifier 0-6:25.9.0.255 first, meter number, six registers."""
    rec = eu_record("shrdzm-am550-kaernten-netz")
    got, r = _read(eu_frame(rec), rec["key_hex"])
    d = _check(rec, got, r)
    assert d["obis"]["0-6:25.9.0.255"] == "0006190900ff"
    got, r = _read(_plain_frame(rec))
    _check(rec, got, r)


def test_kaernten_netz_values_the_source_states():
    rec = eu_record("wn-smart-reader-kn-am550-plaintext")
    got, r = _read(_plain_frame(rec))
    _check(rec, got, r)
    fixed, texts, _ = got[0]
    e = rec["expected"]
    assert fixed[R.F_E_IMPORT][0] == e["+A Wh"] and fixed[R.F_R_IMPORT][0] == e["+R varh"]
    assert fixed[R.F_R_EXPORT][0] == e["-R varh"] and fixed[R.F_P_IMPORT][0] == e["+P W"]
    assert texts[1] == e["S/N?"]


def test_e450_push_list_with_capture_objects():
    """The EnergyAgent E450 list in clear names each value by OBIS, but not its maker (no COSEM logical
    device name, no system title): no canonical number (the source's 49.928 kWh is 1-0:1.8.0 = 49928 Wh
    there), unknown_scale counted; the list identifier and the meter number are named."""
    rec = eu_record("energyagent-e450-plain-49928wh")
    got, r = _read(_plain_frame(rec))
    fixed, texts, d = got[0]
    kwh = rec["expected"]["Active energy + (Wh) total, potential_energy_values[7] (kWh)"]
    assert d["obis"]["1-0:1.8.0.255"] == int(round(kwh * 1000))
    assert fixed == {}
    assert texts[0] == "0008190900ff" and texts[1] == "56815930"
    assert r.counters()["map_unknown_scale"] == 1


def test_e450_first_block_only_gives_no_reading():
    """A general-block-transfer block 1 without the rest: the reader waits, nothing half-decoded comes out."""
    rec = eu_record("energyagent-e450-gbt-block1")
    got, r = _read(unhex(rec["hex"]), rec["key_hex"], rec["auth_key_hex"])
    assert got == [] and r.counters()["blocks"] == 1


# scs/smartmeter-datacollector's data point names -> canonical field, exponent from its units (W, Wh, varh)
_SCS_FIELDS = (("ACTIVE_POWER_P", R.F_P_IMPORT, 0), ("ACTIVE_POWER_N", R.F_P_EXPORT, 0),
               ("ACTIVE_ENERGY_P", R.F_E_IMPORT, -3), ("ACTIVE_ENERGY_N", R.F_E_EXPORT, -3),
               ("REACTIVE_ENERGY_P", R.F_R_IMPORT, -3), ("REACTIVE_ENERGY_N", R.F_R_EXPORT, -3))


def _scs_records():
    import json

    from hanvectors import VECTORS

    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        return dict((x["id"], x) for x in json.load(f))


def test_swiss_push_lists_name_their_meter_and_maker():
    """scs/smartmeter-datacollector AM550 and E450: the COSEM logical device name 0-0:42.0.0.255 is the meter
    id the source states, its FLAG id the maker; the push setup's name the list identifier."""
    recs = _scs_records()
    for rid, maker, list_id in (("scs-iskra-am550-unencrypted-valid-data", "Iskraemeco", "0006190900ff"),
                                ("scs-lg-e450-unencrypted-valid-data-cfg2026", "Landis+Gyr", "0008190900ff")):
        rec = recs[rid]
        got, r = _read(unhex(rec["hex"]))
        fixed, texts, d = got[0]
        assert texts[1] == rec["expected"]["source (meter id)"] and d["meter_manufacturer"] == maker, rid
        assert texts[0] == list_id


def test_swiss_vse_lists_energy_and_power_as_the_source_states():
    """The Swiss VSE list of four models (scs tests' values): energy and power canonical, scaled as the
    source states them; voltage and current stay in obis only (0.1 V on the E360 and AM550, 1 V on the
    E450 and E570: the frame does not say which), counted as unknown_scale."""
    recs = _scs_records()
    for rid in ("scs-lg-e360-unencrypted-valid-data-cfg2026", "scs-lg-e450-unencrypted-valid-data-cfg2026",
                "scs-lg-e570-unencrypted-valid-data-cfg2026", "scs-lg-e570-unencrypted-valid-data-load-cfg2026",
                "scs-iskra-am550-unencrypted-valid-data-cfg2026"):
        rec = recs[rid]
        got, r = _read(unhex(rec["hex"]))
        assert len(got) == 1, rid
        fixed, texts, d = got[0]
        want = rec["expected"]
        for name, f, exp in _SCS_FIELDS:
            assert fixed[f] == (want[name], exp), (rid, name, fixed.get(f))
        assert sorted(fixed) == sorted(f for _n, f, _e in _SCS_FIELDS), (rid, fixed)
        assert d["obis"]["1-0:32.7.0.255"] in (want["VOLTAGE_L1"], round(want["VOLTAGE_L1"] * 10)), rid
        assert "voltage_l1_v" not in d and "current_l1_a" not in d, rid
        assert d["list"] == 2 and r.counters()["map_unknown_scale"] == 1, rid


def _esphome_e450_checks(rec, got, kwh_fields):
    """One reading: every value the source states, by OBIS; the canonical fields kwh_fields from them."""
    assert len(got) == 1, rec["id"]
    fixed, texts, d = got[0]
    want = rec["expected"]
    for key, value in want.items():
        if key[0].isdigit() and key[0] != "0":
            a, b, c, dd, e, f = key.split(".")
            assert d["obis"]["%s-%s:%s.%s.%s.%s" % (a, b, c, dd, e, f)] == value, (rec["id"], key)
    assert d["meter_time"] == want["0.0.0.0.0.0 (DateTime)"].replace(" ", "T")
    if kwh_fields:
        for f, code, exp in _FIELDS:
            raw = want[code.replace("-", ".").replace(":", ".")]
            assert fixed[f] == (raw, exp), (rec["id"], code, fixed.get(f))
        assert len(fixed) == len(_FIELDS)
        assert d["meter_manufacturer"] == "Landis+Gyr"
    else:
        assert fixed == {} and "meter_manufacturer" not in d
    return d


def test_e450_ciphered_lists_named_by_their_system_title():
    """esphome-libs/dlms_parser's two E450 captures (three block-transfer frames, ciphered, keys published):
    every value the source states, by OBIS; the list names no meter, so the maker is the FLAG id of the
    frame's system title ('LGZ'); energy in Wh and power in W as horfic/esphome-dlms states for the second
    meter (Stromnetz Graz): canonical energy = the stated value / 1000 kWh. No current, no voltage in it."""
    for rid in ("esphome-dlms-parser-lg-e450", "esphome-dlms-parser-lgz-e450-2"):
        rec = eu_record(rid)
        got, r = _read(unhex(rec["hex"]), rec["key_hex"])
        d = _esphome_e450_checks(rec, got, True)
        assert d["list"] == 2
        c = r.counters()
        assert c["blocks"] == 3 and c["deciphered"] == 1 and c["map_unknown_scale"] == 0, c
    rec = eu_record("esphome-dlms-parser-lgz-e450-2")
    assert rec["units_stated_elsewhere"]["quotes"][0].endswith("12001890 / 1000 = 12001,890kWh")


def test_e450_plain_list_without_a_maker_keeps_values_by_obis():
    """The same lists deciphered and sent in clear: nothing in them names the maker, so no canonical
    number is made from them (never a scale guessed from the values)."""
    for rid in ("esphome-dlms-parser-lg-e450", "esphome-dlms-parser-lgz-e450-2"):
        rec = eu_record(rid)
        got, r = _read(_plain_frame(rec))
        _esphome_e450_checks(rec, got, False)
        assert r.counters()["map_unknown_scale"] == 1


def test_a_ciphered_list_of_another_maker_is_not_scaled():
    """The first capture's APDU ciphered again under a system title of another FLAG id ('KFM'): its values
    stay in obis only."""
    from hanport.wire_build import encrypt_apdu

    rec = eu_record("esphome-dlms-parser-lg-e450")
    key = unhex(rec["key_hex"])
    apdu = encrypt_apdu(unhex(rec["decrypted_apdu_hex"]), key, b"KFM\x10\x20\x30\x40\x50", 7, security=0x20)
    got, r = _read(build_frame(b"\xe6\xe7\x00" + apdu), key)
    _esphome_e450_checks(rec, got, False)


def _wn_apdu(values, first=b"\x09\x0c" + b"\x07\xe5\x01\x1b\x03\x10\x0b\x2d\x00\xff\xc4\x00"):
    body = bytearray(b"\xe6\xe7\x00\x0f\x00\x00\x00\x01\x00\x02")
    body.append(1 + len(values))
    body.extend(first)
    for v in values:
        body.extend(v)
    return build_frame(bytes(body))


def test_lists_that_only_look_alike_stay_unknown():
    """Never a wrong value: a positional list that is not exactly the Wiener Netze shape (other count, a
    value of another type, no clock first) keeps its values out of the fields and counts unknown_layout."""
    u32 = b"\x06\x00\x00\x01\x00"
    cases = (
        _wn_apdu([u32] * 7),  # 8 elements
        _wn_apdu([u32] * 9),  # 10 elements
        _wn_apdu([u32] * 7 + [b"\x12\x00\x01"]),  # a long-unsigned where a double-long-unsigned belongs
        _wn_apdu([u32] * 8, first=u32),  # no date-time first
        _wn_apdu([u32] * 8, first=b"\x09\x04abcd"),  # a string, not a date-time
    )
    for frame in cases:
        got, r = _read(frame)
        fixed, texts, d = got[0]
        assert fixed == {} and d["obis"] == {}, d
        assert r.counters()["map_unknown_layout"] == 1


def test_kaernten_netz_shape_with_another_list_id_is_not_named():
    """The same shape under another push setup name: the registers are not claimed."""
    rec = eu_record("wn-smart-reader-kn-am550-plaintext")
    apdu = bytearray(unhex(rec["hex"]))
    apdu[23] = 7  # 0-7:25.9.0.255
    got, r = _read(build_frame(b"\xe6\xe7\x00" + bytes(apdu)))
    fixed, texts, d = got[0]
    assert fixed == {} and texts[1] is None


def test_mutated_lists_never_raise():
    """Every byte of the Austrian plaintexts replaced by tags and lengths that mislead: no exception, and
    a list still taken for a Wiener Netze or Kärnten Netz list has every value where the layout puts it."""
    for rid in ("wn-smart-reader-wn-am550-plaintext", "wn-smart-reader-kn-am550-plaintext"):
        apdu = unhex(eu_record(rid)["hex"])
        for pos in range(len(apdu)):
            for b in (0x00, 0x02, 0x06, 0x09, 0x0C, 0x12, 0xFF):
                m = bytearray(apdu)
                m[pos] = b
                got, r = _read(build_frame(b"\xe6\xe7\x00" + bytes(m)))
                for fixed, _texts, d in got:
                    for f, code, exp in _FIELDS:
                        if f in fixed:
                            assert fixed[f] == (d["obis"][code], exp), (rid, pos, b)


def _wn_push(y, mo, d, hh, mi, ss, a_plus_wh, p_plus_w, dst=False):
    """A Wiener Netze push (shape of the real list) at meter time y-mo-d hh:mi:ss with +A and +P given;
    the other six registers 0. Clock status bit 7: daylight saving time."""
    import struct

    clock = bytes((y >> 8, y & 0xFF, mo, d, 0xFF, hh, mi, ss, 0, 0x80, 0, 0x80 if dst else 0))
    u32 = [b"\x06" + struct.pack(">I", v) for v in (a_plus_wh, 0, 0, 0, p_plus_w, 0, 0, 0)]
    return _wn_apdu(u32, first=b"\x09\x0c" + clock)


def test_push_meters_first_push_of_the_hour_is_its_hourly_list():
    """Counters in every push: the first push of each hour of the meter clock, within 20 s of the full
    hour, is list 3 and the accounting books the hour from its counters; every other push is list 2.
    Pushes every 10 s at 3600 W, +A 10 Wh more each: 12:59:30 to 16:00:00 (winter time), with the pushes
    from 14:59:50 to 15:00:20 lost (the first of 15 o'clock is 15:00:30: no list 3)."""
    from hanport.accounting import Accounting

    acc = Accounting()
    r = HanReader(2048)
    lists3 = []
    a_wh = 1000000
    t = 12 * 3600 + 59 * 60 + 30
    while t <= 16 * 3600:
        hh, rest = divmod(t, 3600)
        mi, ss = divmod(rest, 60)
        if not (14 * 3600 + 59 * 60 + 50 <= t <= 15 * 3600 + 20):
            for rd in r.feed(_wn_push(2026, 1, 14, hh, mi, ss, a_wh, 3600)):
                if rd.list_number == 3:
                    lists3.append((hh, mi, ss, rd.fixed(R.F_E_IMPORT)))
                else:
                    assert rd.list_number == 2
                acc.update(rd, now_s=t)
        t += 10
        a_wh += 10
    # 12:59:30 + 10 s * k: the pushes at 13:00:00 (k = 3) and 14:00:00 (k = 363) and 16:00:00 (k = 1083)
    assert lists3 == [(13, 0, 0, (1000030, -3)), (14, 0, 0, (1003630, -3)), (16, 0, 0, (1010830, -3))], lists3
    assert r.counters()["readings"] == 1084 - 4
    hours = acc.hours()
    # 13-14 from the two lists (3600 Wh exact); 14-15 and 15-16 spread from 14:00 to 16:00 (7200 Wh)
    assert [(h[1], h[3]) for h in hours] == [(3600, False), (3600, True), (3600, True)], hours
    assert hours[1][0] - hours[0][0] == 3600


def test_push_meters_repeated_autumn_hour_is_another_hour():
    """The last Sunday of October: 02:59:50 summer time, then 02:00:00 winter time. The clock's DST flag
    tells the two two-o'clock hours apart: the first push of the second one is list 3 too."""
    r = HanReader(2048)
    seen = []
    for hh, mi, ss, dst in ((2, 0, 5, True), (2, 30, 0, True), (2, 59, 50, True), (2, 0, 0, False), (2, 0, 10, False),
                            (3, 0, 0, False)):
        for rd in r.feed(_wn_push(2026, 10, 25, hh, mi, ss, 5000, 100, dst)):
            seen.append(rd.list_number)
    assert seen == [3, 2, 2, 3, 2, 3], seen


def test_push_meters_late_first_push_or_no_clock_is_no_hourly_list():
    """A first push 20 s or more after the full hour, or a clock with an unknown year, is list 2."""
    r = HanReader(2048)
    seen = []
    for y, hh, ss in ((2026, 7, 20), (2026, 8, 19), (0xFFFF, 9, 0), (1999, 10, 0)):
        for rd in r.feed(_wn_push(y, 3, 2, hh, 0, ss, 5000, 100)):
            seen.append(rd.list_number)
    assert seen == [2, 3, 2, 2], seen


def test_siemens_im350_of_e_werk_wels_values_the_source_states():
    """xeniter/eww_ewerk_wels_smartmeter_readout: a Siemens IM350's ciphered push (its key published), the
    Kärnten Netz list without its two strings (structure of 10): the decrypted APDU byte for byte as the
    source's, every value it states, the list identifier and the meter number; +A etc. in Wh as that list."""
    rec = eu_record("eww-im350-wels")
    got, r = _read(unhex(rec["hex"]), rec["key_hex"])
    assert len(got) == 1 and r.envelope.frame_counter == 164437
    fixed, texts, d = got[0]
    e = rec["expected"]
    assert rec["decrypted_apdu_hex"] == "".join(e["source's decrypted APDU (Decrypt data)"].split()).lower()
    for key, f in (("Wirkenergie-Import (+A)", R.F_E_IMPORT), ("Wirkenergieexport (-A)", R.F_E_EXPORT),
                   ("Blindenergieimport (+R) (QI+QII)", R.F_R_IMPORT),
                   ("Blindenergieexport (-R) (QIII+QIV)", R.F_R_EXPORT)):
        assert fixed[f] == (e[key], -3), key
    assert fixed[R.F_P_IMPORT] == (e["Momentane Wirkenergie Importleistung (+A)"], 0)
    assert fixed[R.F_P_EXPORT] == (e["Momentane Wirkenergie Exportleistung (-A)"], 0)  # (the list's last value)
    assert len(fixed) == 6
    assert texts[0] == e["list identifier (0.6.25.9.0.255)"].lower() and texts[1] == e["meter number"]
    assert d["meter_time"] == "2022-09-27T00:15:17" and d["list"] == 2
    got, r = _read(_plain_frame(rec))  # the same list in clear
    assert got[0][0] == fixed
