# Settings: one config.json on flash merged over the defaults below, every key validated against
# SCHEMA; unknown keys and bad values are reported (never fatal); secrets are masked in any output.
import json

from defaults import DEFAULTS, MIN_TOKEN_LEN  # noqa: F401  (re-exported: config.DEFAULTS)

from hanport.buffers import const

# dotted key -> (kind, a, b): "str" length a..b, "secret" like str but never shown, "int" range a..b,
# "bool", "choice" (a = allowed values), "topic" (MQTT topic without wildcards, length a..b), "dns"
# (a numeric IPv4 address, optionally with ":port", or empty), "nums" (a list of 1..a numbers, ascending,
# each above 0 and at most b; in a form: one text field, comma or space separated).
SCHEMA = {
    "name": ("str", 1, 32),
    "wifi.ssid": ("str", 0, 32),
    "wifi.password": ("secret", 0, 64),
    "wifi.hostname": ("str", 1, 32),
    "wifi.connect_timeout_s": ("int", 5, 120),
    "wifi.backoff_max_s": ("int", 5, 900),
    "wifi.dns": ("dns", 0, 21),  # DNS server "ip" or "ip:port"; empty: the one the network gives (DHCP)
    "ap.ssid": ("str", 1, 32),
    "ap.password": ("secret", 0, 63),
    "ap.fallback_after_s": ("int", 0, 3600),
    "uart.id": ("int", 0, 2),
    "uart.rx_pin": ("int", 0, 48),
    "uart.baud": ("int", 300, 115200),
    "uart.parity": ("choice", ("auto", "E", "N"), None),
    "uart.invert": ("bool", None, None),
    "uart.rxbuf": ("int", 0, 16384),  # 0: sized from uart.baud (startup.rx_buffer_bytes)
    "uart.autodetect_trial_s": ("int", 2, 600),
    "uart.raw_log": ("bool", None, None),  # keep the last raw frames for GET /raw (4.6 KB of heap)
    "mqtt.enabled": ("bool", None, None),
    "mqtt.host": ("str", 0, 64),
    "mqtt.port": ("int", 1, 65535),
    "mqtt.user": ("str", 0, 64),
    "mqtt.password": ("secret", 0, 128),
    "mqtt.tls": ("bool", None, None),
    "mqtt.client_id": ("str", 0, 23),
    "mqtt.node_id": ("str", 0, 32),
    "mqtt.base_topic": ("topic", 1, 64),
    "mqtt.keepalive_s": ("int", 10, 3600),
    "mqtt.timeout_s": ("int", 1, 10),
    "mqtt.backoff_max_s": ("int", 5, 900),
    "mqtt.discovery": ("bool", None, None),
    "mqtt.discovery_prefix": ("topic", 1, 64),
    "mqtt.expire_after_s": ("int", 0, 86400),
    "mqtt.accounting_interval_s": ("int", 1, 3600),  # <base>/accounting at most this often (hours: 1 s)
    "http.enabled": ("bool", None, None),
    "http.bind": ("str", 1, 45),
    "http.port": ("int", 1, 65535),
    "http.token": ("secret", 0, 64),
    "http.read_token": ("secret", 0, 64),  # set: every page and JSON answer needs it (or http.token)
    "http.max_clients": ("int", 1, 16),
    "http.timeout_s": ("int", 1, 60),
    "ntp.enabled": ("bool", None, None),
    "ntp.host": ("str", 1, 64),
    "ntp.interval_s": ("int", 60, 86400),
    "wdt.enabled": ("bool", None, None),
    "wdt.timeout_ms": ("int", 5000, 120000),
    "led.pin": ("int", -1, 48),
    "led.active_low": ("bool", None, None),
    "accounting.enabled": ("bool", None, None),
    "accounting.capacity_steps_kw": ("nums", 12, 1000),  # the grid company's capacity-tariff thresholds
    "accounting.top_days": ("int", 1, 10),  # the month's capacity value: mean of this many days' maxima
    "meter.protocol": ("choice", ("hdlc", "mbus", "p1"), None),  # HDLC (Norway), M-Bus long frames, DSMR P1
    "meter.key": ("secret", 0, 32),  # AES-128 keys from the grid company, for encrypted meters (hex)
    "meter.auth_key": ("secret", 0, 32),
}

