# Property tests (hypothesis, CPython): hostile bytes never raise, garbage never hides a good frame,
# corruption never yields a value the meter did not send.
from hanvectors import build_frame, decode_all, frame_info, norwegian_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hanport import HanReader, decode_frame

FRAMES = norwegian_frames()
EXPECTED = [decode_all(f)[0][0] for f in FRAMES]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=300))
def test_random_bytes_never_raise(data, chunk):
    out, r = decode_all(data, chunk)
    c = r.counters()
    assert len(out) <= c["frames_ok"]


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(FRAMES) - 1), st.binary(max_size=60)), min_size=1, max_size=8),
       st.integers(min_value=1, max_value=97))
def test_garbage_between_good_frames_hides_none(plan, chunk):
    stream = b""
    want = []
    for index, garbage in plan:
        stream += garbage + FRAMES[index]
        want.append(EXPECTED[index])
    out, _ = decode_all(stream, chunk)
    assert out == want


@SETTINGS
@given(st.integers(0, len(FRAMES) - 1), st.lists(st.tuples(st.integers(1, 10_000), st.integers(1, 255)),
                                                   min_size=1, max_size=6))
def test_corrupted_frame_gives_nothing_or_the_original(index, edits):
    frame = bytearray(FRAMES[index])
    for pos, xor in edits:
        frame[1 + pos % (len(frame) - 2)] ^= xor
    got = decode_frame(bytes(frame))
    assert got is None or got == decode_frame(FRAMES[index])


@SETTINGS
@given(st.binary(min_size=1, max_size=400))
def test_hostile_information_field_with_valid_crc(info):
    """A frame with valid checks but arbitrary content: decoded or rejected, never an exception."""
    r = HanReader()
    out = list(r.feed(build_frame(b"\xe6\xe7\x00\x0f\x40\x00\x00\x00\x00" + info)))
    assert len(out) <= 1


@SETTINGS
@given(st.integers(0, len(FRAMES) - 1), st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_mutated_apdu_never_raises(index, pos, patch):
    info = bytearray(frame_info(FRAMES[index]))
    p = pos % len(info)
    info[p : p + len(patch)] = patch
    out, r = decode_all(build_frame(bytes(info)))
    assert len(out) <= 1 and r.counters()["frames_ok"] == 1


@SETTINGS
@given(st.lists(st.sampled_from([0x7E, 0xA0, 0xA1, 0xA8, 0x00, 0x05, 0x09, 0x13, 0x41, 0xFF]), max_size=400),
       st.integers(min_value=1, max_value=40), st.sampled_from([16, 24, 33, 64]))
def test_small_buffer_never_overflows(symbols, chunk, capacity):
    """Flag- and header-like bytes against a tiny buffer: the frame buffer never grows past its
    capacity (on MicroPython an overflow would be an exception, on CPython a silent resize)."""
    out, r = decode_all(bytes(symbols), chunk, capacity=capacity)
    assert len(r.framer.buf) == capacity


@SETTINGS
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=60), st.integers(0, 80), st.booleans()), max_size=10),
       st.integers(min_value=1, max_value=40), st.sampled_from([24, 33, 48, 64]))
def test_cut_and_segmented_frames_in_a_small_buffer(parts, chunk, capacity):
    """Frames with valid header checks, cut anywhere, some with the segmentation bit, against a
    small buffer: no exception and no growth of the buffer."""
    stream = b""
    for info, cut, seg in parts:
        f = build_frame(b"\xe6\xe7\x00\x0f\x40\x00\x00\x00\x00" + info, segmented=seg)
        stream += f[: max(2, len(f) - cut)] if cut < len(f) else f
    out, r = decode_all(stream, chunk, capacity=capacity)
    assert len(r.framer.buf) == capacity
