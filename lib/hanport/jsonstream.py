# JSON text made while it is sent (the device's /status and /config): an object from (key, value)
# pairs, a few small pieces per pair, so no answer needs one large block of heap.
import json

from hanport.buffers import const

_WAITS = const(20)  # a pair that cannot be made for want of heap is tried this many times (a None piece before each)


class Raw:
    """A value json_stream sends as it is: pieces (str or bytes-like) of JSON text made elsewhere."""

    def __init__(self, pieces):
        self.pieces = pieces


def json_stream(pairs, opening="{", closing="}", arg=None):
    """(key, value) pairs as JSON object text, made as it is sent: a few pieces per pair, none much
    longer than its value's own text (no large block joined from smaller ones); a dict value member by
    member. opening, closing: "{" and "}" for a whole object; "{" and "" for its first members, ","
    and "}" for the rest (an object sent in parts).
    pairs: an iterable; or a function, pairs(arg) giving one, made again when the heap runs short
    while a pair is being made (nothing of it sent yet): a None piece (the sender waits a moment and
    collects), then the pairs already sent are skipped by their key (unique, in the same order)."""
    sep = opening
    sent = None  # the key of the last pair sent
    waits = 0
    while True:
        skip = sent is not None
        streaming = False  # a Raw value is being sent: a failure now cannot be made good
        try:
            for k, v in pairs(arg) if callable(pairs) else pairs:
                if skip:
                    skip = k != sent
                    continue
                head = sep + json.dumps(k) + ":"
                if isinstance(v, Raw):
                    streaming = True
                    yield head
                    yield from v.pieces
                    streaming = False
                elif isinstance(v, dict):  # member by member (no block of its whole text); once the first
                    streaming = True  # is sent, a failure cannot be made good
                    sep = "{"
                    for mk, mv in v.items():
                        yield head + sep + json.dumps(mk) + ":" + json.dumps(mv)
                        head = ""
                        sep = ","
                    yield "}" if sep == "," else head + "{}"
                    streaming = False
                else:
                    yield head + json.dumps(v)
                sep = ","
                sent = k
            break
        except MemoryError:
            if streaming or not callable(pairs) or waits >= _WAITS:
                raise
            waits += 1
        yield None
    yield closing if sep == "," or opening != "{" else "{" + closing
