# firmware/config.py on CPython and MicroPython: defaults, merge, validation messages, secret masking,
# settings changes from the form. (The module has no device imports, so it runs on both.)
import json

# isort: off
import firmware_path  # noqa: F401  (firmware/ on the import path, before its modules)
import config
import config_boot
# isort: on


def test_defaults_are_valid_against_the_schema():
    cfg, problems = config.merge({})
    assert problems == []
    for key in config.SCHEMA:
        assert config.check(key, config.get(cfg, key)) is None, key


def test_every_default_has_a_schema_entry():
    pairs = []
    config._walk(config.DEFAULTS, "", pairs)
    assert sorted(k for k, _ in pairs) == sorted(config.SCHEMA)


def test_merge_overrides_and_reports_without_echoing_secrets():
    user = {"wifi": {"ssid": "home", "password": "s3cret-wifi"}, "mqtt": {"port": 70000, "host": "broker",
            "password": 12345, "colour": "red"}, "bogus": 1, "uart": {"parity": "X"}}
    cfg, problems = config.merge(user)
    assert cfg["wifi"]["ssid"] == "home" and cfg["mqtt"]["host"] == "broker"
    assert cfg["mqtt"]["port"] == 1883  # bad value: default kept
    assert cfg["uart"]["parity"] == "auto"
    text = "\n".join(problems)
    assert "mqtt.port" in text and "unknown key mqtt.colour" in text and "unknown key bogus" in text
    assert "uart.parity" in text and "mqtt.password" in text
    assert "12345" not in text and "s3cret" not in text


def test_types_are_strict():
    assert config.check("mqtt.port", True) is not None  # a bool is not a port
    assert config.check("mqtt.tls", 1) is not None
    assert config.check("mqtt.base_topic", "han/#") is not None
    assert config.check("mqtt.base_topic", "/han") is not None
    assert config.check("mqtt.base_topic", "home/han") is None
    assert config.check("http.token", "short") is not None
    assert config.check("http.token", "") is None
    assert config.check("wifi.ssid", "a\nb") is not None
    assert config.check("meter.key", "00112233445566778899aabbccddeeff") is None
    assert config.check("meter.key", "0011") is not None
    assert config.check("meter.key", "zz112233445566778899aabbccddeeff") is not None


def test_masked_hides_every_secret_and_keeps_empty_ones_empty():
    cfg, _ = config.merge({"wifi": {"password": "wifi-pass-1"}, "mqtt": {"password": "mqtt-pass-1"},
                           "http": {"token": "token-123456"}})
    m = config_boot.masked(cfg)
    text = json.dumps(m)
    for s in ("wifi-pass-1", "mqtt-pass-1", "token-123456"):
        assert s not in text
    assert m["wifi"]["password"] == config.MASK
    assert m["ap"]["password"] == ""
    assert cfg["wifi"]["password"] == "wifi-pass-1"  # the original is untouched
    assert sorted(config_boot.secrets(cfg)) == ["mqtt-pass-1", "token-123456", "wifi-pass-1"]


def test_form_values_are_parsed_by_schema_type():
    assert config.parse_value("mqtt.port", " 1884 ") == (1884, None)
    assert config.parse_value("mqtt.port", "18x")[1] is not None
    assert config.parse_value("mqtt.tls", "on") == (True, None)
    assert config.parse_value("mqtt.tls", "maybe")[1] is not None
    assert config.parse_value("wifi.password", " spaced ") == (" spaced ", None)


def test_apply_changes_all_or_nothing_and_empty_secret_keeps_old():
    user = {"wifi": {"ssid": "a", "password": "old-password"}}
    new, problems = config.apply_changes(user, {"wifi.ssid": "b", "wifi.password": "", "mqtt.port": 1884})
    assert problems == []
    assert new["wifi"] == {"ssid": "b", "password": "old-password"} and new["mqtt"]["port"] == 1884
    same, problems = config.apply_changes(user, {"wifi.ssid": "c", "mqtt.port": 0})
    assert problems and same is user
    _, problems = config.apply_changes(user, {"no.such": 1})
    assert problems == ["unknown key no.such"]


