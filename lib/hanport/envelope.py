# DLMS envelopes around a data-notification: general-block-transfer reassembly and general-glo/ded
# ciphering (AES-128-GCM), unwrapped in place into (buf, start, end) before the A-XDR walk (dlms.py).
from hanport.buffers import const, copy
from hanport.dlms import (  # the APDU tags, the LLC header and the A-XDR length: dlms.py's
    GENERAL_BLOCK_TRANSFER,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    axdr_length,
    llc_skip,
)

SYSTEM_TITLE_LEN = const(8)
_FRAME_COUNTER_LEN = const(4)
AUTH_TAG_LEN = const(12)  # security suite 0/1 authentication tag (IEC 62056-5-3 §5.3.4)

# security control byte (IEC 62056-5-3 §5.3.4.5)
_SC_SUITE = const(0x0F)  # security suite id: 0 (AES-GCM-128) and 1 (AES-GCM-128 + ECDSA/ECDH) use AES-128-GCM
SC_AUTH = const(0x10)  # authenticated: 12-byte tag, AAD = SC || AK (|| plaintext when not encrypted)
SC_ENC = const(0x20)  # encrypted
_SC_COMPRESSED = const(0x80)  # compression: not supported
_MAX_SUITE = const(1)

# general-block-transfer block-control byte (IEC 62056-5-3 §9.4.6.13)
_GBT_LAST = const(0x80)
_GBT_HEADER = const(6)  # tag, block-control, block-number(2), block-number-ack(2)

# --- result codes of Envelope.open (index into Envelope.counts) ---
OK = 0  # buf[start:end] is the APDU to walk: plain, deciphered, or still ciphered when no key is
#          configured (dlms then counts it "encrypted")
PENDING = 1  # a block of a longer message was stored; nothing to decode yet (not an error)
_ERR_AUTH = const(2)  # authentication tag mismatch: wrong key(s) or corrupted message; nothing decoded
_ERR_WRONG_KEY = const(3)  # decrypted without a tag check and the result is not a valid APDU (set by the reader)
_ERR_SECURITY = const(4)  # security control not supported (suite > 1, compression, no protection bits)
ERR_TRUNCATED = 5  # a ciphering or block header or its length runs past the message
_ERR_BLOCK_SEQUENCE = const(6)  # a general-block-transfer block lost, repeated or out of order: message dropped
_ERR_BLOCK_OVERSIZE = const(7)  # reassembled blocks larger than the buffer
NAMES = ("ok", "pending", "auth_failed", "wrong_key", "security_unsupported", "cipher_truncated",
         "block_sequence", "block_oversize")



