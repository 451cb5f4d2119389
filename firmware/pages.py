# The human pages: "/" (latest values, refreshes itself) and "/setup" (WiFi/MQTT settings form).
# Plain HTML from small string pieces; values are escaped; secrets are never put in a page.
from hanport import reading as R
from hanport.render import decimal

_STYLE = ("<style>body{font-family:sans-serif;margin:1em;max-width:40em}td,th{padding:.2em .6em;"
          "text-align:left}td.v{text-align:right;font-family:monospace}input{width:16em}</style>")
_UNITS = ("W", "W", "var", "var", "A", "A", "A", "V", "V", "V", "kWh", "kWh", "kvarh", "kvarh")


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _head(title, refresh_s=0):
    r = '<meta http-equiv="refresh" content="%d">' % refresh_s if refresh_s else ""
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width,initial-scale=1">%s<title>%s</title>%s</head><body>' % (r, esc(title), _STYLE))


def index(app):
    lt = app.latest
    out = [_head(app.cfg["name"], 5), "<h1>%s</h1>" % esc(app.cfg["name"])]
    if lt.meter_id or lt.manufacturer:
        out.append("<p>%s %s, meter %s</p>" % (esc(lt.manufacturer or ""), esc(lt.meter_type or ""),
                                                esc(lt.meter_id or "")))
    age = app.reading_age_ms()
    if age is None:
        out.append("<p>No reading yet. Is the HAN port open and the parity right? See <a href=/status>"
                   "status</a>.</p>")
    else:
        out.append("<p>Last reading %d.%d s ago (#%d).</p><table>" % (age // 1000, (age % 1000) // 100, app.seq))
        for f in range(R.N_NUMERIC):
            if lt.present[f]:
                out.append('<tr><th>%s</th><td class=v>%s</td><td>%s</td></tr>' % (
                    R.NUMERIC_FIELDS[f], decimal(lt.value[f], lt.exp[f]), _UNITS[f]))
        out.append("</table>")
    out.append('<p><a href="/data.json">data.json</a> &middot; <a href="/status">status</a> &middot; '
               '<a href="/metrics">metrics</a> &middot; <a href="/setup">settings</a></p></body></html>')
    return "".join(out)


def _field(label, key, value, kind="text"):
    return '<p><label>%s<br><input name="%s" type="%s" value="%s"></label></p>' % (
        esc(label), key, kind, esc(value))


def setup(app):
    c = app.cfg
    first = app.net.setup_mode
    out = [_head("Settings"), "<h1>Settings</h1>"]
    if first:
        out.append("<p>First setup: enter your WiFi and MQTT broker, and choose an admin token "
                   "(at least 8 characters) that later changes will ask for.</p>")
    out.append('<form method="post" action="/config">')
    out.append(_field("WiFi network (SSID)", "wifi.ssid", c["wifi"]["ssid"]))
    out.append(_field("WiFi password (empty: unchanged)", "wifi.password", "", "password"))
    out.append(_field("MQTT broker host (empty: MQTT off)", "mqtt.host", c["mqtt"]["host"]))
    out.append(_field("MQTT port", "mqtt.port", c["mqtt"]["port"], "number"))
    out.append(_field("MQTT user", "mqtt.user", c["mqtt"]["user"]))
    out.append(_field("MQTT password (empty: unchanged)", "mqtt.password", "", "password"))
    out.append(_field("MQTT base topic", "mqtt.base_topic", c["mqtt"]["base_topic"]))
    out.append(_field("Meter parity: auto, E (Aidon, Kaifa) or N (Kamstrup)", "uart.parity", c["uart"]["parity"]))
    if first:
        out.append(_field("New admin token", "http.token", "", "password"))
    else:
        out.append(_field("Admin token (required)", "token", "", "password"))
    out.append('<p><button type="submit">Save and restart</button></p></form></body></html>')
    return "".join(out)
