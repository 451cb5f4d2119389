# Host side of the wire formats, for tests, the meter simulator and benchmarks (never installed on a
# board; allocates): general-glo-ciphering of a plain APDU, M-Bus long frames around an APDU.
from hanport.dlms import GENERAL_GLO_CIPHERING
from hanport.envelope import AUTH_TAG_LEN, SC_AUTH, SC_ENC, SYSTEM_TITLE_LEN
from hanport.mbus import CI_FIN, CI_SEQUENCE, START, STOP


def encrypt_apdu(apdu, key, system_title, frame_counter, security=SC_AUTH | SC_ENC, auth_key=None,
                 tag=GENERAL_GLO_CIPHERING, backend=None):
    """The general-glo-ciphering APDU of a plain APDU (for tests and benchmarks; allocates).
    With SC_AUTH the tag needs auth_key (AAD = SC || AK)."""
    from hanport import gcm

    g = gcm.new(gcm.parse_key(key), backend)
    iv = bytes(system_title) + bytes(
        ((frame_counter >> 24) & 0xFF, (frame_counter >> 16) & 0xFF, (frame_counter >> 8) & 0xFF,
         frame_counter & 0xFF))
    body = bytearray(apdu)
    mac = b""
    if security & SC_AUTH:
        aad = bytearray(1) + gcm.parse_key(auth_key)
        aad[0] = security
        if security & SC_ENC:
            mac = g.encrypt(iv, aad, body, 0, len(body), AUTH_TAG_LEN)
        else:
            mac = g.mac(iv, aad, body, 0, len(body), AUTH_TAG_LEN)
    elif security & SC_ENC:
        g.crypt(iv, body, 0, len(body))
    content = bytes((security,)) + iv[SYSTEM_TITLE_LEN:] + bytes(body) + mac
    n = len(content)
    if n < 0x80:
        length = bytes((n,))
    elif n < 0x100:
        length = bytes((0x81, n))
    else:
        length = bytes((0x82, n >> 8, n & 0xFF))
    return bytes((tag, SYSTEM_TITLE_LEN)) + bytes(system_title) + length + content


def build_frames(apdu, max_data=250 - 5, control=0x53, address=0xFF, stsap=0x01, dtsap=0x67):
    """M-Bus long frames carrying apdu in DLMS segments of at most max_data APDU bytes each
    (for tests and benchmarks; allocates). Defaults follow the Austrian meters' frames."""
    out = bytearray()
    n = len(apdu)
    seq = 0
    p = 0
    while True:
        piece = apdu[p : p + max_data]
        p += len(piece)
        last = p >= n
        ci = (CI_FIN if last else 0) | (seq & CI_SEQUENCE)
        body = bytes((control, address, ci, stsap, dtsap)) + bytes(piece)
        out += bytes((START, len(body), len(body), START)) + body + bytes((sum(body) & 0xFF, STOP))
        seq += 1
        if last:
            return bytes(out)