def test_load_missing_and_broken_files():
    cfg, user, problems, found = config_boot.load("/nonexistent/dir/config.json")
    assert not found and problems == [] and user == {} and cfg["mqtt"]["base_topic"] == "han"


def test_capacity_steps_as_a_json_list():
    key = "accounting.capacity_steps_kw"
    cfg, problems = config.merge({})
    assert cfg["accounting"]["capacity_steps_kw"] == [2, 5, 10, 15, 20, 25, 50, 75, 100]
    assert cfg["accounting"]["top_days"] == 3
    for good in ([2], [1, 3.5, 8], [0.5, 1000], list(range(1, 13))):
        assert config.check(key, good) is None, good
    for bad in ([], [5, 2], [2, 2], [0, 5], [-1], [2, 1000.5], [2, "5"], [True], "2, 5", 5, None,
                list(range(1, 14)), [float("nan")], [float("inf")]):
        p = config.check(key, bad)
        assert p is not None and p.startswith(key + ": expected"), (bad, p)
    cfg, problems = config.merge({"accounting": {"capacity_steps_kw": [1, 3.5, 8], "top_days": 2}})
    assert problems == [] and cfg["accounting"]["capacity_steps_kw"] == [1, 3.5, 8]
    assert cfg["accounting"]["top_days"] == 2
    cfg, problems = config.merge({"accounting": {"capacity_steps_kw": [8, 3.5], "top_days": 11}})
    assert cfg["accounting"]["capacity_steps_kw"] == [2, 5, 10, 15, 20, 25, 50, 75, 100]  # defaults kept
    assert cfg["accounting"]["top_days"] == 3
    assert len(problems) == 2 and key in problems[0] + problems[1]
    new, problems = config.apply_changes({}, {key: [2.5, 5], "accounting.top_days": 1})
    assert problems == [] and new["accounting"] == {"capacity_steps_kw": [2.5, 5], "top_days": 1}


def test_top_days_range():
    for good in (1, 3, 10):
        assert config.check("accounting.top_days", good) is None
    for bad in (0, 11, 2.0, "3", True):
        assert config.check("accounting.top_days", bad) == "accounting.top_days: expected a whole number 1..10"


def test_capacity_steps_from_the_form():
    key = "accounting.capacity_steps_kw"
    assert config.parse_value(key, "2, 5, 10") == ([2, 5, 10], None)
    assert config.parse_value(key, " 1,3.5  8 ") == ([1, 3.5, 8], None)
    assert config.parse_value(key, "2.5") == ([2.5], None)
    v, p = config.parse_value(key, "2, five")
    assert v is None and p.startswith(key + ": expected numbers")
    assert config.parse_value(key, "") == ([], None)  # then rejected by check: no thresholds
    assert config.parse_value("accounting.top_days", " 2 ") == (2, None)


def test_form_changes_of_the_capacity_tariff():
    path = "/nonexistent/dir/config.json"  # no file: the changes go over an empty user dict
    key = "accounting.capacity_steps_kw"
    problems, text = config.change(path, {key: "1, 3.5, 8", "accounting.top_days": "2", "mqtt.tls": "false",
                                          "uart.parity": "N"}, True)
    assert problems == [], problems
    saved = json.loads(text)
    assert saved["accounting"] == {"capacity_steps_kw": [1, 3.5, 8], "top_days": 2}
    assert saved["mqtt"]["tls"] is False and saved["uart"]["parity"] == "N"
    for bad in ("", "5, 2", "2, 2", "0, 2", "2, 1001", "2; 5", "1 2 3 4 5 6 7 8 9 10 11 12 13"):
        problems, text = config.change(path, {key: bad, "accounting.top_days": "2"}, True)
        assert text is None and len(problems) == 1 and problems[0].startswith(key + ": expected"), (bad, problems)
    for bad in ("0", "11", "2.5", "x"):
        problems, text = config.change(path, {"accounting.top_days": bad}, True)
        assert text is None and problems[0].startswith("accounting.top_days: expected"), (bad, problems)
