# Auto-detection tests, unchanged under CPython (pytest) and MicroPython (mp_runner.py): the same
# AutoReader locks onto HDLC, M-Bus or P1 streams in any chunking and relocks when the line changes.
import json

from hanvectors import VECTORS, frame_info, norwegian_frames, unhex

from hanport import HanReader, wire_build
from hanport.autodetect import AutoReader, decode_bytes
from hanport.p1 import P1Reader
from hanport.render import reading_json

KEY = "000102030405060708090a0b0c0d0e0f"
AUTH_KEY = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"


def _p1(vid, name="ndokter__dsmr_parser.json"):
    with open(VECTORS + "/" + name) as f:
        for r in json.load(f):
            if r["id"] == vid:
                return r["text"].encode()
    raise KeyError(vid)


def _run(reader, data, chunk):
    out = []
    for pos in range(0, len(data), chunk):
        for rd in reader.feed(data[pos : pos + chunk]):
            out.append(reading_json(rd))
    if reader.flush():
        out.append(reading_json(reader.reading))
    return out


def _plain(frames):
    out = []
    for f in frames:
        out += [reading_json(x) for x in HanReader().feed(f)]
    return out


def test_each_protocol_is_detected_in_any_chunking():
    frames = norwegian_frames()[:6]
    hdlc_stream = b"".join(frames)
    want = _plain(frames)
    mbus_stream = b"".join(wire_build.build_frames(frame_info(f)[3:], 60) for f in frames)
    p1_stream = _p1("dsmr-parser-v5") + _p1("dsmr-parser-v4-2")
    p1_want = [reading_json(x) for x in P1Reader().feed(p1_stream)]
    assert len(p1_want) == 2
    for chunk in (1, 3, 64, 5000):
        for stream, proto, expect in ((hdlc_stream, "hdlc", want), (mbus_stream, "mbus", want),
                                      (p1_stream, "p1", p1_want)):
            r = AutoReader()
            assert r.protocol is None
            assert _run(r, stream, chunk) == expect, (proto, chunk)
            assert r.protocol == proto and list(r.readers) == [proto]


def test_detection_with_keys_and_block_transfer():
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        rec = [r for r in json.load(f) if r["id"] == "scs-lg-e570-encrypted-valid-data"][0]
    out = decode_bytes(unhex(rec["hex"]), key=rec["key_hex"])
    assert len(out) == 1 and out[0]["obis"]["0-0:42.0.0.255"] == rec["expected"]["source (meter id)"]
    apdu = frame_info(norwegian_frames()[-1])[3:]
    ciphered = wire_build.encrypt_apdu(apdu, KEY, b"SAGxxxx\x01", 5, 0x30, AUTH_KEY)
    r = AutoReader(key=KEY, auth_key=AUTH_KEY)
    assert _run(r, wire_build.build_frames(ciphered, 100), 11) == _plain(norwegian_frames()[-1:])
    assert r.protocol == "mbus" and r.counters()["mbus_verified"] == 1
    assert KEY not in repr(r) and AUTH_KEY not in repr(r) and KEY not in json.dumps(r.counters())


def test_garbage_before_the_first_message_and_a_line_change():
    frames = norwegian_frames()[:4]
    noise = bytes((i * 37) & 0xFF for i in range(3000))
    r = AutoReader(relock_bytes=2000)
    out = _run(r, noise + b"".join(frames), 50)
    assert out == _plain(frames) and r.protocol == "hdlc"
    # the line now carries P1 (another meter): after relock_bytes without a frame, detection restarts
    p1_stream = _p1("dsmr-parser-v5")
    out = _run(r, noise + p1_stream + p1_stream, 50)
    assert r.relocks == 1 and r.protocol == "p1" and len(out) >= 1


def test_fixed_protocol_only_runs_that_parser():
    r = AutoReader("p1")
    assert list(r.readers) == ["p1"]
    assert _run(r, b"".join(norwegian_frames()[:3]), 100) == []
    assert r.protocol == "p1"
    try:
        AutoReader("iec")
    except ValueError:
        return
    raise AssertionError("unknown protocol accepted")


def test_hostile_bytes_never_raise():
    """Mutated P1 telegrams and (ciphered) M-Bus streams through every parser: results or counters,
    never an exception."""
    from hanvectors import Lcg

    rng = Lcg(11)
    samples = [_p1("dsmr-parser-v5"), _p1("dsmr-parser-v2-2"), _p1("dsmr-parser-fluvius-v171")]
    for a in [frame_info(f)[3:] for f in norwegian_frames()[:4]]:
        samples.append(wire_build.build_frames(wire_build.encrypt_apdu(a, KEY, b"12345678", 1, 0x30, AUTH_KEY), 50))
        samples.append(wire_build.build_frames(a, 40))
    specials = b"/!()*:-.\r\n0123456789ABCDEF\x68\x16\xdb\xe0\x7e"
    for _ in range(150):
        data = bytearray(samples[rng.next(len(samples))])
        for _ in range(1 + rng.next(6)):
            j = rng.next(len(data))
            op = rng.next(3)
            if op == 0:
                data[j] = rng.next(256)
            elif op == 1:
                data[j : j + 1] = b""
            else:
                data[j:j] = bytes((specials[rng.next(len(specials))],))
        for r in (P1Reader(), AutoReader(key=KEY, auth_key=AUTH_KEY), AutoReader(key=KEY)):
            for _ in r.feed(bytes(data)):
                pass
            r.flush()
            r.counters()
