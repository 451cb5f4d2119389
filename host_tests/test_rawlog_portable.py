# The raw-frame ring behind GET /raw: valid, invalid and skipped bytes kept in order, cut when too
# long, and rendered in the capture text format that tools/decode.py replays. CPython + MicroPython.
from hanvectors import decode_all, load_records, norwegian_frames, unhex

from hanport import HanReader
from hanport.rawlog import CAPTURE_HEADER, RawLog


def _messy():
    return unhex([r for r in load_records() if r["id"] == "jalla2000-kamstrup-messy-stream"][0]["hex"])


def _feed(log, data, chunk=13):
    r = HanReader()
    r.framer.tap = log
    for i in range(0, len(data), chunk):
        for _ in r.feed(data[i : i + chunk]):
            pass
    return r


def _replay(text):
    data = bytearray()
    for line in text.split("\n"):
        line = line.split("#", 1)[0].split()
        if len(line) >= 2:
            h = line[1]
            data.extend(bytes(int(h[i : i + 2], 16) for i in range(0, len(h), 2)))
    return bytes(data)


def test_ring_keeps_valid_invalid_and_garbage_in_order():
    clock = [0]

    def tick():
        clock[0] += 250
        return clock[0]

    log = RawLog(slots=16, slot_bytes=400, clock_ms=tick)
    _feed(log, _messy())
    names = [name for _, name, _, _ in log.records()]
    assert names[0] == "skipped"  # the leading "trash" bytes
    assert "fcs_error" in names and names.count("ok") == 2
    times = [t for t, _, _, _ in log.records()]
    assert times == sorted(times)


def test_capture_text_replays_to_the_same_readings():
    log = RawLog(slots=16, slot_bytes=400)
    _feed(log, _messy())
    text = log.capture_text()
    assert text.startswith(CAPTURE_HEADER)
    replayed, _ = decode_all(_replay(text))
    original, _ = decode_all(_messy())
    assert replayed == original and len(replayed) == 2


def test_ring_wraps_and_cuts_long_frames():
    frames = norwegian_frames()
    log = RawLog(slots=4, slot_bytes=64)
    _feed(log, b"".join(frames))
    recs = log.records()
    assert len(recs) == 4
    for _, name, data, _full in recs:
        assert name == "ok" and len(data) <= 64
    assert "cut at" in log.capture_text()
    last = frames[-1]
    assert recs[-1][3] == len(last)


def test_empty_ring():
    log = RawLog()
    assert log.records() == []
    assert log.capture_text() == CAPTURE_HEADER + " source=raw-ring\n"
