# M-Bus long-frame tests, unchanged under CPython (pytest) and MicroPython (mp_runner.py): Austrian
# frames published with their key, DLMS segments joined, checksum/format/segment errors counted.
from hanvectors import Lcg, frame_info, norwegian_frames, unhex

from hanport import HanReader, mbus, wire_build
from hanport.render import reading_json

# Published M-Bus captures (nooxnet/smart-meter-mbus-dlms, commit 1187e8ab3eea658c352ae2e23ded5f53024cc07f):
# test/apdu-decryption.test.ts "Sample from NÖ Netz EVN documentation with decryption key" (two frames,
# CI 00 then 11, general-glo-ciphering, security 0x20) and its key; the source asserts the ciphered
# content length 0xF8.
EVN_KEY = "36C66639E48A8CA4D6BC8B282A793BBB"
EVN = (
    "68FAFA6853FF000167DB084B464D675000000981F8200000002388D5AB4F97515AAFC6B88D2F85DAA7A0E3C0C40D004535C397C9D0"
    "37AB7DBDA329107615444894A1A0DD7E85F02D496CECD3FF46AF5FB3C9229CFE8F3EE4606AB2E1F409F36AAD2E50900A4396FC6C2E0"
    "83F373233A69616950758BFC7D63A9E9B6E99E21B2CBC2B934772CA51FD4D69830711CAB1F8CFF25F0A329337CBA51904F0CAED88D"
    "61968743C8454BA922EB00038182C22FE316D16F2A9F544D6F75D51A4E92A1C4EF8AB19A2B7FEAA32D0726C0ED80229AE6C0F7621A"
    "4209251ACE2B2BC66FF0327A653BB686C756BE033C7A281F1D2A7E1FA31C3983E15F8FD16CC5787E6F517166814146853FF1101674"
    "19A3CFDA44BE438C96F0E38BF83D98316")
# test/multi-telegram-reader.test.ts, same commit: "Sample from SalzburgNetz documentation" (one frame,
# CI 10, no key published; content length 0x4D asserted) and "Other KAIFA MA309M
# https://www.gurux.fi/node/18232 1st" (two frames, length field 82 01 55 asserted; no key).
SALZBURG = (
    "685D5D6853FF100167DB08454C5365700000014D200000541FE2A330AD29E0D68C09365BA286DBF3A7DF14B7790E14D1556AB974B2"
    "7EC5847D11936DB5191DD0F489BA768C2DBB68F6B001E304C21FEA147E0B2E2CA1B91D574DF4F7F582CEBE928316")
MA309M = (
    "68FAFA6853FF000167DB084B464D1020007840820155210000E5547FE6804BEEFE35299E6EBD48A8BFA9A5A0D1D800E169D73A06"
    "F0E97CF3ED24B21E949F7E76DD2255FF2D7D055248F5689876863E1FC0B0D4F0F3751EA2198779978994FAA1B63A30198638E244"
    "ED6544498D7C7F8B4F2F6183E086CDA4A83D4585DDC4E4F93FE4B995DEB58827239968EBBCB8833709146C4EE3147E4018DC9E42"
    "3955CEBF2DBF73EF4F6190EED19FFC53A667F8138522AE440C57B6C4E5FD434BDFF2F6E9335E12206307979FFC35DEEB9A3A6E05"
    "5E1EEFD1B7DC556AD697AF4D06F5B014857123EA88A38CD288084D6D0C870F5A7E428A31149DE4BDC0ECBFAAA094881668727268"
    "53FF11016775D9104A5C1E37437108B3E0F5DFDE226DBF0973F822045F153E5383D48D876B81CF1273CD59EC0EF48020A188B505"
    "F3D878EF2843D7B1841F95DF8B2F42014C25D71397E3A6B605532E91ECCA11BBD3FDA24A77D0547BDFB470A351460AFB96002EDB"
    "59C01D25FBD59A15EE421416")


def _hex(text):
    return unhex("".join(text.split()))


def _decode(data, key=None, auth_key=None, chunk=0, capacity=2048):
    r = HanReader(capacity, key, auth_key, mbus.MbusReader(capacity))
    out = []
    step = chunk or len(data)
    for pos in range(0, len(data), step):
        for rd in r.feed(data[pos : pos + step]):
            out.append(reading_json(rd))
    return out, r


def test_evn_two_frames_decrypt_with_the_published_key():
    """Values derived from the spec (A-XDR decode of the decrypted APDU, IEC 62056-6-2 data types): A+ register
    0x3289 Wh with scaler 0 = 12.937 kWh, UL1 0x0921 with scaler -1 = 233.7 V, header time."""
    for chunk in (0, 1, 7, 250):
        out, r = _decode(_hex(EVN), EVN_KEY, chunk=chunk)
        assert len(out) == 1, chunk
        text = out[0]
        assert '"active_import_kwh":12.937' in text
        assert '"voltage_l1_v":233.7' in text
        assert '"meter_time":"2021-09-27T09:47:15"' in text
        c = r.counters()
        assert c["frames_ok"] == 2 and c["segments"] == 1 and c["deciphered"] == 1 and c["wrong_key"] == 0
    env = r.envelope
    assert env.security == 0x20 and bytes(env.system_title) == b"KFMgP\x00\x00\x09"
    assert env.end - env.start == 0xF8 - 5  # content length (source) minus security byte and counter


