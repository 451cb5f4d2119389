# Property tests (hypothesis, CPython) of the framers of meters outside Norway, with their keys: hostile bytes
# never raise; a corrupted T210-D APDU (no checksum around it: the telegram's CRC inside) gives nothing or the
# original values; garbage around a good one hides it not.
import json

from hanvectors import eu_frame, eu_record, unhex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hanport import HanReader
from hanport.glo import GloReader
from hanport.mbus import MbusReader
from hanport.render import reading_json

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T210D = eu_record("shrdzm-sagemcom-t210d-steiermark")  # Sagemcom T210-D, Energienetze Steiermark (its key)
T210D_APDU = unhex(T210D["hex"])
AM550 = eu_record("shrdzm-am550-kaernten-netz")  # Iskraemeco AM550, Kärnten Netz: ciphered HDLC (its key)


def _glo_reader():
    return HanReader(1024, T210D["key_hex"], framer=GloReader(1024))


def _readings(r, data, chunk):
    out = []
    for i in range(0, len(data), chunk):
        for rd in r.feed(data[i:i + chunk]):
            out.append(reading_json(rd))
    return out


ORIGINAL = _readings(_glo_reader(), T210D_APDU, len(T210D_APDU))
assert len(ORIGINAL) == 1 and json.loads(ORIGINAL[0])["active_import_kwh"] == 14159.934


@SETTINGS
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=300))
def test_random_bytes_never_raise_with_a_key(data, chunk):
    readers = (_glo_reader(), HanReader(1024, AM550["key_hex"]),
               HanReader(1024, AM550["key_hex"], framer=MbusReader(1024)))
    for r in readers:
        out = _readings(r, data, chunk)
        c = r.counters()
        assert len(out) <= c["frames_ok"]
        assert AM550["key_hex"] not in json.dumps(c) and T210D["key_hex"] not in json.dumps(c)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(T210D_APDU) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(min_value=1, max_value=600))
def test_a_corrupted_t210d_apdu_gives_nothing_or_the_original(edits, chunk):
    data = bytearray(T210D_APDU)
    for pos, value in edits:
        data[pos] = value
    r = _glo_reader()
    out = _readings(r, bytes(data) + T210D_APDU, chunk)  # (and a good one after it: its length may swallow it)
    assert out == ORIGINAL * len(out) and r.counters()["readings"] == len(out)


@SETTINGS
@given(st.lists(st.binary(max_size=80).map(lambda b: bytes(x for x in b if x != 0xDB)), min_size=1, max_size=4),
       st.integers(min_value=1, max_value=600))
def test_garbage_without_the_tag_hides_no_t210d_apdu(garbage, chunk):
    stream = b"".join(g + T210D_APDU for g in garbage)
    out = _readings(_glo_reader(), stream, chunk)
    assert out == ORIGINAL * len(garbage)


def test_the_am550_frame_still_reads_after_hostile_bytes():
    frame = eu_frame(AM550)
    r = HanReader(1024, AM550["key_hex"])
    out = _readings(r, bytes(range(256)) * 4 + frame, 37)
    assert len(out) == 1 and r.counters()["deciphered"] == 1
