# JSON envelopes around a reading's canonical JSON text (MQTT state message, /data.json) and the
# accounting object (MQTT <base>/accounting, /data.json "accounting", made by accounting_json): text splicing.
import json

from hanport import reading as R
from hanport.render import decimal


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


def data_json(state_text, age_ms, accounting_text=None):
    """/data.json: the latest state message plus "age_ms" (milliseconds since it was decoded);
    before the first reading: {"seq":0,"age_ms":null}. accounting_text (accounting_json()) is added
    as "accounting" when given (the key is absent when the accounting does not run)."""
    if state_text is None:
        head = '{"seq":0,"age_ms":null}'
    else:
        head = '{"age_ms":%d,' % age_ms + state_text[1:]
    if accounting_text is None:
        return head
    return head[:-1] + ',"accounting":' + accounting_text + "}"


def accounting_json(summary):
    """The accounting object (one line) from Accounting.summary(): hanport.accounting_json.accounting_json
    (imported here when asked for; a board may unload it after)."""
    import hanport.accounting_json

    return hanport.accounting_json.accounting_json(summary)


def latest_json(out, latest, age_ms):
    """/data.json "latest" appended to out as small pieces: the latest value of every field seen
    (hanport.latest.Latest) with its age, {"<field>":{"value":<number>,"age_ms":<ms>},...};
    age_ms(t) gives the age of a Latest.at time."""
    sep = "{"
    for f in range(R.N_NUMERIC):
        if latest.present[f]:
            out.append('%s"%s":{"value":%s,"age_ms":%d}' % (
                sep, R.NUMERIC_FIELDS[f], decimal(latest.value[f], latest.exp[f]), age_ms(latest.at[f])))
            sep = ","
    out.append("{}" if sep == "{" else "}")


def meter_json(latest):
    """/data.json "meter": the meter's identity as last sent (null members until it is)."""
    return '{"manufacturer":%s,"meter_id":%s,"meter_type":%s,"list_version":%s}' % (
        _text(latest.manufacturer), _text(latest.meter_id), _text(latest.meter_type), _text(latest.list_version))


def _text(v):
    return "null" if v is None else json.dumps(v)


def energy_json(latest):
    """MQTT <base>/energy (retained): the meter's latest energy counters (the hourly list's), so a
    Home Assistant that restarts shows them at once: {"active_import_kwh":...,...} of those seen."""
    parts = []
    for f in range(R.F_E_IMPORT, R.F_R_EXPORT + 1):
        if latest.present[f]:
            parts.append('"%s":%s' % (R.NUMERIC_FIELDS[f], decimal(latest.value[f], latest.exp[f])))
    return "{" + ",".join(parts) + "}"
