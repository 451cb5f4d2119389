# Decryption tests that run unchanged under CPython (pytest) and MicroPython (mp_runner.py): AES-GCM
# known answers, the Swiss GBT + ciphered vectors with their published keys, own frames, wrong keys.
import json

from hanvectors import VECTORS, build_frame, norwegian_frames, unhex

from hanport import HanReader, envelope, gcm, wire_build
from hanport.render import reading_json

# "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test cases 1-4 (published values):
# key, IV, plaintext, AAD, ciphertext, tag
K3 = "feffe9928665731c6d6a8f9467308308"
IV3 = "cafebabefacedbaddecaf888"
P3 = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16"
      "aedf5aa0de657ba637b391aafd255")
C3 = ("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b"
      "396a0aac973d58e091473f5985")
GCM_CASES = (
    ("00" * 16, "00" * 12, "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
    ("00" * 16, "00" * 12, "00" * 16, "", "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
    (K3, IV3, P3, "", C3, "4d5c2af327cd64a62cf35abd2ba6fab4"),
    (K3, IV3, P3[:120], "feedfacedeadbeeffeedfacedeadbeefabaddad2", C3[:120], "5bc94fbc3221a5db94fae95ae7121a47"),
)

KEY = "000102030405060708090a0b0c0d0e0f"  # own test keys (frames made here, round trip)
AUTH_KEY = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
TITLE = b"KAM\x00\x01\x02\x03\x04"


def _scs(vid):
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        for r in json.load(f):
            if r["id"] == vid:
                return r
    raise KeyError(vid)


def _decode(data, key=None, auth_key=None, chunk=0):
    r = HanReader(2048, key, auth_key)
    out = []
    step = chunk or len(data)
    for pos in range(0, len(data), step):
        for rd in r.feed(data[pos : pos + step]):
            out.append(reading_json(rd))
    return out, r


def test_gcm_published_test_cases():
    """Every backend here gives the published ciphertext and tag; decryption checks the tag."""
    backends = gcm.available_backends()
    assert gcm.BACKEND_PYTHON in backends
    for backend in backends:
        for k, iv, p, a, c, t in GCM_CASES:
            g = gcm.new(unhex(k), backend)
            buf = bytearray(unhex(p))
            aad = unhex(a) if a else None
            tag = g.encrypt(unhex(iv), aad, buf, 0, len(buf))
            assert bytes(buf) == unhex(c), (backend, c)
            assert tag == unhex(t), (backend, t)
            assert g.decrypt(unhex(iv), aad, buf, 0, len(buf), tag, 0, 12)
            assert bytes(buf) == unhex(p)
            bad = bytearray(tag)
            bad[11] ^= 1
            assert not g.decrypt(unhex(iv), aad, buf, 0, len(buf), bad, 0, 12)


def test_gcm_keystream_only_mode_matches_gcm_body():
    """Security 0x20 (no tag) decrypts with the GCM counter stream from block 2, the same bytes GCM
    encryption produced (McGrew & Viega test case 3)."""
    for backend in gcm.available_backends():
        g = gcm.new(unhex(K3), backend)
        buf = bytearray(unhex(C3))
        g.crypt(unhex(IV3), buf, 0, len(buf))
        assert bytes(buf) == unhex(P3), backend


def test_swiss_e570_block_transfer_encrypted_with_published_key():
    """L+G E570: five HDLC frames of general-block-transfer carrying one general-glo-ciphering APDU
    (security 0x20); key published with the sample. Meter id stated by the source."""
    rec = _scs("scs-lg-e570-encrypted-valid-data")
    for chunk in (0, 1, 13):
        out, r = _decode(unhex(rec["hex"]), rec["key_hex"], chunk=chunk)
        assert len(out) == 1, (chunk, r.counters())
        d = json.loads(out[0])
        assert d["obis"]["0-0:42.0.0.255"] == rec["expected"]["source (meter id)"]
        c = r.counters()
        assert c["blocks"] == 5 and c["deciphered"] == 1 and c["verified"] == 0 and c["wrong_key"] == 0
    # the plaintext equals the collector's reference decryption (decrypted_apdu_hex, computed when
    # the vectors were collected, not by the source)
    env = r.envelope
    assert bytes(env.buf[env.start : env.end]) == unhex(rec["decrypted_apdu_hex"])
    assert env.security == 0x20 and bytes(env.system_title) == unhex("4c475a6774206295")


def test_swiss_e450_encrypted_without_auth_key():
    """L+G E450, security 0x30 but only the encryption key published: decrypted without a tag check
    (counted unverified); the source states 16 DLMS objects."""
    rec = _scs("scs-lg-e450-encrypted-data-no-pushlist")
    r = HanReader(2048, rec["key_hex"])
    got = [rd for rd in r.feed(unhex(rec["hex"]))]
    assert len(got) == 1
    rd = got[0]
    sent_obis = 0
    for i in range(rd.n_items):
        if rd.item_tagged[i] == 1:
            sent_obis += 1
    assert sent_obis == rec["expected"]["number of DLMS objects"]
    assert r.envelope.security == 0x30 and r.envelope.frame_counter == 0x0006903C
    assert r.counters()["verified"] == 0


def test_wrong_key_is_counted_and_never_gives_a_reading():
    for vid in ("scs-lg-e570-encrypted-valid-data", "scs-lg-e450-encrypted-data-no-pushlist"):
        rec = _scs(vid)
        for k in range(6):
            key = bytearray(unhex(rec["key_hex"]))
            key[k * 3] ^= 1 << k
            out, r = _decode(unhex(rec["hex"]), bytes(key))
            assert out == [], (vid, k)
            assert r.counters()["wrong_key"] == 1 and r.last_error == "wrong_key"


def test_without_key_ciphered_apdus_are_counted_as_encrypted():
    rec = _scs("scs-lg-e570-encrypted-valid-data")
    out, r = _decode(unhex(rec["hex"]))
    assert out == [] and r.counters()["apdu_encrypted"] == 1


def _cipher_frame(info, security, key=KEY, auth_key=AUTH_KEY, counter=0x1234, tag=envelope.GENERAL_GLO_CIPHERING):
    """An HDLC frame whose APDU (info after the LLC header) is ciphered here with the test keys."""
    apdu = info[3:]
    return build_frame(info[:3] + wire_build.encrypt_apdu(apdu, key, TITLE, counter, security, auth_key, tag))


def test_own_frames_round_trip_every_security_mode():
    """Norwegian lists ciphered here (0x30 encrypted + authenticated, 0x20 encrypted, 0x10
    authenticated only; glo and ded tags) decode to exactly the plain frame's reading."""
    from hanvectors import frame_info

    frames = norwegian_frames()
    for idx in (0, len(frames) // 2, len(frames) - 1):
        plain = frames[idx]
        want = _decode(plain)[0]
        info = frame_info(plain)
        for security in (0x30, 0x20, 0x10):
            for tag in (envelope.GENERAL_GLO_CIPHERING, envelope.GENERAL_DED_CIPHERING):
                frame = _cipher_frame(info, security, counter=idx + security, tag=tag)
                out, r = _decode(frame, KEY, AUTH_KEY, chunk=5)
                assert out == want, (idx, security)
                c = r.counters()
                assert c["deciphered"] == 1 and c["verified"] == (1 if security & 0x10 else 0)


def test_wrong_keys_with_a_tag_fail_authentication():
    from hanvectors import frame_info

    info = frame_info(norwegian_frames()[-1])
    frame = _cipher_frame(info, 0x30)
    other = "ff" + KEY[2:]
    for key, auth in ((other, AUTH_KEY), (KEY, "00" + AUTH_KEY[2:])):
        out, r = _decode(frame, key, auth)
        assert out == [] and r.counters()["auth_failed"] == 1 and r.last_error == "auth_failed"
    # authentication only: a changed plaintext byte is caught by the tag
    frame = bytearray(_cipher_frame(info, 0x10))
    body = frame_info(bytes(frame))
    i = len(body) // 2
    changed = bytearray(body)
    changed[i] ^= 0x01
    out, r = _decode(build_frame(bytes(changed)), KEY, AUTH_KEY)
    assert out == [] and r.counters()["auth_failed"] == 1


def test_tampered_ciphertext_fails_authentication_and_the_next_frame_decodes():
    from hanvectors import frame_info

    frames = norwegian_frames()
    info = frame_info(frames[-1])
    body = bytearray(frame_info(_cipher_frame(info, 0x30)))
    body[40] ^= 0x80
    good = _cipher_frame(frame_info(frames[0]), 0x30, counter=99)
    out, r = _decode(build_frame(bytes(body)) + good, KEY, AUTH_KEY, chunk=3)
    assert out == _decode(frames[0])[0]
    assert r.counters()["auth_failed"] == 1


def test_unsupported_security_and_truncated_headers_are_counted():
    from hanvectors import frame_info

    info = frame_info(norwegian_frames()[0])
    apdu = wire_build.encrypt_apdu(info[3:], KEY, TITLE, 1, 0x20)
    for sc, name in ((0xA0, "security_unsupported"), (0x22, "security_unsupported"), (0x00, "security_unsupported")):
        bad = bytearray(apdu)
        bad[11 + (apdu[10] & 0x7F if apdu[10] & 0x80 else 0)] = sc  # after the length of the content
        out, r = _decode(build_frame(info[:3] + bytes(bad)), KEY)
        assert out == [] and r.counters()[name] == 1, (sc, r.counters())
    for cut in (3, 9, 12, 15):
        out, r = _decode(build_frame(info[:3] + apdu[:cut]), KEY)
        assert out == [] and r.counters()["cipher_truncated"] == 1, cut


def test_keys_are_parsed_and_never_shown():
    assert gcm.parse_key(KEY) == unhex(KEY)
    assert gcm.parse_key("0x" + KEY.upper()) == unhex(KEY)
    assert gcm.parse_key(unhex(KEY)) == unhex(KEY)
    assert gcm.parse_key(None) is None and gcm.parse_key("") is None
    for bad in ("00", KEY + "00", "zz" + KEY[2:], b"\x00" * 15):
        try:
            gcm.parse_key(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    r = HanReader(2048, KEY, AUTH_KEY)
    shown = repr(r.envelope) + repr(r.envelope._gcm) + json.dumps(r.counters())
    for secret in (KEY, AUTH_KEY, KEY.upper(), AUTH_KEY.upper()):
        assert secret not in shown.lower()
    assert "key=set" in repr(r.envelope)


def test_decrypting_reader_allocates_nothing_in_steady_state():
    """MicroPython only (heap_lock): ciphered frames (tag checked, and block transfer + keystream
    only) decode without one allocation once the reader is warm. A no-op on CPython."""
    try:
        import micropython
    except ImportError:
        return
    from hanvectors import frame_info

    rec = _scs("scs-lg-e570-encrypted-valid-data")
    info = frame_info(norwegian_frames()[-1])
    cases = ((_cipher_frame(info, 0x30), KEY, AUTH_KEY), (unhex(rec["hex"]), rec["key_hex"], None))
    for data, key, auth in cases:
        r = HanReader(2048, key, auth)
        n = len(data)
        for _ in range(2):  # warm up: the block-transfer buffer is made on first use
            pos = 0
            while pos < n:
                pos = r.push(data, pos, n)
        got = 0
        micropython.heap_lock()
        try:
            for _ in range(3):
                pos = 0
                while pos < n:
                    pos = r.push(data, pos, n)
                    if r.has_reading:
                        got += 1
        finally:
            micropython.heap_unlock()
        assert got == 3
