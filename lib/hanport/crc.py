# CRC-16 checks used on the wire: X.25 for HDLC (HCS and FCS) and ARC for DSMR/P1 telegrams.
# Table driven, one table lookup per byte, no allocation (buffer + indices in, int out).
from array import array


def _table(poly):
    t = array("H", bytes(512))  # 256 entries, no temporary list
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t[i] = c
    return t


# CRC-16/X.25 (IEC 62056-46 / ISO 13239): poly 0x1021 reflected = 0x8408, init 0xFFFF,
# final xor 0xFFFF, sent low byte first (the HDLC frame check sequence).
_X25 = _table(0x8408)
# CRC-16/ARC (DSMR 5.0.2 P1 companion standard; telegram format after IEC 62056-21): poly 0x8005 reflected
# = 0xA001, init 0.
# Built on first use (arc_table()): an HDLC meter never needs it.
_ARC = None


def arc_table():
    global _ARC
    if _ARC is None:
        _ARC = _table(0xA001)
    return _ARC


def _crc16_x25_loop(buf, start, end):
    """CRC-16/X.25 of buf[start:end], one table lookup per byte (MicroPython: allocates nothing)."""
    crc = 0xFFFF
    t = _X25
    for i in range(start, end):
        crc = (crc >> 8) ^ t[(crc ^ buf[i]) & 0xFF]
    return crc ^ 0xFFFF


def crc16_arc(buf, start, end):
    """CRC-16/ARC of buf[start:end]."""
    crc = 0
    t = arc_table()
    for i in range(start, end):
        crc = (crc >> 8) ^ t[(crc ^ buf[i]) & 0xFF]
    return crc


try:
    from binascii import crc_hqx  # CPython: CRC-16/CCITT in C

    # X.25 is CCITT with reflected bits: reflect each input byte, run CCITT (init 0xFFFF),
    # reflect the 16-bit result, xor 0xFFFF. Same value, computed in C.
    _REVERSE_BITS = bytes(int("{:08b}".format(i)[::-1], 2) for i in range(256))

    def crc16_x25(buf, start, end):
        """CRC-16/X.25 of buf[start:end] (CPython fast path)."""
        c = crc_hqx(bytes(buf[start:end]).translate(_REVERSE_BITS), 0xFFFF)
        return (_REVERSE_BITS[c & 0xFF] << 8 | _REVERSE_BITS[c >> 8]) ^ 0xFFFF

except ImportError:  # MicroPython has no crc_hqx
    crc16_x25 = _crc16_x25_loop
