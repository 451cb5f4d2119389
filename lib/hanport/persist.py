# Power-loss-safe flash writes: write_file() replaces a whole file (old or new content after a cut at
# any step); Store keeps one binary record in two copies with a sequence number and a CRC-32.
import struct

from hanport.buffers import const

try:
    from binascii import crc32 as _crc32
except ImportError:  # a MicroPython build without binascii.crc32
    _crc32 = None

_MAGIC = const(b"HANs")  # file signature
_FORMAT = const(1)  # record layout version (this file's header, not the payload's)
# magic(4) format(1) reserved(3) sequence(4, LE) payload length(4, LE); payload; CRC-32(4, LE) of all before
_HEADER_BYTES = const(16)
_CRC_BYTES = const(4)
_MAX_PAYLOAD_BYTES = const(65536)  # a length field above this is corruption, not data
CHUNK_BYTES = 512  # longer pieces of a payload are written in parts

SLOTS = (".a", ".b")
_TMP = const(".tmp")


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
    """The real file system (os + open); tests pass a fake with the same three methods (files opened
    for reading need read(n), seek(pos, whence) and close(), for writing write() and close()).
    rename() is the VFS's own: atomic over an existing file on LittleFS and POSIX, refused (OSError)
    there on FAT; replace() below handles both."""

    def open(self, path, mode):
        return open(path, mode)

    def rename(self, src, dst):
        import os

        os.rename(src, dst)

    def remove(self, path):
        import os

        os.remove(path)


_OLD = const(".old")  # suffix of the previous file while replace() swaps on a FAT volume


def _exists(fs, path):
    try:
        fs.open(path, "rb").close()
        return True
    except OSError:
        return False


def _remove_if_there(fs, path):
    try:
        fs.remove(path)
    except OSError:
        pass


def replace(fs, src, dst):
    """Put the finished file src in place of dst. One atomic rename where the VFS renames over an
    existing file (LittleFS, POSIX); on FAT dst is first renamed to dst.old, so that at every instant
    dst or dst.old holds the old content and src or dst the new one (recover() finishes the swap)."""
    try:
        fs.rename(src, dst)
        return
    except OSError:
        pass
    old = dst + _OLD
    _remove_if_there(fs, old)  # left by a swap cut short earlier (dst is whole: recover() ran)
    fs.rename(dst, old)
    fs.rename(src, dst)
    _remove_if_there(fs, old)


def write_file(path, pieces, fs=None):
    """Replace the file at path by the bytes of pieces (an iterable, written one after the other), so that a
    power cut at any step leaves the old content or the new, never none and never a mix: path.tmp
    is written and closed first, then replace() puts it in place. Call recover(path) before reading
    the file at start-up. Raises OSError (nothing changed but perhaps a path.tmp left)."""
    fs = fs if fs is not None else OsFs()
    tmp = path + _TMP
    f = fs.open(tmp, "wb")
    try:
        for p in pieces:
            view = memoryview(p)
            for i in range(0, len(p), CHUNK_BYTES):
                f.write(view[i : i + CHUNK_BYTES])
    finally:
        f.close()
    replace(fs, tmp, path)


def recover(path, fs=None):
    """Before reading a file that write_file() writes: finish a swap that a power cut interrupted
    (path missing, path.old there: path.tmp is whole, as it was closed before the swap began) and
    drop a path.tmp that never got in place (the file keeps its old content)."""
    fs = fs if fs is not None else OsFs()
    old = path + _OLD
    tmp = path + _TMP
    try:
        if _exists(fs, old):
            if not _exists(fs, path):
                fs.rename(tmp if _exists(fs, tmp) else old, path)
            _remove_if_there(fs, old)
        _remove_if_there(fs, tmp)
    except OSError:
        pass  # read-only or failing flash: the reader sees what is there


def header(seq, length):
    """The header of a record of payload length bytes."""
    head = bytearray(_HEADER_BYTES)
    head[0:4] = _MAGIC
    head[4] = _FORMAT
    struct.pack_into("<II", head, 8, seq & 0xFFFFFFFF, length)
    return head


def _record(seq, length, pieces, done):
    """The pieces of a record (header, payload pieces, CRC), the CRC summed as they go by."""
    head = header(seq, length)
    crc = crc32(head)
    yield head
    for p in pieces:
        crc = crc32(p, crc)
        done[0] += len(p)
        yield p
    yield struct.pack("<I", crc)


