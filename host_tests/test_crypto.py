# CPython-only decryption tests: the MicroPython GHASH path (Python tables over AES-ECB) against the
# `cryptography` package on random inputs, and frames ciphered by that package decoded by both paths.
import json
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hanvectors import VECTORS, build_frame, frame_info, norwegian_frames, unhex

from hanport import HanReader, envelope, gcm
from hanport.render import reading_json

BACKENDS = (gcm.BACKEND_PYTHON, gcm.BACKEND_CRYPTOGRAPHY)


def test_python_ghash_matches_cryptography_on_random_inputs():
    rng = random.Random(2026)
    for _ in range(400):
        key = rng.randbytes(16)
        iv = rng.randbytes(12)
        plain = rng.randbytes(rng.randrange(0, 200))
        aad = rng.randbytes(rng.randrange(0, 60))
        a = gcm.new(key, gcm.BACKEND_PYTHON)
        b = gcm.new(key, gcm.BACKEND_CRYPTOGRAPHY)
        x = bytearray(plain)
        y = bytearray(plain)
        assert a.encrypt(iv, aad, x, 0, len(x)) == b.encrypt(iv, aad, y, 0, len(y))
        assert x == y
        assert AESGCM(key).encrypt(iv, plain, aad)[:-16] == bytes(x)
        # GMAC over aad + a second AAD piece taken from the buffer (DLMS authentication-only)
        assert a.mac(iv, aad, x, 0, len(x)) == b.mac(iv, aad, y, 0, len(y))
        assert a.mac(iv, aad, x, 0, len(x)) == AESGCM(key).encrypt(iv, b"", aad + bytes(x))


