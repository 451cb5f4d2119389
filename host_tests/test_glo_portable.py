# Ciphered DSMR telegrams in bare general-glo-ciphering APDUs (Sagemcom T210-D: Luxembourg's Smarty, Energienetze
# Steiermark): glo.GloReader frames them, the envelope deciphers, p1.py reads the text. CPython and MicroPython.
import json

from hanvectors import VECTORS, unhex

from hanport import HanReader
from hanport.glo import GloReader
from hanport.render import reading_json


def _record():
    with open(VECTORS + "/Noschvie__shrdzm.json") as f:
        for r in json.load(f):
            if r["id"] == "shrdzm-sagemcom-t210d-steiermark":
                return r
    raise KeyError("shrdzm-sagemcom-t210d-steiermark")


def _reader(rec, capacity=1024):
    return HanReader(capacity, rec["key_hex"], framer=GloReader(capacity))


def _feed(r, data, chunk):
    out = []
    for i in range(0, len(data), chunk):
        for rd in r.feed(data[i:i + chunk]):
            out.append(json.loads(reading_json(rd)))
    return out


def test_t210d_telegram_deciphered_and_read_as_derived_by_hand():
    rec = _record()
    data = unhex(rec["hex"])
    for chunk in (len(data), 64, 7, 1):
        r = _reader(rec)
        out = _feed(r, b"\x00\x7e\xff" + data + data, chunk)  # (noise before: skipped)
        assert len(out) == 2, (chunk, r.counters())
        for d in out:
            for k, v in rec["derived"].items():
                got = d[k]
                assert (got == v) if not isinstance(v, str) or k in ("meter_time", "list_version") \
                    else abs(got - float(v)) < 1e-9, (k, got, v)
            assert d["obis"]["1-0:1.8.1.255"] == 8520922 and d["obis"]["1-0:4.8.2.255"] == 6778985  # tariffs
        c = r.counters()
        assert c["frames_ok"] == 2 and c["bytes_skipped"] == 3 and c["deciphered"] == 2 and c["p1_crc_error"] == 0


def test_a_corrupted_or_wrongly_keyed_telegram_gives_no_value_and_is_counted():
    rec = _record()
    data = unhex(rec["hex"])
    bad = bytearray(data)
    bad[200] ^= 0x04  # a bit of the ciphertext: the deciphered text fails its CRC (no tag is checked)
    r = _reader(rec)
    assert _feed(r, bytes(bad), 50) == []
    assert r.counters()["wrong_key"] == 1 and r.last_error == "wrong_key"
    assert len(_feed(r, data, 50)) == 1  # the next one is read
    r = HanReader(1024, "00" * 16, framer=GloReader(1024))
    assert _feed(r, data, 100) == [] and r.counters()["wrong_key"] == 1


def test_framing_errors_resync_and_count():
    rec = _record()
    data = unhex(rec["hex"])
    r = _reader(rec)
    broken = b"\xdb\x07" + data[2:40]  # a title length other than 8: format error, hunt again
    assert len(_feed(r, broken + data, 13)) == 1
    c = r.counters()
    assert c["format_error"] == 1 and c["frames_ok"] == 1
    r = _reader(rec, 256)  # longer than the buffer
    assert _feed(r, data, 100) == [] and r.counters()["oversize"] == 1
    r = _reader(rec)
    assert _feed(r, data[:300], 100) == [] and r.counters()["frames_ok"] == 0  # cut short: nothing yet
    # the next APDU's first 211 bytes complete it: deciphered, its text fails the CRC (counted, no value);
    # the rest of that one is skipped while hunting, and the one after is read
    assert len(_feed(r, data + data, 100)) == 1
    c = r.counters()
    assert c["wrong_key"] == 1 and c["frames_ok"] == 2 and c["readings"] == 1, c
