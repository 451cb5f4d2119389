# JSON envelopes around a reading's canonical JSON text: the MQTT state message and /data.json.
# Text splicing only (the canonical object is rendered once by render.reading_json).
import json


def utc_iso(tm):
    """ISO 8601 UTC text of a time.gmtime()-style tuple (year, month, day, hour, minute, second, ...)."""
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (tm[0], tm[1], tm[2], tm[3], tm[4], tm[5])


def state_json(reading_text, seq, received_utc=None):
    """MQTT state message: {"seq":N[,"received":"...Z"],<canonical fields>}. seq counts readings
    since boot; received is the reader's own clock, present only once NTP has set it."""
    head = '{"seq":%d,' % seq
    if received_utc:
        head += '"received":%s,' % json.dumps(received_utc)
    return head + reading_text[1:]


def data_json(state_text, age_ms):
    """/data.json: the latest state message plus "age_ms" (milliseconds since it was decoded);
    before the first reading: {"seq":0,"age_ms":null}."""
    if state_text is None:
        return '{"seq":0,"age_ms":null}'
    return '{"age_ms":%d,' % age_ms + state_text[1:]
