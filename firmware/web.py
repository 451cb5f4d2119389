# What each HTTP path answers (httpd.py serves them): /data.json, /status, /metrics, the pages, /raw,
# settings. Rarely used parts (settings, pages, Prometheus text) load on demand and leave the heap after.
import json

import mem

JSON = "application/json"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
METRICS = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text exposition format 0.0.4
ROUTES = {  # path -> methods it takes
    "/": ("GET", "HEAD"),
    "/data.json": ("GET", "HEAD"),
    "/status": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/setup": ("GET", "HEAD"),
    "/config": ("GET", "HEAD", "POST"),
    "/restart": ("POST",),
    "/raw": ("GET", "HEAD"),
}


LIGHT = ("/data.json",)  # small answers, served at once; the others take turns (httpd.Http.turn)


def allowed(path):
    return ROUTES.get(path)


def json_pieces(d):
    """A dict as JSON text in pieces (one per top-level key): no single large string."""
    out = ["{"]
    for k in d:
        if len(out) > 1:
            out.append(",")
        out.append(json.dumps(k) + ":" + json.dumps(d[k]))
    out.append("}")
    return out


def json_stream(pairs):
    """An iterable of (key, value) as JSON object text, one piece per pair, made as it is sent."""
    first = True
    for k, v in pairs:
        yield ("{" if first else ",") + json.dumps(k) + ":" + json.dumps(v)
        first = False
    yield "{}" if first else "}"


def route(app, req):
    """(status, content type, body, extra header lines) of one request."""
    p = req.path
    if p == "/data.json":
        return 200, JSON, app.data_json(), ""
    if p == "/status":
        if req.query == "gc=1":  # collect first: "heap in use" then means live data only
            app.collect()
        if req.method == "HEAD":
            return 200, JSON, iter(()), ""
        return 200, JSON, _with_module("status", json_stream(_status_pairs(app))), ""
    if p == "/metrics":
        if req.method == "HEAD":
            return 200, METRICS, iter(()), ""
        return 200, METRICS, _with_module("metrics", _metrics_lines(app)), ""
    if p == "/":
        import pages

        try:
            return 200, HTML, pages.index(app), ""
        finally:
            mem.unload("pages")
    if p == "/raw":
        if app.rawlog is None:
            return 404, TEXT, "no raw frame log in this build\n", ""
        return 200, TEXT, app.rawlog.capture_lines(), ""
    import settings  # /setup, /config, /restart

    try:
        return settings.route(app, req)
    finally:
        mem.unload("settings")
        mem.unload("config")


def _status_pairs(app):
    import status

    return status.pairs(app)


def _metrics_lines(app):
    import metrics

    return metrics.lines(app)


def _with_module(name, pieces):
    """pieces (made by a module loaded for this answer), then the module unloaded (mem.unload)."""
    try:
        yield from pieces
    finally:
        pieces = None
        mem.unload(name)
        if name == "metrics":
            mem.unload("hanport.prom")
