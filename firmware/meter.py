# The decoder of a meter that ciphers its lists (meter.key / meter.auth_key set): the keys checked at boot,
# the envelope layer (AES-GCM) loaded with the first ciphered message, after boot. Loaded only with a key.
import gc
import sys

import mem
from micropython import const

from hanport.reader import HanReader

# The parts a key needs (hanport-cipher; gcm_ghash.py only checks tags, so a build may leave it out), and the
# tables of the meters outside Norway that send ciphered lists: imported and let go once at boot (installed?
# and their names interned low in the heap, startup.warm_up), loaded for good with the first ciphered message
_PARTS = ("hanport.envelope", "hanport.gcm", "hanport.meters_eu")
# A heap below this (gc's total, a little under the heap size: 109 KB of a 112 KB one, 117 KB of 120 KB), with
# the app's modules as .mpy files (not frozen into the image), has no room for these parts (~6 KB with their
# objects) beside the device load. Measured on the 32-bit stand-in (tools/soak.py --meter wn): a ciphered
# Austrian meter runs with -X heapsize=120K, not 112K; with the app frozen in, at 112K (docs/deploy.md,
# "Meters outside Norway")
_HEAP_FOR_MPY_KB = const(116)


class KeyedReader(HanReader):
    """A HanReader whose envelope (hanport.envelope and hanport.gcm, ~6 KB of a board's heap with their
    objects) is made when the first ciphered or block-transfer message arrives: a boot's peak has no room
    left for it on a plain ESP32. The keys are dropped once the envelope holds them."""

    def __init__(self, capacity, key, auth_key, framer=None):
        super().__init__(capacity, None, None, framer)
        self._keys = (key, auth_key)

    def open_envelope(self, key=None, auth_key=None):
        keys = self._keys
        if keys is None:  # (made already, or a caller of its own)
            return super().open_envelope(key, auth_key)
        env = super().open_envelope(keys[0], keys[1])  # (an ImportError leaves the keys for the next try)
        self._keys = None
        return env


def build(m, capacity, framer, problems):
    """The reader for the meter settings m with a key: a KeyedReader, or a HanReader without keys when a
    key is not 32 hex digits (said in problems). ImportError when the cipher parts are not installed."""
    key = m["key"] or None
    auth_key = m["auth_key"] or None
    for name, k in (("meter.key", key), ("meter.auth_key", auth_key)):
        if k and not _hex_key(k):
            if problems is not None:
                problems.append("%s must be 32 hex digits (the key the grid company gives): the meter is read "
                                "without it" % name)
            return HanReader(capacity, framer=framer)
    mpy = getattr(sys.modules["hanport.reader"], "__file__", "").endswith(".mpy")  # (frozen: "hanport/reader.py")
    heap_kb = (gc.mem_free() + gc.mem_alloc()) // 1024
    if mpy and heap_kb < _HEAP_FOR_MPY_KB:  # the parts are not tried now: the boot would not end
        if problems is not None:
            problems.append("a ciphered meter with the app as .mpy files needs a heap of about 120 KB (this board: "
                            "%d KB): freeze the app into the image (docs/deploy.md)" % heap_kb)
        return KeyedReader(capacity, key, auth_key, framer)
    for name in _PARTS:
        try:
            __import__(name)
        except ImportError:
            if name != "hanport.meters_eu":  # (a part of hanport-core: only a build of one's own lacks it)
                raise
        finally:
            mem.unload(name)
            gc.collect()
    return KeyedReader(capacity, key, auth_key, framer)


def _hex_key(k):
    """True when k is an AES-128 key written as 32 hex digits."""
    import binascii

    try:
        return len(k) == 32 and len(binascii.unhexlify(k)) == 16
    except ValueError:
        return False