class Envelope:
    """Opens what a framer delivered: strips the LLC header, joins general-block-transfer blocks,
    checks and decrypts ciphered APDUs in place. After open() == OK, buf[start:end] is the APDU.

    key / auth_key: 32 hex digits or 16 bytes, None when not configured. They are not kept in any
    readable attribute and never appear in repr() or counters."""

    def __init__(self, key=None, auth_key=None, capacity=2048, backend=None):
        self._gcm = None
        self.count = 0  # last A-XDR length read by dlms.axdr_length()
        self._aad = None  # SC || AK, the additional authenticated data of suite 0/1
        self._iv = None
        if key or auth_key:  # AES-GCM is loaded only for meters that encrypt (saves RAM otherwise)
            from hanport import gcm

            k = gcm.parse_key(key)
            a = gcm.parse_key(auth_key)
            self._gcm = gcm.new(k, backend) if k is not None else None
            if a is not None:
                self._aad = bytearray(1 + gcm.KEY_LEN)
                for i in range(gcm.KEY_LEN):
                    self._aad[1 + i] = a[i]
            self._iv = bytearray(gcm.IV_LEN)
        self.capacity = capacity
        self._blocks = None  # reassembly buffer, allocated with the first block transfer
        self._fill = 0
        self._next_block = 0  # block number expected next, 0 = not assembling
        self.counts = [0] * len(NAMES)
        self.deciphered = 0  # ciphered APDUs opened (tag checked or not)
        self.verified = 0  # ... of which the authentication tag was checked
        self.blocks = 0  # general-block-transfer blocks accepted
        self.blocks_orphaned = 0  # blocks skipped while waiting for a block number 1
        # the last opened message
        self.buf = None
        self.start = 0
        self.end = 0
        self.ciphered = False  # the APDU was deciphered
        self.authenticated = False  # ... and its tag matched
        self.security = 0  # security control byte of the last ciphered APDU
        self.system_title = bytearray(SYSTEM_TITLE_LEN)  # of the last ciphered APDU

    def __repr__(self):
        return "<Envelope key=%s auth_key=%s>" % ("set" if self._gcm else "none", "set" if self._aad else "none")

    @property
    def frame_counter(self):
        """Invocation (frame) counter of the last ciphered APDU (an int made on demand: it may not
        fit a small int on a 32-bit port, and the decode path allocates nothing)."""
        iv = self._iv
        if iv is None:
            return None  # no key configured: nothing was deciphered
        return (iv[8] << 24) | (iv[9] << 16) | (iv[10] << 8) | iv[11]

    @property
    def has_key(self):
        return self._gcm is not None

    @property
    def has_auth_key(self):
        return self._aad is not None

    def counters(self):
        """Counter name -> count (allocates); names prefixed by the caller."""
        d = {}
        for i in range(2, len(NAMES)):
            d[NAMES[i]] = self.counts[i]
        d["deciphered"] = self.deciphered
        d["verified"] = self.verified
        d["blocks"] = self.blocks
        d["blocks_orphaned"] = self.blocks_orphaned
        return d

    def _error(self, code):
        self.counts[code] += 1
        return code

    def open(self, buf, start, end):
        """Unwrap buf[start:end]; returns OK (then self.buf[self.start:self.end] is the APDU),
        PENDING, or an error code (counted)."""
        self.ciphered = False
        self.authenticated = False
        p = llc_skip(buf, start, end)
        if p < end and buf[p] == GENERAL_BLOCK_TRANSFER:
            code = self._block(buf, p, end)
            if code:
                return code
            buf = self.buf
            p = self.start
            end = self.end
        if p < end and (buf[p] == GENERAL_GLO_CIPHERING or buf[p] == GENERAL_DED_CIPHERING) and self._gcm:
            return self._decipher(buf, p, end)
        self.buf = buf
        self.start = p
        self.end = end
        return OK

    def reject(self):
        """The reader found the deciphered, unauthenticated APDU invalid: count it as a wrong key."""
        self.counts[_ERR_WRONG_KEY] += 1
        return _ERR_WRONG_KEY

    # --- general-block-transfer ---
    def _block(self, buf, p, end):
        """Store one block; OK with the whole message in self.buf[0:self.end] after the last."""
        if p + _GBT_HEADER >= end:
            return self._error(ERR_TRUNCATED)
        control = buf[p + 1]
        number = (buf[p + 2] << 8) | buf[p + 3]
        q = axdr_length(self, buf, p + _GBT_HEADER, end)  # A-XDR length of the block data
        if q < 0:
            return self._error(ERR_TRUNCATED)
        n = self.count
        if q + n > end:
            return self._error(ERR_TRUNCATED)
        if number == 1:
            if self._next_block:  # the message being assembled lost its end
                self.counts[_ERR_BLOCK_SEQUENCE] += 1
            self._fill = 0
        elif number != self._next_block:
            if not self._next_block:
                self.blocks_orphaned += 1
                return PENDING
            self._next_block = 0
            return self._error(_ERR_BLOCK_SEQUENCE)
        if self._blocks is None:
            self._blocks = bytearray(self.capacity)
        fill = self._fill
        if fill + n > self.capacity:
            self._next_block = 0
            return self._error(_ERR_BLOCK_OVERSIZE)
        dst = self._blocks
        copy(dst, fill, buf, q, n)
        self._fill = fill + n
        self.blocks += 1
        if not control & _GBT_LAST:
            self._next_block = number + 1
            return PENDING
        self._next_block = 0
        self.buf = dst
        self.start = 0
        self.end = self._fill
        return OK

    # --- general-glo-ciphering / general-ded-ciphering ---
    def _decipher(self, buf, p, end):
        q = p + 1
        if q + 1 + SYSTEM_TITLE_LEN >= end or buf[q] != SYSTEM_TITLE_LEN:
            return self._error(ERR_TRUNCATED)
        st = q + 1
        q = axdr_length(self, buf, st + SYSTEM_TITLE_LEN, end)  # A-XDR length of the ciphered content
        if q < 0:
            return self._error(ERR_TRUNCATED)
        n = self.count
        stop = q + n
        if n < 1 + _FRAME_COUNTER_LEN or stop > end:
            return self._error(ERR_TRUNCATED)
        sc = buf[q]
        if sc & _SC_SUITE > _MAX_SUITE or sc & _SC_COMPRESSED or not sc & (SC_AUTH | SC_ENC):
            return self._error(_ERR_SECURITY)
        fc = q + 1
        c0 = fc + _FRAME_COUNTER_LEN
        c1 = stop
        if sc & SC_AUTH:
            c1 = stop - AUTH_TAG_LEN
            if c1 < c0:
                return self._error(ERR_TRUNCATED)
        title = self.system_title
        iv = self._iv
        for i in range(SYSTEM_TITLE_LEN):
            b = buf[st + i]
            title[i] = b
            iv[i] = b
        for i in range(_FRAME_COUNTER_LEN):
            iv[SYSTEM_TITLE_LEN + i] = buf[fc + i]
        self.security = sc
        g = self._gcm
        aad = self._aad
        if sc & SC_AUTH and aad is not None:
            aad[0] = sc
            if sc & SC_ENC:
                ok = g.decrypt(iv, aad, buf, c0, c1, buf, c1, AUTH_TAG_LEN)
            else:  # authentication only (GMAC): the APDU travels in clear inside the AAD
                ok = g.check_tag(iv, aad, buf, c0, c1, c1, c1, buf, c1, AUTH_TAG_LEN)
            if not ok:
                return self._error(_ERR_AUTH)
            self.verified += 1
            self.authenticated = True
        elif sc & SC_ENC:
            g.crypt(iv, buf, c0, c1)  # no tag to check: the reader validates the plaintext
        self.deciphered += 1
        self.ciphered = True
        self.buf = buf
        self.start = c0
        self.end = c1
        return OK
