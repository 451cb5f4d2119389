# AES-128-GCM on the `cryptography` package (CPython only; never installed on a board): the fast
# backend of hanport.gcm on a PC, and AES-ECB for testing gcm.Gcm's Python GHASH there.
from hanport.gcm import BACKEND_CRYPTOGRAPHY, FULL_TAG, IV_LEN, KEY_LEN


class EcbCryptography:
    """AES-128-ECB from the `cryptography` package (used to test the Python GHASH on CPython)."""

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

    def encrypt(self, src, dst):
        dst[: len(src)] = self._enc.update(bytes(src))


class CryptographyGcm:
    """The same interface on the `cryptography` package (CPython): OpenSSL does the work."""

    backend = BACKEND_CRYPTOGRAPHY

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(key) != KEY_LEN:
            raise ValueError("AES-128 key must be 16 bytes")
        self._cipher = Cipher
        self._modes = modes
        self._aes = algorithms.AES(bytes(key))

    def __repr__(self):
        return "<Gcm backend=cryptography>"

    def crypt(self, iv, buf, start, end):
        ctx = self._cipher(self._aes, self._modes.CTR(bytes(iv[:IV_LEN]) + b"\x00\x00\x00\x02")).encryptor()
        buf[start:end] = ctx.update(bytes(buf[start:end]))

    def _aad(self, aad, buf, a0, a1):
        return (bytes(aad) if aad is not None else b"") + bytes(buf[a0:a1])

    def check_tag(self, iv, aad, buf, a0, a1, c0, c1, tag, t0, tlen):
        from cryptography.exceptions import InvalidTag

        mode = self._modes.GCM(bytes(iv[:IV_LEN]), bytes(tag[t0 : t0 + tlen]), min_tag_length=tlen)
        ctx = self._cipher(self._aes, mode).decryptor()
        ctx.authenticate_additional_data(self._aad(aad, buf, a0, a1))
        ctx.update(bytes(buf[c0:c1]))
        try:
            ctx.finalize()
        except InvalidTag:
            return False
        return True

    def decrypt(self, iv, aad, buf, c0, c1, tag=None, t0=0, tlen=0):
        if not tlen:
            self.crypt(iv, buf, c0, c1)
            return True
        from cryptography.exceptions import InvalidTag

        mode = self._modes.GCM(bytes(iv[:IV_LEN]), bytes(tag[t0 : t0 + tlen]), min_tag_length=tlen)
        ctx = self._cipher(self._aes, mode).decryptor()
        if aad is not None:
            ctx.authenticate_additional_data(bytes(aad))
        plain = ctx.update(bytes(buf[c0:c1]))
        try:
            ctx.finalize()
        except InvalidTag:
            return False
        buf[c0:c1] = plain
        return True

    def encrypt(self, iv, aad, buf, c0, c1, tlen=FULL_TAG):
        ctx = self._cipher(self._aes, self._modes.GCM(bytes(iv[:IV_LEN]))).encryptor()
        if aad is not None:
            ctx.authenticate_additional_data(bytes(aad))
        buf[c0:c1] = ctx.update(bytes(buf[c0:c1]))
        ctx.finalize()
        return ctx.tag[:tlen]

    def mac(self, iv, aad, buf, a0, a1, tlen=FULL_TAG):
        ctx = self._cipher(self._aes, self._modes.GCM(bytes(iv[:IV_LEN]))).encryptor()
        ctx.authenticate_additional_data(self._aad(aad, buf, a0, a1))
        ctx.finalize()
        return ctx.tag[:tlen]
