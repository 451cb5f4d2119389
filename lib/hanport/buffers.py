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

