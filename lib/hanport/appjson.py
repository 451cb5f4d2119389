# JSON envelopes around a reading's canonical JSON text (MQTT state message, /data.json) and the
# accounting object (MQTT <base>/accounting, /data.json "accounting", made by accounting_json): text splicing.
import json

from hanport import reading as R
from hanport.buffers import const
from hanport.latest import ticks_diff
from hanport.render import decimal

_WAITS = const(20)  # a latest value that cannot be made for want of heap is tried this many times (data_json)


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


def data_json(state, age_ms, accounting, latest, now):
    """/data.json in pieces (str or bytes-like), made while they are sent: the latest state message
    (state, bytes-like, or None before the first reading: "seq":0,"age_ms":null) with "age_ms"
    (milliseconds since it was decoded); "accounting" (accounting_json() text) when it runs; "latest",
    every field's latest value with its age, {"<field>":{"value":<number>,"age_ms":<ms>},...} (list 1
    alone carries only the power; latest: hanport.latest.Latest, now: its clock)."""
    if state is None:
        yield '{"seq":0,"age_ms":null'
    else:
        yield '{"age_ms":%d,' % age_ms
        yield state[1:-1]
    if accounting is not None:
        yield ',"accounting":'
        yield accounting
    sep = ',"latest":{'
    waits = 0
    for f in range(R.N_NUMERIC):
        if latest.present[f]:
            piece = None
            while piece is None:  # the heap short for a moment: a None piece (the sender waits), then again
                try:
                    piece = '%s"%s":{"value":%s,"age_ms":%d}' % (sep, R.NUMERIC_FIELDS[f], decimal(
                        latest.value[f], latest.exp[f]), ticks_diff(now, latest.at[f]))
                except MemoryError:
                    waits += 1
                    if waits > _WAITS:
                        raise
                    yield None
            yield piece
            sep = ","
    yield ',"latest":{}}' if sep != "," else "}}"


def accounting_json(summary):
    """The accounting object (one line) from Accounting.summary(): hanport.accounting_json.accounting_json
    (imported here when asked for; a board may unload it after)."""
    import hanport.accounting_json

    return hanport.accounting_json.accounting_json(summary)


def energy_json(latest):
    """MQTT <base>/energy (retained): the meter's latest energy counters (the hourly list's), so a
    Home Assistant that restarts shows them at once: {"active_import_kwh":...,...} of those seen."""
    parts = []
    for f in range(R.F_E_IMPORT, R.F_R_EXPORT + 1):
        if latest.present[f]:
            parts.append('"%s":%s' % (R.NUMERIC_FIELDS[f], decimal(latest.value[f], latest.exp[f])))
    return "{" + ",".join(parts) + "}"
