# The push loop and the resync of the framers that learn a frame's length from its header (mbus.py, glo.py):
# a module of its own, so that a Norwegian (HDLC) board never loads it.
from hanport.buffers import copy


def take_frame(f, data, pos, end, first, head):
    """The push loop of the framers that learn a frame's length from its header (mbus.py, glo.py): bytes
    before a frame's first byte `first` are skipped (counted in f.bytes_skipped); then what the frame at
    f.base still lacks (f.need bytes once its header told them, else head) goes to f.buf[f.end:] and
    f._advance() checks it. Returns the index after the bytes taken: where a frame became whole, or end.
    The frame handed out before (f.ready) is let go first."""
    if end < 0:
        end = len(data)
    if f.ready:
        f.ready = False
        f.base = 0
        f.end = 0
    buf = f.buf
    while pos < end:
        fill = f.end
        have = fill - f.base
        if have == 0 and data[pos] != first:
            f.bytes_skipped += 1
            pos += 1
            continue
        want = (f.need or head) - have
        if want > end - pos:
            want = end - pos
        copy(buf, fill, data, pos, want)
        pos += want
        f.end = fill + want
        if f._advance():
            return pos
    return pos


def drop_frame(f, code, first):
    """Drop the frame at f.base (counted under result code `code`); rescan the bytes buffered after its
    first byte for the next `first`, moved down to f.base."""
    f.counts[code] += 1
    f.last_error = code
    f.resyncs += 1
    buf = f.buf
    base = f.base
    i = base + 1
    end = f.end
    while i < end and buf[i] != first:
        i += 1
    f.bytes_skipped += i - base
    n = end - i
    copy(buf, base, buf, i, n)
    f.end = base + n
    f.need = 0
