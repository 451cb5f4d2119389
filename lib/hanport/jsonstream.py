# JSON text made while it is sent (the device's /status and /config): an object from (key, value)
# pairs, a few small pieces per pair, so no answer needs one large block of heap.
import json


class Raw:
    """A value json_stream sends as it is: pieces (str or bytes-like) of JSON text made elsewhere."""

    def __init__(self, pieces):
        self.pieces = pieces


def json_stream(pairs, opening="{", closing="}"):
    """An iterable of (key, value) as JSON object text, made as it is sent: a few pieces per pair, none
    much longer than its value's own text (no large block joined from smaller ones); a dict value is
    streamed the same way. opening, closing: "{" and "}" for a whole object; "{" and "" for its first
    members, "," and "}" for the rest (an object sent in parts)."""
    sep = opening
    for k, v in pairs:
        yield sep + json.dumps(k) + ":"
        if isinstance(v, Raw):
            yield from v.pieces
        elif isinstance(v, dict):  # a section: member by member (no block of its whole text)
            yield from json_stream(v.items())
        else:
            yield json.dumps(v)
        sep = ","
    yield closing if sep == "," or opening != "{" else "{" + closing
