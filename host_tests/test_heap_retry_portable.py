# Answers made again when the heap runs short while a part is made (hanport.jsonstream for /status,
# promtext.sent_families for /metrics): the same text as without the shortage, a None piece per wait.
import json

from hanport import promtext
from hanport.jsonstream import Raw, json_stream


class Shortage:
    """Raises MemoryError at the given calls of hit() (counted from 1), as a short heap would."""

    def __init__(self, *at):
        self.at = at
        self.calls = 0

    def hit(self):
        self.calls += 1
        if self.calls in self.at:
            raise MemoryError("memory allocation failed")


def _pairs(short):
    yield "a", 1
    short.hit()
    yield "b", {"x": 2, "y": [3, 4]}
    short.hit()
    yield "c", Raw(("[", "5", "]"))
    short.hit()
    yield "d", "text"


def _joined(pieces):
    waits = 0
    text = ""
    for p in pieces:
        if p is None:
            waits += 1
        else:
            text += p
    return text, waits


def test_json_stream_without_shortage():
    text, waits = _joined(json_stream(_pairs, "{", "}", Shortage()))
    assert waits == 0
    assert json.loads(text) == {"a": 1, "b": {"x": 2, "y": [3, 4]}, "c": [5], "d": "text"}


def test_json_stream_made_again_after_a_shortage():
    # hits: before "b", "c", "d"; after a shortage the pairs are made again (and "a".. skipped), so
    # (1, 4) is a shortage before "b", then one before "d" on the second making
    for at in ((1,), (3,), (1, 2), (1, 4)):
        text, waits = _joined(json_stream(_pairs, "{", "}", Shortage(*at)))
        assert waits == len(at), at
        assert json.loads(text) == {"a": 1, "b": {"x": 2, "y": [3, 4]}, "c": [5], "d": "text"}, (at, text)


def test_json_stream_gives_up_after_its_waits():
    class Always:
        def hit(self):
            raise MemoryError

    pieces = json_stream(_pairs, "{", "}", Always())
    got = []
    try:
        for p in pieces:
            got.append(p)
        raise AssertionError("no MemoryError")
    except MemoryError:
        pass
    assert got.count(None) >= 1 and got[0] == '{"a":1'


def test_json_stream_object_in_parts():
    head, _ = _joined(json_stream(_pairs, "{", "", Shortage(2)))
    tail, _ = _joined(json_stream((("e", None),), ",", "}"))
    assert json.loads(head + tail)["e"] is None


def _families(out, short):
    promtext.family(out, "m_one", "gauge", [("", "1")])
    yield
    short.hit()
    promtext.family(out, "m_two", "counter", [('k="a"', "2"), ('k="b"', "3")])
    yield
    short.hit()
    promtext.family(out, "m_three", "gauge", [("", "4")])
    yield


def test_sent_families_made_again_after_a_shortage():
    plain, waits = _joined(promtext.sent_families([], _families, Shortage()))
    assert waits == 0
    assert "".join(line + "\n" for line in plain.split("\n") if line and not line.startswith("# HELP")) == (
        '# TYPE m_one gauge\nm_one 1\n# TYPE m_two counter\nm_two{k="a"} 2\nm_two{k="b"} 3\n'
        '# TYPE m_three gauge\nm_three 4\n')
    for at in ((1,), (2,), (1, 3)):
        text, waits = _joined(promtext.sent_families([], _families, Shortage(*at)))
        assert (text, waits) == (plain, len(at)), at
