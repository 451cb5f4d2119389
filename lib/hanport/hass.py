# Home Assistant MQTT discovery: one retained config message per canonical field and per accounting
# sensor (Home Assistant MQTT discovery docs). Pure text building (no MQTT I/O), the same on CPython and MicroPython.
import json

from hanport import reading as R

# One row per canonical numeric field, in reading.NUMERIC_FIELDS order:
# (display name, device_class or None, state_class, unit_of_measurement)
# Energy sensors carry only the meter's own counters (list 3), never estimates (docs/han-notes.md §energy-sensors).
# Reactive energy has no device_class: older Home Assistant releases reject unknown classes.
SENSORS = (
    ("Power import", "power", "measurement", "W"),
    ("Power export", "power", "measurement", "W"),
    ("Reactive power import", "reactive_power", "measurement", "var"),
    ("Reactive power export", "reactive_power", "measurement", "var"),
    ("Current L1", "current", "measurement", "A"),
    ("Current L2", "current", "measurement", "A"),
    ("Current L3", "current", "measurement", "A"),
    ("Voltage L1", "voltage", "measurement", "V"),
    ("Voltage L2", "voltage", "measurement", "V"),
    ("Voltage L3", "voltage", "measurement", "V"),
    ("Energy import", "energy", "total_increasing", "kWh"),
    ("Energy export", "energy", "total_increasing", "kWh"),
    ("Reactive energy import", None, "total_increasing", "kvarh"),
    ("Reactive energy export", None, "total_increasing", "kvarh"),
)

# Accounting sensors, read from the <base>/accounting message (appjson.accounting_json keys):
# (key, display name, device_class or None, unit or None, icon or None). Derived values, not meter
# counters: state_class measurement and no energy device_class, so they never feed the energy
# dashboard (docs/han-notes.md §energy-sensors; the meter's own kWh counters do). The capacity value is a power (kW).
ACCOUNTING_SENSORS = (
    ("last_hour_import_kwh", "Last hour import", None, "kWh", "mdi:transmission-tower-import"),
    ("last_hour_export_kwh", "Last hour export", None, "kWh", "mdi:transmission-tower-export"),
    ("today_import_kwh", "Import today", None, "kWh", "mdi:transmission-tower-import"),
    ("today_export_kwh", "Export today", None, "kWh", "mdi:transmission-tower-export"),
    ("month_capacity_kw", "Capacity value this month", "power", "kW", None),
    ("capacity_step", "Capacity step", None, None, "mdi:stairs"),
    ("capacity_headroom_kwh", "Headroom this hour", None, "kWh", "mdi:gauge"),
    ("next_step_headroom_kwh", "Headroom to next step", None, "kWh", "mdi:gauge"),
)
ACCOUNTING_TOPIC = "accounting"  # <base>/accounting
ENERGY_TOPIC = "energy"  # <base>/energy: the latest energy counters, retained (firmware/mqtt.py)
# Meters whose hourly list (list 3) always has A+, A-, R+ and R- (NEK OBIS lists of Aidon, Kaifa, Kamstrup)
NORWEGIAN_HOURLY = ("Aidon", "Kaifa", "Kamstrup")
ENERGY_MASK = (1 << R.F_E_IMPORT) | (1 << R.F_E_EXPORT) | (1 << R.F_R_IMPORT) | (1 << R.F_R_EXPORT)

PAYLOAD_ONLINE = "online"
PAYLOAD_OFFLINE = "offline"


def config_topic(prefix, node_id, field):
    """Discovery topic of one sensor: <prefix>/sensor/<node_id>/<field>/config."""
    return "%s/sensor/%s/%s/config" % (prefix, node_id, R.NUMERIC_FIELDS[field])


def value_template(field):
    """Template picking one field from the state JSON. A field the message lacks (list 1 has only
    P+) renders empty, which Home Assistant ignores for numeric sensors: the state is kept."""
    return "{{ value_json.%s | default('') }}" % R.NUMERIC_FIELDS[field]


def device_block(node_id, name, sw_version, manufacturer=None, model=None, serial=None):
    """The shared `device` object: one HA device per reader, described by the meter it reads."""
    d = {"identifiers": [node_id], "name": name, "sw_version": sw_version}
    if manufacturer:
        d["manufacturer"] = manufacturer
    if model:
        d["model"] = model
    if serial:
        d["serial_number"] = serial
    return d


def config_payload(field, node_id, base_topic, device, expire_after_s):
    """Discovery config JSON of one canonical numeric field (index into reading.NUMERIC_FIELDS). The
    energy counters come once an hour: they are read from <base>/energy (ENERGY_TOPIC, retained: a
    Home Assistant that restarts has them at once) and do not expire between hourly lists."""
    name, device_class, state_class, unit = SENSORS[field]
    key = R.NUMERIC_FIELDS[field]
    energy = field >= R.F_E_IMPORT
    c = {
        "name": name,
        "unique_id": "%s_%s" % (node_id, key),
        "state_topic": base_topic + ("/" + ENERGY_TOPIC if energy else "/state"),
        "value_template": value_template(field),
        "state_class": state_class,
        "unit_of_measurement": unit,
        "availability_topic": base_topic + "/status",
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "device": device,
    }
    if not energy:
        c["expire_after"] = expire_after_s
    if device_class:
        c["device_class"] = device_class
    return json.dumps(c)


def announced_mask(mask, manufacturer, meter_id):
    """The fields to announce: those seen (mask), and the four energy counters as soon as a Norwegian
    meter has identified itself (their hourly list always carries them), not an hour later."""
    if meter_id and manufacturer in NORWEGIAN_HOURLY:
        mask |= ENERGY_MASK
    return mask


def fields_in_mask(mask):
    """Field indexes whose bit is set in a seen-fields bit mask (bit f = field f)."""
    return [f for f in range(R.N_NUMERIC) if mask & (1 << f)]


def reading_mask(rd):
    """Bit mask of the numeric fields a Reading carries."""
    m = 0
    fp = rd.field_present
    for f in range(R.N_NUMERIC):
        if fp[f]:
            m |= 1 << f
    return m


def accounting_config_topic(prefix, node_id, i):
    """Discovery topic of accounting sensor i: <prefix>/sensor/<node_id>/<key>/config."""
    return "%s/sensor/%s/%s/config" % (prefix, node_id, ACCOUNTING_SENSORS[i][0])


def accounting_config_payload(i, node_id, base_topic, device):
    """Discovery config JSON of accounting sensor i (index into ACCOUNTING_SENSORS). The state topic
    is retained and updated only when a value changes, so no expire_after: availability follows
    <base>/status. A null value renders "None", which Home Assistant shows as unknown."""
    key, name, device_class, unit, icon = ACCOUNTING_SENSORS[i]
    c = {
        "name": name,
        "unique_id": "%s_%s" % (node_id, key),
        "state_topic": "%s/%s" % (base_topic, ACCOUNTING_TOPIC),
        "value_template": "{{ value_json.%s }}" % key,
        "state_class": "measurement",
        "availability_topic": base_topic + "/status",
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "device": device,
    }
    if unit:
        c["unit_of_measurement"] = unit
    if device_class:
        c["device_class"] = device_class
    if icon:
        c["icon"] = icon
    return json.dumps(c)


def accounting_ready(mask):
    """True once the meter has sent its import energy counter (the hourly list the accounting is
    built on): only then do the accounting sensors get discovery configs."""
    return bool(mask & (1 << R.F_E_IMPORT))