def decode(data):
    """(seq, payload) of a record, None when it is missing, torn or corrupt. The payload is a
    memoryview into data (no copy)."""
    if data is None or len(data) < _HEADER_BYTES + _CRC_BYTES:
        return None
    if data[0:4] != _MAGIC or data[4] != _FORMAT:
        return None
    seq, length = struct.unpack_from("<II", data, 8)
    if length > _MAX_PAYLOAD_BYTES or len(data) != _HEADER_BYTES + length + _CRC_BYTES:
        return None
    end = _HEADER_BYTES + length
    view = memoryview(data)
    if struct.unpack_from("<I", data, end)[0] != crc32(view[0:end]):
        return None
    return seq, view[_HEADER_BYTES:end]


class Store:
    """One record under a base path: files base.a and base.b hold the two newest copies.

    save() writes the older copy anew through write_file() (old or new content after any power cut),
    so a complete copy always exists. load() takes the newest copy whose CRC checks out and falls back
    to the other one."""

    def __init__(self, base, fs=None, known=None):
        """known: what state() returned from an earlier Store of the same base (a board that unloads
        this module between saves keeps only that small list)."""
        self.base = base
        self.fs = fs if fs is not None else OsFs()
        self.seq = 0  # sequence number of the newest valid record (0: none)
        self.slot_seq = [-1, -1]  # sequence held by base.a / base.b, -1 = none or invalid
        self.saves = 0
        self.save_errors = 0
        self.bad_copies = 0  # copies found torn or corrupt by load()
        self.loaded_from = None  # ".a", ".b" or None
        self.loaded = False
        if known is not None:
            self.loaded, self.seq, self.slot_seq[0], self.slot_seq[1] = known

    def state(self):
        """[loaded, seq, seq of base.a, seq of base.b]: all a later Store(base, known=...) needs."""
        return [self.loaded, self.seq, self.slot_seq[0], self.slot_seq[1]]

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
            return f.read(min(n, _HEADER_BYTES + _MAX_PAYLOAD_BYTES + _CRC_BYTES + 1))
        except OSError:
            return None
        finally:
            f.close()

    def load(self):
        """Payload of the newest valid copy, or None when there is none. Every copy is checked, then
        the newest read again: one copy in memory at a time (a board's heap is tight at boot)."""
        self.loaded = True
        self.slot_seq = [-1, -1]
        best = -1
        self.seq = 0
        for k in range(2):
            recover(self.base + SLOTS[k], self.fs)  # a write cut short by a power failure
            data = rec = None  # (the copy read before is let go first)
            data = self._read(self.base + SLOTS[k])
            rec = decode(data)
            if rec is None:
                if data is not None:
                    self.bad_copies += 1
                continue
            self.slot_seq[k] = rec[0]
            if best < 0 or rec[0] > self.seq:
                best = k
                self.seq = rec[0]
        data = rec = None
        self.loaded_from = SLOTS[best] if best >= 0 else None
        if best < 0:
            return None
        rec = decode(self._read(self.base + SLOTS[best]))
        return rec[1] if rec is not None else None

    def _older_slot(self):
        return 0 if self.slot_seq[0] <= self.slot_seq[1] else 1

    def save(self, payload, length=None):
        """Write a new copy over the older one: payload is bytes, a list of bytes written one after
        the other, or an iterator of bytes pieces of `length` bytes in all, made one at a time as they
        are written (a board's heap may have no free block the size of the whole). True on success;
        False (counted) on an OSError or a payload that is not `length` long."""
        if not self.loaded:
            self.load()  # learn the sequence numbers on flash first: never write an older number
        if length is None:
            payload = payload if isinstance(payload, list) else [payload]
            length = 0
            for p in payload:
                length += len(p)
        seq = self.seq + 1
        k = self._older_slot()
        done = [0]  # bytes of the payload written
        try:
            write_file(self.base + SLOTS[k], _record(seq, length, payload, done), self.fs)
            if done[0] != length:
                raise OSError(22)  # (EINVAL) the record on flash fails its CRC check: never loaded
        except OSError:
            self.save_errors += 1
            self.slot_seq[k] = -1  # (that copy may be gone: the other one holds the newest record)
            return False
        self.slot_seq[k] = seq
        self.seq = seq
        self.saves += 1
        return True
