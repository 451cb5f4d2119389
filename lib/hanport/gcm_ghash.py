# GHASH (NIST SP 800-38D §6.4) of hanport.gcm's Python AES-GCM: the authentication tag, loaded with the first
# tag computed or checked (a meter that sends no tag, or no authentication key configured, never loads it).
from array import array

from hanport.gcm import BLOCK, IV_LEN


def _reduction_tables():
    """GHASH reduction of the 16 coefficients x^112..x^127 pushed out by a multiplication by x^16.

    A 128-bit value is held as eight 16-bit words, w0 first; the most significant bit of w0 is the
    coefficient of x^0 (SP 800-38D §6.3 bit order). x^(128+i) = x^(7+i) + x^(2+i) + x^(1+i) + x^i
    modulo the GCM polynomial x^128 + x^7 + x^2 + x + 1, so the reduction only touches w0 and w1.
    Indexed by the high byte (RH) and low byte (RL) of the dropped word; two words per entry."""
    rh = array("H", bytes(1024))  # (from raw bytes: no list of 512 ints made first)
    rl = array("H", bytes(1024))
    for byte in range(256):
        for half in range(2):
            w0 = 0
            w1 = 0
            for bit in range(8):
                if byte & (0x80 >> bit):
                    i = bit + 8 * half  # the dropped coefficient was x^(112+i), now x^(128+i)
                    for c in (7 + i, 2 + i, 1 + i, i):
                        if c < 16:
                            w0 ^= 0x8000 >> c
                        else:
                            w1 ^= 0x8000 >> (c - 16)
            t = rl if half else rh
            t[2 * byte] = w0
            t[2 * byte + 1] = w1
    return rh, rl


_RH = _RL = None  # the reduction tables, made with the first Ghash (shared by every key)


def _times_x(w):
    """w (list of 8 words) multiplied by x, in place (a right shift with reduction)."""
    carry = w[7] & 1
    for k in range(7, 0, -1):
        w[k] = (w[k] >> 1) | ((w[k - 1] & 1) << 15)
    w[0] >>= 1
    if carry:
        w[0] ^= 0xE100  # R = 11100001 || 0^120 (SP 800-38D §6.3)


