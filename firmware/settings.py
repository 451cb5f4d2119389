# Settings over HTTP, loaded only when asked for: the form at /setup, GET/POST /config (the admin token
# guards every change), POST /restart. Form values are parsed by the schema in config.py (loaded for a
# POST only: the pages and GET /config do without its 7 KB).
import json

from auth import bearer, same
from defaults import MIN_TOKEN_LEN
from web import HTML, TEXT


def route(app, req):
    p = req.path
    if p == "/login":
        return login(app, req)
    if p == "/setup":
        return 200, HTML, setup_page(app), ""
    if p == "/config":
        return post_config(app, req)  # (GET /config: status.py)
    ok, why = authorised(app, req, None)  # /restart
    if not ok:
        return 403, TEXT, why + "\n", ""
    from apply import restart_soon

    restart_soon(app, 1000)
    return 200, TEXT, "restarting\n", ""


def unquote_plus(s):
    """application/x-www-form-urlencoded value decoding (+ and %XX, UTF-8); None when malformed."""
    s = s.replace("+", " ")
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "%":
            h = s[i + 1 : i + 3]
            if len(h) != 2:
                return None
            try:
                out.append(int(h, 16))
            except ValueError:
                return None
            i += 3
        else:
            out.extend(ch.encode())
            i += 1
    try:
        return bytes(out).decode()
    except UnicodeError:
        return None


def parse_form(body):
    """dict of a urlencoded body; None when malformed."""
    out = {}
    try:
        text = body.decode()
    except UnicodeError:
        return None
    for pair in text.split("&"):
        if not pair:
            continue
        k, _, v = pair.partition("=")
        k = unquote_plus(k)
        v = unquote_plus(v)
        if k is None or v is None:
            return None
        out[k] = v
    return out


def authorised(app, req, changes):
    """(ok, reason). With a token configured it must be sent (Authorization: Bearer, or the form's
    `token` field). Without one, only the first-boot setup may change settings, and it must set one."""
    token = app.cfg["http"]["token"]
    if token:
        sent = bearer(req)
        if not sent and changes is not None and "token" in changes:
            sent = changes["token"]
        if sent and same(sent, token):
            return True, ""
        return False, "a valid token is required (Authorization: Bearer <http.token>)"
    if app.net.setup_mode and changes is not None and changes.get("http.token"):
        return True, ""
    if app.net.setup_mode:
        return False, "first setup: choose an admin token (http.token) along with the settings"
    return False, "settings cannot be changed: no http.token is configured"


def post_config(app, req):
    """A POST /config parsed and its token checked: ("change", changes, from_form) for web.py to hand
    to config.change (this module unloaded first: never both in the heap), or the answer."""
    ctype = req.headers.get("content-type", "").split(";")[0].strip()
    changes = {}
    if ctype == "application/x-www-form-urlencoded":
        form = parse_form(req.body)
        if form is None:
            return 400, TEXT, "malformed form\n", ""
        for k in form:
            if k != "token":
                changes[k] = form[k]  # text: config.change parses it by the schema
        doc = form
    elif ctype == "application/json":
        try:
            doc = json.loads(req.body)
        except ValueError:
            return 400, TEXT, "malformed JSON\n", ""
        if not isinstance(doc, dict):
            return 400, TEXT, "expected a JSON object of dotted keys\n", ""
        for k in doc:
            if k != "token":
                changes[k] = doc[k]
    else:
        return 415, TEXT, "send application/x-www-form-urlencoded or application/json\n", ""
    auth_view = dict(changes)
    if "token" in doc:
        auth_view["token"] = doc["token"]
    ok, why = authorised(app, req, auth_view)
    if not ok:
        return 403, TEXT, why + "\n", ""
    return "change", changes, ctype != "application/json"


