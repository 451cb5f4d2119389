# Power-loss-safe storage of one small binary record on flash: two copies written alternately, each
# through a temporary file and a rename, with a sequence number and a CRC-32 to reject torn copies.
import struct

try:
    from binascii import crc32 as _crc32
except ImportError:  # a MicroPython build without binascii.crc32
    _crc32 = None

MAGIC = b"HANs"  # file signature
FORMAT = 1  # record layout version (this file's header, not the payload's)
# magic(4) format(1) reserved(3) sequence(4, LE) payload length(4, LE); payload; CRC-32(4, LE) of all before
HEADER_BYTES = 16
CRC_BYTES = 4
MAX_PAYLOAD_BYTES = 65536  # a length field above this is corruption, not data
CHUNK_BYTES = 512  # longer pieces of a payload are written in parts

SLOTS = (".a", ".b")
TMP = ".tmp"


def crc32(data, crc=0):
    """CRC-32 (IEEE 802.3, as zlib/binascii)."""
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


class OsFs:
    """The real file system (os + open); tests pass a fake with the same four methods (files opened
    for reading need read(n) and seek(pos, whence), for writing write() and close())."""

    def open(self, path, mode):
        return open(path, mode)

    def rename(self, src, dst):
        import os

        try:
            os.rename(src, dst)
        except OSError:
            # a VFS that refuses to rename over an existing file: the other copy still holds a
            # valid record while this one is missing for an instant
            os.remove(dst)
            os.rename(src, dst)

    def remove(self, path):
        import os

        os.remove(path)


def header(seq, length):
    """The header of a record of payload length bytes."""
    head = bytearray(HEADER_BYTES)
    head[0:4] = MAGIC
    head[4] = FORMAT
    struct.pack_into("<II", head, 8, seq & 0xFFFFFFFF, length)
    return head


def decode(data):
    """(seq, payload) of a record, None when it is missing, torn or corrupt. The payload is a
    memoryview into data (no copy)."""
    if data is None or len(data) < HEADER_BYTES + CRC_BYTES:
        return None
    if data[0:4] != MAGIC or data[4] != FORMAT:
        return None
    seq, length = struct.unpack_from("<II", data, 8)
    if length > MAX_PAYLOAD_BYTES or len(data) != HEADER_BYTES + length + CRC_BYTES:
        return None
    end = HEADER_BYTES + length
    view = memoryview(data)
    if struct.unpack_from("<I", data, end)[0] != crc32(view[0:end]):
        return None
    return seq, view[HEADER_BYTES:end]


class Store:
    """One record under a base path: files base.a and base.b hold the two newest copies.

    save() writes base.tmp in chunks, closes it, then renames it over the older copy, so at every
    instant one complete copy exists. load() takes the newest copy whose CRC checks out (a finished
    base.tmp left by a power cut counts too) and falls back to the other one."""

    def __init__(self, base, fs=None):
        self.base = base
        self.fs = fs if fs is not None else OsFs()
        self.seq = 0  # sequence number of the newest valid record (0: none)
        self.slot_seq = [-1, -1]  # sequence held by base.a / base.b, -1 = none or invalid
        self.saves = 0
        self.save_errors = 0
        self.bad_copies = 0  # copies found torn or corrupt by load()
        self.loaded_from = None  # ".a", ".b", ".tmp" or None
        self.loaded = False

    def _read(self, path):
        try:
            f = self.fs.open(path, "rb")
        except OSError:
            return None
        try:
            # at once, into one buffer of the file's size (a read to the end grows its buffer step by
            # step: up to twice the memory, at a board's boot); a file longer than any record is read
            # only as far as decode() needs to reject it
            n = f.seek(0, 2)
            f.seek(0)
            return f.read(min(n, HEADER_BYTES + MAX_PAYLOAD_BYTES + CRC_BYTES + 1))
        except OSError:
            return None
        finally:
            f.close()

    def load(self):
        """Payload of the newest valid copy, or None when there is none. Every copy is checked, then
        the newest read again: one copy in memory at a time (a board's heap is tight at boot)."""
        self.loaded = True
        self.slot_seq = [-1, -1]
        names = SLOTS + (TMP,)
        best = -1
        self.seq = 0
        for k in range(3):
            data = rec = None  # (the copy read before is let go first)
            data = self._read(self.base + names[k])
            rec = decode(data)
            if rec is None:
                if data is not None and k < 2:
                    self.bad_copies += 1
                continue
            if k < 2:
                self.slot_seq[k] = rec[0]
            if best < 0 or rec[0] > self.seq:
                best = k
                self.seq = rec[0]
        data = rec = None
        self.loaded_from = names[best] if best >= 0 else None
        if best < 0:
            return None
        rec = decode(self._read(self.base + names[best]))
        if best == 2:
            # a power cut between close and rename: finish the rename, so the next save (which
            # rewrites base.tmp) cannot destroy the newest copy
            k = self._older_slot()
            try:
                self.fs.rename(self.base + TMP, self.base + SLOTS[k])
                self.slot_seq[k] = self.seq
            except OSError:
                self.save_errors += 1
        return rec[1] if rec is not None else None

    def _older_slot(self):
        return 0 if self.slot_seq[0] <= self.slot_seq[1] else 1

    def save(self, payload):
        """Write a new copy over the older one: payload is bytes, or a list of bytes written one after
        the other (a board's heap may have no free block the size of the whole). True on success;
        False (counted) on an OSError."""
        if not self.loaded:
            self.load()  # learn the sequence numbers on flash first: never write an older number
        pieces = payload if isinstance(payload, list) else [payload]
        n = 0
        for p in pieces:
            n += len(p)
        seq = self.seq + 1
        k = self._older_slot()
        tmp = self.base + TMP
        try:
            f = self.fs.open(tmp, "wb")
            try:
                head = header(seq, n)
                f.write(head)
                crc = crc32(head)
                for p in pieces:
                    crc = crc32(p, crc)
                    view = memoryview(p)
                    for i in range(0, len(p), CHUNK_BYTES):
                        f.write(view[i : i + CHUNK_BYTES])
                f.write(struct.pack("<I", crc))
            finally:
                f.close()
            self.fs.rename(tmp, self.base + SLOTS[k])
        except OSError:
            self.save_errors += 1
            try:
                self.fs.remove(tmp)
            except OSError:
                pass
            return False
        self.slot_seq[k] = seq
        self.seq = seq
        self.saves += 1
        return True