class Ghash:
    """GHASH with H = E_K(0^128) of one key: 8-bit tables built once (8 KiB, and 2 KiB shared), state and
    table entries in 16-bit words so every integer stays a small int on a 32-bit ESP32; allocates
    nothing per message."""

    def __init__(self, ecb):
        global _RH, _RL
        if _RH is None:
            _RH, _RL = _reduction_tables()
        self._ecb = ecb
        self._y = array("H", [0] * 8)  # GHASH state
        self._u = array("H", [0] * 8)  # the block being multiplied (state xor input)
        self._pend = bytearray(BLOCK)  # bytes waiting for a whole block
        self._npend = 0
        self._block = bytearray(BLOCK)
        h = bytearray(BLOCK)
        ecb.encrypt(bytes(BLOCK), h)
        self._t0, self._t1 = self._tables(h)

    @staticmethod
    def _tables(h):
        """T0[b] = b*H and T1[b] = b*H*x^8 for every byte b (b's bit 0x80 is the coefficient x^0)."""
        w = [(h[2 * k] << 8) | h[2 * k + 1] for k in range(8)]
        t0 = array("H", bytes(4096))  # (from raw bytes: no list of 2048 ints made first)
        t1 = array("H", bytes(4096))
        for t in (t0, t1):
            for bit in range(8):  # single bits first: 0x80 = w (times x^0 or x^8), 0x40 = w*x, ...
                o = (0x80 >> bit) * 8
                for k in range(8):
                    t[o + k] = w[k]
                _times_x(w)
            for b in range(3, 256):
                if b & (b - 1):  # not a power of two: xor of its top bit's entry and the rest
                    top = 0x80
                    while not b & top:
                        top >>= 1
                    o = b * 8
                    p = top * 8
                    q = (b ^ top) * 8
                    for k in range(8):
                        t[o + k] = t[p + k] ^ t[q + k]
        return t0, t1

    # --- GHASH (SP 800-38D §6.4), streaming over any number of pieces ---
    def _ghash_start(self):
        y = self._y
        for k in range(8):
            y[k] = 0
        self._npend = 0

    def _ghash_blocks(self, buf, p, n):
        """Absorb n whole blocks at buf[p:]: Y = (Y xor X) * H, eight 16-bit words at a time."""
        t0 = self._t0
        t1 = self._t1
        rh = _RH
        rl = _RL
        u = self._u
        y = self._y
        z0 = y[0]
        z1 = y[1]
        z2 = y[2]
        z3 = y[3]
        z4 = y[4]
        z5 = y[5]
        z6 = y[6]
        z7 = y[7]
        for _ in range(n):
            u[0] = z0 ^ ((buf[p] << 8) | buf[p + 1])
            u[1] = z1 ^ ((buf[p + 2] << 8) | buf[p + 3])
            u[2] = z2 ^ ((buf[p + 4] << 8) | buf[p + 5])
            u[3] = z3 ^ ((buf[p + 6] << 8) | buf[p + 7])
            u[4] = z4 ^ ((buf[p + 8] << 8) | buf[p + 9])
            u[5] = z5 ^ ((buf[p + 10] << 8) | buf[p + 11])
            u[6] = z6 ^ ((buf[p + 12] << 8) | buf[p + 13])
            u[7] = z7 ^ ((buf[p + 14] << 8) | buf[p + 15])
            p += 16
            # Horner over the 16-bit words, last first: Z = Z*x^16 + hi*H + lo*H*x^8
            z0 = z1 = z2 = z3 = z4 = z5 = z6 = z7 = 0
            for k in range(7, -1, -1):
                v = u[k]
                a = (v >> 8) << 3
                b = (v & 0xFF) << 3
                d = z7
                e = (d >> 8) << 1
                f = (d & 0xFF) << 1
                z7 = z6 ^ t0[a + 7] ^ t1[b + 7]
                z6 = z5 ^ t0[a + 6] ^ t1[b + 6]
                z5 = z4 ^ t0[a + 5] ^ t1[b + 5]
                z4 = z3 ^ t0[a + 4] ^ t1[b + 4]
                z3 = z2 ^ t0[a + 3] ^ t1[b + 3]
                z2 = z1 ^ t0[a + 2] ^ t1[b + 2]
                z1 = z0 ^ t0[a + 1] ^ t1[b + 1] ^ rh[e + 1] ^ rl[f + 1]
                z0 = t0[a] ^ t1[b] ^ rh[e] ^ rl[f]
        y[0] = z0
        y[1] = z1
        y[2] = z2
        y[3] = z3
        y[4] = z4
        y[5] = z5
        y[6] = z6
        y[7] = z7

    def _ghash(self, buf, start, end):
        """Absorb buf[start:end]; a partial block waits in _pend for the next piece or _ghash_pad."""
        pend = self._pend
        n = self._npend
        p = start
        if n:
            while n < BLOCK and p < end:
                pend[n] = buf[p]
                n += 1
                p += 1
            if n < BLOCK:
                self._npend = n
                return
            self._ghash_blocks(pend, 0, 1)
            n = 0
        whole = (end - p) >> 4
        if whole:
            self._ghash_blocks(buf, p, whole)
            p += whole << 4
        while p < end:
            pend[n] = buf[p]
            n += 1
            p += 1
        self._npend = n

    def _ghash_pad(self):
        """Zero-pad and absorb a waiting partial block (ends the AAD or the ciphertext)."""
        n = self._npend
        if n:
            pend = self._pend
            for k in range(n, BLOCK):
                pend[k] = 0
            self._ghash_blocks(pend, 0, 1)
            self._npend = 0

    def tag(self, iv, aad, buf, a0, a1, c0, c1, out, j0, ek):
        """Full 16-byte tag into out: AAD = aad + buf[a0:a1], ciphertext buf[c0:c1]; j0 and ek: the
        caller's 16-byte (or longer) scratch buffers for the counter block J0 and E_K(J0)."""
        self._ghash_start()
        n_aad = 0
        if aad is not None:
            self._ghash(aad, 0, len(aad))
            n_aad = len(aad)
        self._ghash(buf, a0, a1)
        self._ghash_pad()
        self._ghash(buf, c0, c1)
        self._ghash_pad()
        blk = self._block
        a_bits = (n_aad + a1 - a0) * 8
        c_bits = (c1 - c0) * 8
        for k in range(8):  # len(A) || len(C) in bits, 64-bit big endian each
            s = 8 * (7 - k)
            blk[k] = (a_bits >> s) & 0xFF if s < 32 else 0
            blk[8 + k] = (c_bits >> s) & 0xFF if s < 32 else 0
        self._ghash_blocks(blk, 0, 1)
        for k in range(IV_LEN):
            j0[k] = iv[k]
        j0[12] = 0
        j0[13] = 0
        j0[14] = 0
        j0[15] = 1
        self._ecb.encrypt(j0, ek)  # E_K(J0), the first block only is used
        y = self._y
        for k in range(8):
            w = y[k]
            out[2 * k] = (w >> 8) ^ ek[2 * k]
            out[2 * k + 1] = (w & 0xFF) ^ ek[2 * k + 1]