MASK = "********"
CACHE_SUFFIX = ".ok"  # config.json.ok: the last validated config.json, merged (startup.py reads it at boot)
_MIN_AP_PASSWORD_LEN = const(8)  # WPA2 minimum; empty = the device's own (net_ap_ntp.ap_password)


def copy_tree(d):
    out = {}
    for k in d:
        v = d[k]
        out[k] = copy_tree(v) if isinstance(v, dict) else v
    return out


def get(cfg, key):
    """Value of a dotted key ("mqtt.host")."""
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _set(cfg, key, value):
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        if part not in node or not isinstance(node[part], dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def check(key, value):
    """Problem text for a value of a known key, None when valid. Never echoes a secret."""
    kind, a, b = SCHEMA[key]
    if kind == "bool":
        return None if type(value) is bool else "%s: expected true or false" % key
    if kind == "int":
        if type(value) is not int or value < a or value > b:
            return "%s: expected a whole number %d..%d" % (key, a, b)
        return None
    if kind == "choice":
        return None if value in a else "%s: expected one of %s" % (key, ", ".join(a))
    if kind == "nums":
        prev = 0
        for x in value if type(value) is list and 0 < len(value) <= a else ("",):  # ("",): not a list
            if type(x) not in (int, float) or not prev < x <= b:  # (also NaN)
                return "%s: expected 1..%d numbers above 0, at most %d, ascending" % (key, a, b)
            prev = x
        return None
    return _text(key, value, kind, a, b)


def _text(key, value, kind, a, b):
    # check() for a text value (a function of its own: on a board a function's bytecode is one block of heap
    # when the module loads, and before a settings change the heap is in pieces)
    if not isinstance(value, str):
        return "%s: expected text" % key
    if len(value) < a or len(value) > b:
        return "%s: expected %d..%d characters" % (key, a, b)
    if kind == "dns" and value and not _is_ipv4_port(value):
        return "%s: a numeric IPv4 address, optionally with :port (empty: the network's own)" % key
    if kind == "topic":
        if "#" in value or "+" in value or value.startswith("/") or value.endswith("/") or "//" in value:
            return "%s: an MQTT topic without wildcards (+ #) and without empty levels" % key
    if key == "http.token" and value and len(value) < MIN_TOKEN_LEN:
        return "http.token: at least %d characters (or empty: settings cannot be changed)" % MIN_TOKEN_LEN
    if key == "http.read_token" and value and len(value) < MIN_TOKEN_LEN:
        return "http.read_token: at least %d characters (or empty: readings open to the LAN)" % MIN_TOKEN_LEN
    if key in ("meter.key", "meter.auth_key") and value and (len(value) != 32 or not _is_hex(value)):
        return "%s: 32 hexadecimal digits (16 bytes) or empty" % key
    if key == "ap.password" and value and len(value) < _MIN_AP_PASSWORD_LEN:
        return "ap.password: at least %d characters (or empty: the device's own, see the log)" % _MIN_AP_PASSWORD_LEN
    for ch in value:
        if ord(ch) < 0x20:
            return "%s: control characters are not allowed" % key
    return None


def _is_hex(s):
    for ch in s:
        if ch not in "0123456789abcdefABCDEF":
            return False
    return True


def _walk(user, prefix, out):
    """Flatten a user dict into [(dotted key, value)]; sections stay sections."""
    for k in user:
        key = prefix + k
        v = user[k]
        if isinstance(v, dict) and key not in SCHEMA:
            _walk(v, key + ".", out)
        else:
            out.append((key, v))


def _visit(user, prefix, problems, cfg):
    # every setting of a user dict checked against the schema (problems appended), and set in cfg
    # when valid (cfg None: checked only); one key at a time, no list of them (a board's heap is short)
    for k in user:
        key = prefix + k
        value = user[k]
        if isinstance(value, dict) and key not in SCHEMA:
            _visit(value, key + ".", problems, cfg)
        elif key not in SCHEMA:
            if isinstance(DEFAULTS.get(key), dict):
                problems.append("%s: expected an object of settings (ignored)" % key)
            else:
                problems.append("unknown key %s (ignored)" % key)
        else:
            p = check(key, value)
            if p:
                problems.append(p + " (default kept)")
            elif cfg is not None:
                _set(cfg, key, value)


def merge(user):
    """(config, problems): user settings over the defaults. Unknown keys and invalid values are
    reported and ignored (the default stays)."""
    cfg = copy_tree(DEFAULTS)
    problems = []
    if not isinstance(user, dict):
        return cfg, ["config.json: expected a JSON object at the top level"]
    _visit(user, "", problems, cfg)
    return cfg, problems


def _is_ipv4_port(text):
    host, _, port = text.partition(":")
    parts = host.split(".")
    if len(parts) != 4 or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return False
    return True


def parse_value(key, text):
    """A form field (always text) as the schema's type; returns (value, problem)."""
    kind = SCHEMA[key][0]
    text = text.strip() if kind != "secret" else text
    if kind == "bool":
        t = text.lower()
        if t in ("1", "true", "on", "yes"):
            return True, None
        if t in ("0", "false", "off", "no", ""):
            return False, None
        return None, "%s: expected true or false" % key
    if kind == "int":
        digits = text[1:] if text[:1] == "-" else text
        if not digits or not digits.isdigit():
            return None, "%s: expected a whole number" % key
        return int(text), None
    if kind == "nums":
        try:  # "2, 5 7.5" -> [2, 5, 7.5] (then checked as from JSON)
            return json.loads("[%s]" % ",".join(text.replace(",", " ").split())), None
        except ValueError:
            return None, "%s: expected numbers: 2, 5, 10 (decimals: 2.5)" % key
    return text, None


def change(path, changes, from_form):
    """Apply changes {dotted key: value} (from_form: values are the form's text, parsed by the schema)
    to the settings at path: (problems, the new config.json text or None when there are problems). The
    caller writes the text with persist.write_file (a board has this module unloaded by then); the
    validation cache is then stale, so the next boot validates it in full and writes it anew."""
    problems = []
    if from_form:
        parsed = {}
        for k in changes:
            if k not in SCHEMA:
                problems.append("unknown key %s" % k)
                continue
            v, p = parse_value(k, changes[k])
            if p:
                problems.append(p)
            else:
                parsed[k] = v
        changes = parsed
    if not problems:
        user, problems = apply_changes(_user(path), changes)
    return problems, None if problems else json.dumps(user)


def _user(path):
    # the settings file's own dict ({} when missing or not a JSON object): the merge over the defaults
    # that load() makes is left to apply_changes, so that a change makes it once (a board's heap is short)
    try:
        with open(path) as f:
            user = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return user if isinstance(user, dict) else {}


def apply_changes(user, changes):
    """(new user dict, problems) for changes {dotted key: value}. An empty secret means "keep the
    current one" (forms never echo secrets). Nothing is applied when anything is wrong."""
    problems = []
    new = copy_tree(user)
    for key in changes:
        if key not in SCHEMA:
            problems.append("unknown key %s" % key)
            continue
        value = changes[key]
        if SCHEMA[key][0] == "secret" and value == "":
            continue
        p = check(key, value)
        if p:
            problems.append(p)
            continue
        _set(new, key, value)
    if problems:
        return user, problems
    more = []
    _visit(new, "", more, None)  # (what merge() would report, without making the whole config)
    return (user, more) if more else (new, [])
