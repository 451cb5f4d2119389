# The page at "/": the latest value of every field, refreshing itself; loaded per request (web.py)
# and unloaded after. Values are escaped; secrets never reach a page.
from hanport import reading as R
from hanport.render import decimal

_UNITS = ("W", "W", "var", "var", "A", "A", "A", "V", "V", "V", "kWh", "kWh", "kvarh", "kvarh")


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def index(app):
    """The page in small pieces, each made as it is sent (no piece much over 300 bytes)."""
    lt = app.latest
    name = esc(app.cfg["name"])
    yield ('<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,'
           'initial-scale=1"><meta http-equiv="refresh" content="5"><title>')
    yield name
    yield ('</title><style>body{font-family:sans-serif;margin:1em;max-width:40em}td,th{padding:.2em .6em;'
           'text-align:left}td.v{text-align:right;font-family:monospace}</style></head><body><h1>')
    yield name
    yield "</h1>"
    if lt.meter_id or lt.manufacturer:
        yield "<p>%s %s, meter %s</p>" % (esc(lt.manufacturer or ""), esc(lt.meter_type or ""), esc(lt.meter_id or ""))
    age = app.reading_age_ms()
    if age is None:
        yield "<p>No reading yet. Is the HAN port open and the parity right? See <a href=/status>status</a>.</p>"
    else:
        yield "<p>Last reading %d.%d s ago (#%d).</p><table>" % (age // 1000, (age % 1000) // 100, app.seq)
        for f in range(R.N_NUMERIC):
            if lt.present[f]:
                yield '<tr><th>%s</th><td class=v>%s</td><td>%s</td></tr>' % (
                    R.NUMERIC_FIELDS[f], decimal(lt.value[f], lt.exp[f]), _UNITS[f])
        yield "</table>"
    yield ('<p><a href="/data.json">data.json</a> &middot; <a href="/status">status</a> &middot; '
           '<a href="/metrics">metrics</a> &middot; <a href="/setup">settings</a></p></body></html>')
