# Test helpers that run on CPython and MicroPython alike: load the real vectors, build HDLC frames,
# a deterministic PRNG, and decoding shortcuts. No pytest, only json/binascii.
import binascii
import json

from hanport import HanReader, dlms, meters
from hanport.crc import crc16_x25
from hanport.reading import Reading

try:
    HERE = __file__.rsplit("/", 1)[0]
except NameError:  # pragma: no cover
    HERE = "host_tests"
VECTORS = HERE + "/vectors"
VECTOR_FILES = (
    "arnorief__kamstrup_ams_logger.json", "jalla2000__kamstrup-mqtt.json", "karl-gustav__ams-han.json",
    "per-erik-nordbo__ams-han-port.json", "roarfred__AmsToMqttBridge.json",
    "robinsmidsrod__ams-han-decoder.json", "scs__smartmeter-datacollector.json",
    "seesharper__HANReader.json", "thorelvin__AMS-HAN-Gateway.json", "toreamun__amshan.json",
)


def load_records():
    out = []
    for name in VECTOR_FILES:
        with open(VECTORS + "/" + name) as f:
            for r in json.load(f):
                r["file"] = name
                out.append(r)
    return out


# Issue 13: meters outside Norway (Austrian AM550 and E450 lists), kept apart from the records above
# (none of them is a plain single frame of a Norwegian list)
EU_VECTOR_FILES = ("rddl-network__EnergyAgent.json", "Noschvie__shrdzm.json", "machinekoder__wn_smart_reader.json",
                   "esphome-libs__dlms_parser.json", "xeniter__eww_ewerk_wels_smartmeter_readout.json")


def eu_record(rid):
    for name in EU_VECTOR_FILES:
        with open(VECTORS + "/" + name) as f:
            for r in json.load(f):
                if r["id"] == rid:
                    return r
    raise KeyError(rid)


def eu_frame(rec):
    """The HDLC frame of an encrypted EU record: hex_completed, else the source bytes up to the end of the
    first frame (the EnergyAgent payloads carry their hardware's digest and signature after it)."""
    b = unhex(rec.get("hex_completed") or rec["hex"])
    n = ((b[1] & 7) << 8) | b[2]
    return b[: n + 2]


def load_expected():
    with open(VECTORS + "/expected_canonical.json") as f:
        return json.load(f)


def unhex(text):
    return binascii.unhexlify(text)


def is_single_good_frame(rec):
    """A plain HDLC record holding exactly one frame whose checks all passed when collected."""
    n = rec["notes"]
    return (rec["kind"] == "hdlc" and "HCS ok; FCS ok" in n and "concatenat" not in n and "STREAM" not in n
            and "BAD" not in n and "segmentation" not in n)


def is_single_bad_frame(rec):
    n = rec["notes"]
    return rec["kind"] == "hdlc" and ("FCS BAD" in n or "HCS BAD" in n or "truncated" in n) and "STREAM" not in n


def norwegian_frames():
    """The valid single frames of Norwegian-format meters (Aidon, Kaifa, Kamstrup lists)."""
    out = []
    for r in load_records():
        if is_single_good_frame(r) and r["file"] != "scs__smartmeter-datacollector.json":
            out.append(unhex(r["hex"]))
    return out


def build_frame(info, segmented=False, dst=b"\x41", src=b"\x08\x83", control=0x13):
    """An HDLC type-3 frame (flags included) around info with correct HCS and FCS."""
    length = 2 + len(dst) + len(src) + 1 + 2 + len(info) + 2
    body = bytearray()
    body.append(0xA0 | (0x08 if segmented else 0) | (length >> 8))
    body.append(length & 0xFF)
    body.extend(dst)
    body.extend(src)
    body.append(control)
    hcs = crc16_x25(body, 0, len(body))
    body.append(hcs & 0xFF)
    body.append(hcs >> 8)
    body.extend(info)
    fcs = crc16_x25(body, 0, len(body))
    body.append(fcs & 0xFF)
    body.append(fcs >> 8)
    return b"\x7e" + bytes(body) + b"\x7e"


def frame_info(frame):
    """The information field (LLC + APDU) of a single valid frame."""
    p = 3
    for _ in range(2):
        while not frame[p] & 1:
            p += 1
        p += 1
    p += 3  # control + HCS
    return frame[p:-3]


class Lcg:
    """Deterministic pseudo-random numbers, identical on every platform."""

    def __init__(self, seed):
        self.state = seed & 0x7FFFFFFF

    def next(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 8) % n


def decode_all(data, chunk=0, capacity=2048):
    """JSON text of every reading decoded from data fed in chunks of `chunk` bytes (0 = all at once)."""
    from hanport.render import reading_json

    r = HanReader(capacity)
    out = []
    step = chunk or len(data)
    pos = 0
    while pos < len(data):
        piece = data[pos : pos + step]
        for rd in r.feed(piece):
            out.append(reading_json(rd))
        pos += step
    return out, r


def decode_llc(data):
    """Reading of an LLC/APDU message (no HDLC envelope), or None."""
    rd = Reading()
    w = dlms.Walker(meters.FIELD_BY_OBIS)
    if w.decode_apdu(data, 0, len(data), rd):
        return None
    meters.map_reading(rd, w.layout == dlms.LAYOUT_POSITIONAL)
    return rd