def login(app, req):
    """The read token's login for the web page: a form; a right token sets the cookie (auth.COOKIE) the
    pages then send, and goes to the readings."""
    from auth import COOKIE, read_token_ok

    if req.method == "POST":
        sent = (parse_form(req.body) or {}).get("token", "")
        if read_token_ok(app.cfg["http"], sent):
            return 303, TEXT, "logged in\n", ("Location: /\r\nSet-Cookie: %s=%s; Path=/; HttpOnly; "
                                              "SameSite=Strict\r\n" % (COOKIE, sent))
        status = 401
    else:
        status = 200
    return status, HTML, [_HEAD, "Log in</title></head><body><h1>HAN reader</h1>",
                          "<p>Wrong token.</p>" if status == 401 else "",
                          '<form method="post" action="/login">', _field("Read token", "token", "", "password"),
                          '<p><button type="submit">Log in</button></p></form></body></html>'], ""


_HEAD = ('<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,'
         'initial-scale=1"><link rel="icon" href="data:,"><title>')  # (no icon: no /favicon.ico request)


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _field(label, key, value, kind="text"):
    return '<p><label>%s<br><input name="%s" type="%s" value="%s"></label></p>' % (
        esc(label), key, kind, esc(value))


def _box(label, key, on):
    # an unchecked box is not sent: its hidden "false" is, and a checked box's "true" after it wins
    # (parse_form keeps a repeated name's last value)
    return ('<p><input type=hidden name=%s value=false><label><input type=checkbox name=%s value=true%s> %s'
            '</label></p>' % (key, key, " checked" * on, label))


def setup_page(app):
    """The form in small pieces, each made as it is sent."""
    c = app.cfg
    m = c["mqtt"]
    first = app.net.setup_mode
    yield _HEAD
    yield ('Settings</title><style>body{font-family:sans-serif;margin:1em;max-width:40em}'
           'input,select{width:16em}[type=checkbox]{width:auto}</style></head><body><a href="/">Dashboard</a>'
           '<h1>Settings</h1>')
    if first:
        yield ("<p>First setup: enter your WiFi and MQTT broker, and choose an admin token "
               "(at least %d characters) that later changes will ask for.</p>" % MIN_TOKEN_LEN)
    yield '<form method="post" action="/config">'
    yield _field("WiFi network (SSID)", "wifi.ssid", c["wifi"]["ssid"])
    yield _field("WiFi password (empty: unchanged)", "wifi.password", "", "password")
    yield _field("MQTT broker host (empty: MQTT off)", "mqtt.host", m["host"])
    yield _field("MQTT port", "mqtt.port", m["port"], "number")
    yield _field("MQTT user", "mqtt.user", m["user"])
    yield _field("MQTT password (empty: unchanged)", "mqtt.password", "", "password")
    yield _field("MQTT base topic", "mqtt.base_topic", m["base_topic"])
    yield _box("MQTT over TLS", "mqtt.tls", m["tls"])
    yield _box("Home Assistant discovery", "mqtt.discovery", m["discovery"])
    p = c["uart"]["parity"]
    yield ('<p><label>Meter parity<br><select name=uart.parity><option value=auto>auto<option value=E>E (8E1: Aidon, '
           'Kaifa)<option value=N>N (8N1: Kamstrup)</select></label></p>').replace("=%s>" % p, "=%s selected>" % p)
    a = c["accounting"]
    yield _field("Capacity tariff steps, kW (2, 5, 10)", "accounting.capacity_steps_kw",
                 str(a["capacity_steps_kw"])[1:-1])
    yield _field("Capacity: mean of the top days (1..10)", "accounting.top_days", a["top_days"], "number")
    yield _field("Read token: every page and JSON answer needs it (%d+ characters; empty: unchanged)" % MIN_TOKEN_LEN,
                 "http.read_token", "", "password")
    if first:
        yield _field("New admin token", "http.token", "", "password")
    else:
        yield _field("Admin token (required)", "token", "", "password")
    yield '<p><button type="submit">Save and restart</button></p></form>'
    if not first:  # (the upload itself is in the dashboard: a page in flash, no heap for it here)
        yield '<p><a href="/#update">Update the firmware</a> (a bundle made by tools/ota.py)</p>'
    yield '<a href="/">Dashboard</a></body></html>'
