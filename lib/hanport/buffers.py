# Byte copies between preallocated buffers, the one primitive every layer shares: on MicroPython a
# loop (a slice would allocate), on CPython a slice (faster). Same arguments, same result.
import sys

SLICE_COPY = sys.implementation.name != "micropython"

try:  # every layer's wire tags and table indices: const() folds them into the bytecode on MicroPython
    from micropython import const
except ImportError:  # CPython: a plain value
    def const(x):
        return x


def copy(dst, dst_pos, src, src_pos, n):
    """dst[dst_pos:dst_pos+n] = src[src_pos:src_pos+n]; safe for a move down within one buffer."""
    if SLICE_COPY:
        dst[dst_pos : dst_pos + n] = src[src_pos : src_pos + n]
    else:
        for k in range(n):
            dst[dst_pos + k] = src[src_pos + k]


def counter_dict(counts, names, extra):
    """{name: count} of a framer's result counters (index 0 reported as frames_ok), plus extra pairs."""
    d = {"frames_ok": counts[0]}
    for i in range(1, len(names)):
        d[names[i]] = counts[i]
    for k, v in extra:
        d[k] = v
    return d


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