def test_evn_wrong_key_and_no_key():
    out, r = _decode(_hex(EVN), "00" * 16)
    assert out == [] and r.counters()["wrong_key"] == 1
    out, r = _decode(_hex(EVN))
    assert out == [] and r.counters()["apdu_encrypted"] == 1 and r.counters()["frames_ok"] == 2


def test_salzburg_single_frame_and_kaifa_ma309m_pair_are_joined():
    f = mbus.MbusReader()
    data = _hex(SALZBURG)
    assert f.push(data) == len(data) and f.ready
    apdu = f.buf[f.info_start : f.info_end]
    assert apdu[0] == 0xDB and apdu[10] == 0x4D and len(apdu) == 11 + 0x4D
    f = mbus.MbusReader()
    data = _hex(MA309M)
    pos = f.push(data)
    assert f.ready and pos == len(data) and f.segments == 1
    apdu = f.buf[f.info_start : f.info_end]
    assert apdu[0] == 0xDB and apdu[10:13] == b"\x82\x01\x55" and len(apdu) == 13 + 0x155
    assert apdu[13] == 0x21  # security suite 1, encrypted: accepted, decrypted with AES-128-GCM
    out, r = _decode(data, "11" * 16)
    assert out == [] and r.counters()["wrong_key"] == 1 and r.counters()["security_unsupported"] == 0


def _apdus():
    return [frame_info(f)[3:] for f in norwegian_frames()]


def test_segments_of_every_size_and_any_chunking():
    apdus = _apdus()
    plain = [reading_json(x) for f in norwegian_frames() for x in HanReader().feed(f)]
    for size in (8, 40, 245):
        stream = b"".join(wire_build.build_frames(a, size) for a in apdus)
        for chunk in (0, 1, 5, 64):
            out, r = _decode(stream, chunk=chunk)
            assert out == plain, (size, chunk)
            assert r.counters()["checksum_error"] == 0 and r.counters()["segment_lost"] == 0


def test_checksum_error_lost_segment_and_garbage_drop_only_their_message():
    apdus = _apdus()
    good = wire_build.build_frames(apdus[0])
    want = _decode(good)[0]
    big = wire_build.build_frames(max(apdus, key=len), 30)
    bad = bytearray(big)
    bad[20] ^= 0x04  # inside the first frame's data: checksum error
    out, r = _decode(bytes(bad) + good)
    assert out == want and r.counters()["checksum_error"] == 1
    assert r.counters()["segment_lost"] >= 1  # the message's later segments arrive without their start
    # a segment lost in the middle
    n = 30 + 5 + 6
    lost = big[:n] + big[2 * n :]
    out, r = _decode(lost + good, chunk=9)
    assert out == want and r.counters()["segment_lost"] >= 1
    # garbage, an M-Bus ACK (E5), a short frame and a plain M-Bus data frame (CI 72) in between
    plain_mbus = bytes((0x68, 0x08, 0x08, 0x68, 0x08, 0x01, 0x72, 1, 2, 3, 4, 5))
    plain_mbus += bytes((sum(plain_mbus[4:]) & 0xFF, 0x16))
    rng = Lcg(5)
    noise = bytes(rng.next(256) for _ in range(50))
    stream = noise + b"\xe5" + b"\x10\x5b\x01\x5c\x16" + plain_mbus + good + noise + good
    out, r = _decode(stream, chunk=7)
    assert out == want + want
    assert r.counters()["not_dlms"] == 1 and r.counters()["bytes_skipped"] > 0


def test_length_mismatch_stop_byte_and_oversize():
    good = wire_build.build_frames(_apdus()[0])
    want = _decode(good)[0]
    bad = bytearray(good)
    bad[2] ^= 1  # the two L fields differ
    out, r = _decode(bytes(bad) + good)
    assert out == want and r.counters()["format_error"] >= 1
    bad = bytearray(good)
    bad[-1] = 0x17  # no stop character
    out, r = _decode(bytes(bad) + good)
    assert out == want and r.counters()["no_stop_byte"] == 1
    out, r = _decode(wire_build.build_frames(bytes(600), 200) + good, capacity=300)
    assert out == want and r.counters()["oversize"] == 1


def test_ciphered_apdu_in_mbus_frames_round_trip():
    """Own keys: a Norwegian list ciphered (0x30) and split over M-Bus frames decodes as the plain one."""
    key = "000102030405060708090a0b0c0d0e0f"
    auth = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    apdu = _apdus()[-1]
    ciphered = wire_build.encrypt_apdu(apdu, key, b"KFM\x10\x20\x00\x78\x40", 7, 0x30, auth)
    want = [reading_json(x) for x in HanReader().feed(norwegian_frames()[-1])]
    out, r = _decode(wire_build.build_frames(ciphered, 100), key, auth, chunk=17)
    assert out == want and r.counters()["verified"] == 1