def _ciphered_by_cryptography(apdu, key, auth_key, title, counter, security):
    """general-glo-ciphering APDU built with the `cryptography` package alone (IEC 62056-5-3 security: IV =
    system title || frame counter, AAD = SC || AK, 12-byte tag)."""
    iv = title + counter.to_bytes(4, "big")
    sc = bytes((security,))
    if security == 0x30:
        out = AESGCM(key).encrypt(iv, apdu, sc + auth_key)
        body = out[:-16] + out[-16:-4]
    elif security == 0x20:
        body = AESGCM(key).encrypt(iv, apdu, None)[:-16]
    else:
        body = apdu + AESGCM(key).encrypt(iv, b"", sc + auth_key + apdu)[:12]
    content = sc + counter.to_bytes(4, "big") + body
    n = len(content)
    length = bytes((n,)) if n < 0x80 else (b"\x81" + bytes((n,)) if n < 0x100 else b"\x82" + n.to_bytes(2, "big"))
    return b"\xdb\x08" + title + length + content


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("security", (0x30, 0x20, 0x10))
def test_frames_ciphered_by_cryptography_decode_on_both_paths(backend, security):
    rng = random.Random(security)
    key = rng.randbytes(16)
    auth_key = rng.randbytes(16)
    for n, plain in enumerate(norwegian_frames()):
        info = frame_info(plain)
        title = rng.randbytes(8)
        frame = build_frame(info[:3] + _ciphered_by_cryptography(info[3:], key, auth_key, title, n + 1, security))
        r = HanReader(2048, key.hex(), auth_key)
        r.envelope = envelope.Envelope(key.hex(), auth_key, backend=backend)
        want = [reading_json(x) for x in HanReader().feed(plain)]
        assert [reading_json(x) for x in r.feed(frame)] == want, n
        assert r.counters()["verified"] == (1 if security & 0x10 else 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_swiss_vectors_decrypt_identically_on_both_paths(backend):
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        recs = [r for r in json.load(f) if r.get("key_hex")]
    assert len(recs) == 2
    for rec in recs:
        r = HanReader(2048, rec["key_hex"])
        r.envelope = envelope.Envelope(rec["key_hex"], backend=backend)
        out = list(r.feed(unhex(rec["hex"])))
        assert len(out) == 1
        env = r.envelope
        assert bytes(env.buf[env.start : env.end]).hex() == rec["decrypted_apdu_hex"]


def test_decode_cli_detects_p1_and_decrypts_with_key(tmp_path):
    """tools/decode.py FILE: P1 text and binary frames detected by themselves; --key decrypts."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cli = [sys.executable, os.path.join(root, "tools", "decode.py")]
    with open(VECTORS + "/ndokter__dsmr_parser.json") as f:
        text = [r for r in json.load(f) if r["id"] == "dsmr-parser-v4-2"][0]["text"]
    p1_file = tmp_path / "p1.txt"
    p1_file.write_bytes(text.encode())
    p = subprocess.run(cli + [str(p1_file)], capture_output=True, text=True, check=True)
    assert json.loads(p.stdout)["active_import_w"] == 2027
    assert json.loads(p.stderr.splitlines()[-1])["protocol"] == "p1"
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        rec = [r for r in json.load(f) if r["id"] == "scs-lg-e570-encrypted-valid-data"][0]
    hex_file = tmp_path / "e570.hex"
    hex_file.write_text(rec["hex"])
    p = subprocess.run(cli + ["--hex", str(hex_file), "--key", rec["key_hex"], "--auth-key", "00" * 16],
                       capture_output=True, text=True, check=True)
    assert json.loads(p.stdout)["obis"]["0-0:42.0.0.255"] == "LGZ1030769231253"
    assert rec["key_hex"] not in (p.stdout + p.stderr).lower()
    p = subprocess.run(cli + ["--hex", str(hex_file)], capture_output=True, text=True, check=True)
    counters = json.loads(p.stderr.splitlines()[-1])
    assert p.stdout == "" and counters["protocol"] == "hdlc" and counters["apdu_encrypted"] == 1
    p = subprocess.run(cli + ["--hex", str(hex_file), "--key", "abc"], capture_output=True, text=True)
    assert p.returncode == 2 and "32 hex digits" in p.stderr


def test_a_board_without_the_cipher_parts_counts_ciphered_frames(monkeypatch):
    # `make deploy` leaves hanport-cipher off a board whose settings have no meter key: a ciphered
    # frame then is counted (envelope_not_installed), never a crash, and plain frames go on decoding
    import sys

    import hanport

    monkeypatch.setitem(sys.modules, "hanport.envelope", None)  # import fails as on such a board
    monkeypatch.delattr(hanport, "envelope", raising=False)
    with open(VECTORS + "/scs__smartmeter-datacollector.json") as f:
        rec = next(v for v in json.load(f) if v["id"] == "scs-lg-e570-encrypted-valid-data")
    r = HanReader()
    assert list(r.feed(unhex(rec["hex"]))) == []
    n = r.counters()["envelope_not_installed"]
    assert n >= 1 and r.last_error == "envelope_not_installed"  # (each frame of the capture's message)
    plain = norwegian_frames()[0]
    assert len(list(r.feed(plain))) == 1 and r.counters()["envelope_not_installed"] == n


def test_no_heap_for_the_envelope_is_counted_and_retried_not_raised(monkeypatch):
    # a ciphered meter on a board whose heap has no room to load the envelope, or GHASH at the first tag
    # checked: the UART task once crashed at every frame; now each such frame counts envelope_no_heap,
    # loading is tried again every 64th, and the meter is read once it loads
    rng = random.Random(13)
    key, auth_key = rng.randbytes(16), rng.randbytes(16)
    plain = norwegian_frames()[0]
    info = frame_info(plain)
    frame = build_frame(info[:3] + _ciphered_by_cryptography(info[3:], key, auth_key, rng.randbytes(8), 1, 0x30))
    tries = []

    def no_heap(self, key=None, auth_key=None):
        tries.append(1)
        raise MemoryError("memory allocation failed")

    r = HanReader(2048)
    monkeypatch.setattr(HanReader, "open_envelope", no_heap)
    for _ in range(70):
        assert list(r.feed(frame)) == []
    c = r.counters()
    assert r.last_error == "envelope_no_heap" and c["envelope_no_heap"] == 70 and c["envelope_not_installed"] == 0
    assert len(tries) == 2  # the first such frame, and the 64th after it
    monkeypatch.undo()
    r.envelope_no_heap = 128  # (the next try: now)
    r.open_envelope = lambda: HanReader.open_envelope(r, key, auth_key)
    want = [reading_json(x) for x in HanReader().feed(plain)]
    assert [reading_json(x) for x in r.feed(frame)] == want  # (the envelope loaded: read)

    def ghash_no_heap(*args):
        raise MemoryError("memory allocation failed")

    monkeypatch.setattr(r.envelope._gcm, "check_tag", ghash_no_heap)  # the tag check loads GHASH
    monkeypatch.setattr(r.envelope._gcm, "decrypt", ghash_no_heap)
    assert list(r.feed(frame)) == [] and r.counters()["envelope_no_heap"] == 129
    assert r.last_error == "envelope_no_heap"
