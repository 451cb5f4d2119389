# AES-128-GCM (NIST SP 800-38D) for DLMS security suites 0 and 1: CTR mode here, GHASH in gcm_ghash.py, both on
# the AES block cipher (MicroPython cryptolib), or the `cryptography` package on CPython, one interface.
import sys

BLOCK = 16
KEY_LEN = 16  # AES-128: DLMS security suites 0 and 1 (IEC 62056-5-3 §5.3.4)
IV_LEN = 12  # system title (8) + invocation/frame counter (4), IEC 62056-5-3 §5.3.4.4
FULL_TAG = 16
CHUNK_BLOCKS = 8  # CTR keystream blocks made per block-cipher call

BACKEND_PYTHON = "python"  # GHASH in Python over an AES-ECB block cipher (cryptolib or cryptography)
BACKEND_CRYPTOGRAPHY = "cryptography"  # the whole of GCM inside the `cryptography` package (CPython)

_MICROPYTHON = sys.implementation.name == "micropython"


class _EcbCryptolib:
    """AES-128-ECB from MicroPython's cryptolib (mode 1); encrypts whole buffers of blocks."""

    def __init__(self, key):
        import cryptolib

        self._aes = cryptolib.aes(key, 1)

    def encrypt(self, src, dst):
        self._aes.encrypt(src, dst)


class Gcm:
    """AES-128-GCM in Python: CTR here, GHASH in hanport.gcm_ghash, loaded with the first tag computed or
    checked (decryption alone, for a meter that sends no tag or with no authentication key configured,
    never loads it nor makes its 10 KiB of tables).

    Buffers are processed in place as (buf, start, end); nothing is allocated per message
    except on CPython's test path. Keys are never kept in a readable attribute."""

    backend = BACKEND_PYTHON

    def __init__(self, key, ecb=None):
        if len(key) != KEY_LEN:
            raise ValueError("AES-128 key must be 16 bytes")
        if ecb is None:
            if _MICROPYTHON:
                ecb = _EcbCryptolib(key)
            else:  # CPython (tests of this GHASH): host-only module
                from hanport.gcm_cryptography import EcbCryptography

                ecb = EcbCryptography(key)
        self._ecb = ecb
        self._ctr = bytearray(BLOCK * CHUNK_BLOCKS)
        self._ks = bytearray(BLOCK * CHUNK_BLOCKS)
        self._full = bytearray(BLOCK)
        self._gh = None  # gcm_ghash.Ghash of this key, made with the first tag

    def __repr__(self):
        return "<Gcm backend=python>"

    # --- CTR (SP 800-38D §6.5): counter blocks IV || 32-bit counter, the body starts at 2 ---
    def crypt(self, iv, buf, start, end):
        """Encrypt or decrypt buf[start:end] in place with the GCM keystream (counter 2 on)."""
        ctr = self._ctr
        ks = self._ks
        for j in range(CHUNK_BLOCKS):
            o = j * BLOCK
            for k in range(IV_LEN):
                ctr[o + k] = iv[k]
        counter = 2
        p = start
        while p < end:
            for j in range(CHUNK_BLOCKS):
                o = j * BLOCK + 12
                c = counter + j
                ctr[o] = (c >> 24) & 0xFF
                ctr[o + 1] = (c >> 16) & 0xFF
                ctr[o + 2] = (c >> 8) & 0xFF
                ctr[o + 3] = c & 0xFF
            counter += CHUNK_BLOCKS
            self._ecb.encrypt(ctr, ks)
            n = end - p
            if n > BLOCK * CHUNK_BLOCKS:
                n = BLOCK * CHUNK_BLOCKS
            for k in range(n):
                buf[p + k] ^= ks[k]
            p += n

    def _tag(self, iv, aad, buf, a0, a1, c0, c1, out):
        """Full 16-byte tag into out: AAD = aad + buf[a0:a1], ciphertext buf[c0:c1] (GHASH loads here)."""
        g = self._gh
        if g is None:
            from hanport.gcm_ghash import Ghash

            g = self._gh = Ghash(self._ecb)
        g.tag(iv, aad, buf, a0, a1, c0, c1, out, self._ctr, self._ks)

    # --- the interface shared with CryptographyGcm ---
    def check_tag(self, iv, aad, buf, a0, a1, c0, c1, tag, t0, tlen):
        """True when tag[t0:t0+tlen] authenticates AAD = aad + buf[a0:a1] and ciphertext buf[c0:c1]."""
        full = self._full
        self._tag(iv, aad, buf, a0, a1, c0, c1, full)
        diff = 0
        for k in range(tlen):
            diff |= full[k] ^ tag[t0 + k]
        return diff == 0

    def decrypt(self, iv, aad, buf, c0, c1, tag=None, t0=0, tlen=0):
        """Check the tag (when tlen) over aad + ciphertext, then decrypt buf[c0:c1] in place.
        Returns False, leaving the ciphertext as it was, when the tag does not match."""
        if tlen and not self.check_tag(iv, aad, buf, c0, c0, c0, c1, tag, t0, tlen):
            return False
        self.crypt(iv, buf, c0, c1)
        return True

    def encrypt(self, iv, aad, buf, c0, c1, tlen=FULL_TAG):
        """Encrypt buf[c0:c1] in place; returns the first tlen bytes of the tag (allocates)."""
        self.crypt(iv, buf, c0, c1)
        out = bytearray(BLOCK)
        self._tag(iv, aad, buf, c0, c0, c0, c1, out)
        return bytes(out[:tlen])

    def mac(self, iv, aad, buf, a0, a1, tlen=FULL_TAG):
        """GMAC: tag over AAD = aad + buf[a0:a1] with no ciphertext (allocates the result)."""
        out = bytearray(BLOCK)
        self._tag(iv, aad, buf, a0, a1, a1, a1, out)
        return bytes(out[:tlen])


def available_backends():
    """Backends usable here: MicroPython has only the Python GHASH (on cryptolib)."""
    if _MICROPYTHON:
        return (BACKEND_PYTHON,)
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return ()
    return (BACKEND_CRYPTOGRAPHY, BACKEND_PYTHON)


def new(key, backend=None):
    """An AES-128-GCM object for key (16 bytes): `cryptography` on CPython when installed, the
    Python GHASH over cryptolib on MicroPython. backend forces one of BACKEND_*."""
    if backend is None:
        backends = available_backends()
        if not backends:
            raise ImportError("AES-GCM needs the `cryptography` package on CPython")
        backend = backends[0]
    if backend == BACKEND_CRYPTOGRAPHY:
        from hanport.gcm_cryptography import CryptographyGcm  # host-only module (CPython)

        return CryptographyGcm(key)
    return Gcm(key)


def parse_key(key):
    """A key given as 32 hex digits (str or bytes) or 16 raw bytes -> 16 bytes; None and "" (not
    configured) give None. Raises ValueError for anything else (a configuration error)."""
    if key is None or len(key) == 0:
        return None
    if isinstance(key, str):
        key = key.strip()
        if key.startswith("0x") or key.startswith("0X"):
            key = key[2:]
        if len(key) != 2 * KEY_LEN:
            raise ValueError("key must be 32 hex digits")
        import binascii

        try:
            return bytes(binascii.unhexlify(key))
        except Exception:
            raise ValueError("key must be 32 hex digits") from None
    key = bytes(key)
    if len(key) == 2 * KEY_LEN:
        return parse_key(key.decode())
    if len(key) != KEY_LEN:
        raise ValueError("key must be 16 bytes")
    return key
