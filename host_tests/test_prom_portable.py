# Prometheus text exposition for /metrics, on CPython and MicroPython: families, labels, exact values.
from hanport import HanReader, prom, promtext
from hanport.latest import Latest

# Kamstrup 3-phase list 2 (roarfred/AmsToMqttBridge, host_tests/vectors)
KAMSTRUP_L2 = (
    "7ea0e22b2113239ae6e7000f000000000c07e2030407143b32ff80000002190a0e4b616d73747275705f563030303109060101"
    "000005ff0a103537303635363732373433383937303209060101600101ff0a1236383431313231424e32343331303130343009"
    "060101010700ff060000112809060101020700ff060000000009060101030700ff060000008409060101040700ff0600000000"
    "090601011f0700ff060000056609060101330700ff060000030c09060101470700ff060000055a09060101200700ff1200e009"
    "060101340700ff1200df09060101480700ff1200dfa1d87e"
)


def _latest():
    r = HanReader()
    lt = Latest()
    for rd in r.feed(bytes.fromhex(KAMSTRUP_L2)):
        lt.update(rd, 0)
    return r, lt


def _samples(text):
    out = {}
    for line in text.split("\n"):
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = value
    return out


def test_meter_values_exact_and_labelled():
    _, lt = _latest()
    out = []
    prom.meter_metrics(out, lt)
    s = _samples(promtext.text(out))
    assert s["han_active_power_import_watts"] == "4392"
    assert s['han_current_amperes{phase="l1"}'] == "13.82"
    assert s['han_current_amperes{phase="l2"}'] == "7.80"  # resolution kept: exact decimal text
    assert s['han_voltage_volts{phase="l3"}'] == "223"
    assert 'han_active_energy_import_kwh_total' not in s  # list 2 carries no counters: absent, not 0
    assert s['han_messages_total{list="2"}'] == "1"
    info = [k for k in s if k.startswith("han_meter_info{")][0]
    assert 'manufacturer="Kamstrup"' in info and 'meter_id="5706567274389702"' in info


def test_every_family_has_its_type_once():
    r, lt = _latest()
    out = []
    prom.meter_metrics(out, lt)
    prom.decoder_metrics(out, r.counters(), "fcs_error")
    promtext.plain_metrics(out, [("han_up", "gauge", "1"),
                                 ("han_http_requests_total", "counter", [('code="200"', "3")])])
    text = promtext.text(out)
    assert text.endswith("\n")
    types = [ln.split(" ")[2] for ln in text.split("\n") if ln.startswith("# TYPE ")]
    assert len(set(types)) == len(types)
    assert not [ln for ln in text.split("\n") if ln.startswith("#") and not ln.startswith(("# TYPE ", "# HELP "))]
    helps = [ln.split(" ")[2] for ln in text.split("\n") if ln.startswith("# HELP ")]
    assert helps == types  # every family has its HELP line (promtool's lint), just before its TYPE
    s = _samples(text)
    assert s['han_decoder_events_total{event="frames_ok"}'] == "1"
    assert s['han_decoder_last_error_info{error="fcs_error"}'] == "1"
    assert s['han_http_requests_total{code="200"}'] == "3"
    for name in s:
        base = name.split("{")[0]
        assert base in types


def test_label_escaping():
    assert promtext.escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
