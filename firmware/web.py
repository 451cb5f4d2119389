# What each HTTP path answers (httpd.py serves them): the dashboard, /data.json, /power.json, /history.json,
# /status, /metrics, /raw, settings. Rarely used parts load on demand and leave the heap after.
import mem

from hanport.buffers import const

JSON = "application/json"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
_METRICS = const("text/plain; version=0.0.4; charset=utf-8")  # Prometheus text exposition format 0.0.4
ROUTES = {  # path -> methods it takes
    "/": ("GET", "HEAD"),
    "/data.json": ("GET", "HEAD"),
    "/status": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/setup": ("GET", "HEAD"),
    "/config": ("GET", "HEAD", "POST"),
    "/restart": ("POST",),
    "/raw": ("GET", "HEAD"),
    "/power.json": ("GET", "HEAD"),
    "/history.json": ("GET", "HEAD"),
    "/login": ("GET", "HEAD", "POST"),
    "/firmware/update": ("POST",),  # (its body goes to app.App.update as it comes: httpd.Http.stream)
}
_LOAD_TRIES = const(30)  # a module a body loads is tried this often, _HEAP_WAIT_MS (httpd.py) apart (3 s)


LIGHT = ("/data.json",)  # small answers, served at once; the others take turns (httpd.Http.turn)


def allowed(path):
    return ROUTES.get(path)


def may_read(app, req):
    """True when the readings are open (no http.read_token) or the request shows the read token or the
    admin token (auth.py, loaded for the check only while a read token is set)."""
    h = app.cfg["http"]
    if not h["read_token"]:
        return True
    import auth

    try:
        return auth.may_read(h, req)
    finally:
        auth = None
        mem.unload("auth")


def route(app, req):
    """(status, content type, body, extra header lines) of one request."""
    p = req.path
    if p != "/login" and not may_read(app, req):
        if p == "/":  # a person with a browser: the login form
            return 303, TEXT, "log in at /login\n", "Location: /login\r\n"
        return 401, TEXT, "the readings need http.read_token (Authorization: Bearer, or log in at /login)\n", \
            'WWW-Authenticate: Bearer realm="han"\r\n'
    if p == "/data.json":
        return 200, JSON, app.data_json(), ""
    if app.accounting is not None and p in ("/metrics", "/history.json"):  # (/status shows the accounting it
        app.accounting.prepare()  # has, the ticker makes a new summary) made now, before this answer loads its modules
    if p == "/status":
        if req.query == "gc=1":  # collect first: "heap in use" then means live data only
            app.collect()
        if req.method == "HEAD":
            return 200, JSON, iter(()), ""
        return 200, JSON, _with_modules(("status", "status_config", "hanport.jsonstream"), _status(app)), ""
    if p == "/metrics":
        if req.method == "HEAD":
            return 200, _METRICS, iter(()), ""
        return 200, _METRICS, _with_modules(("metrics", "hanport.prom", "hanport.promtext"), _metrics_lines(app)), ""
    if p == "/config" and req.method != "POST":  # the settings, masked (status.py: no settings.py for it)
        return _on_demand("status_config", app, req)
    if p in ("/", "/power.json", "/history.json"):  # the dashboard, a file in flash (static.py), and its JSON
        return _on_demand("static" if p == "/" else "dash" if p == "/power.json" else "history", app, req)
    if p == "/raw":
        if app.rawlog is None:
            return 404, TEXT, "the raw frame log is off: set uart.raw_log to true (settings), then GET /raw\n", ""
        return 200, TEXT, app.rawlog.capture_lines(), ""
    import settings  # /setup, /config, /restart, /login

    try:
        answer = settings.route(app, req)
    finally:
        settings = None
        mem.unload("settings")
        mem.unload("auth")  # (settings' imports)
        mem.unload("apply")
    if answer[0] != "change":
        return answer
    import apply  # a POST /config with the token: validated, written, restarted

    try:
        return apply.change(app, answer[1], answer[2])
    finally:
        apply = answer = None
        mem.unload("apply")


def _metrics_lines(app):
    # one part at a time, each made with only its own modules in the heap (and those let go before it
    # is sent): the meter's and the decoder's families (hanport.prom), the app's (metrics.py), the
    # accounting's (its summary, then hanport.prom again); each family made again if the heap runs
    # short while it is made (promtext.sent_families)
    from hanport import prom, promtext

    out = []
    yield from promtext.sent_families(out, prom.meter_families, app.latest)
    yield from promtext.sent_families(out, _decoder_families, app.reader)
    prom = None
    mem.unload("hanport.prom")
    yield from _load("metrics")
    import metrics

    yield from promtext.sent_families(out, metrics.lines, app)
    metrics = None
    mem.unload("metrics")
    if app.accounting is not None:
        yield from _load("hanport.prom")  # (the accounting's families: loaded there, and let go after)
        yield from promtext.sent_families(out, app.accounting.prometheus)


def _decoder_families(out, reader):
    from hanport import prom

    return prom.decoder_families(out, reader.counters(), reader.last_error)


def _load(name):
    # module name imported in the middle of an answer's body: the heap short for a moment is waited
    # out, a None piece each time (httpd.Http.send waits before the next piece)
    for _ in range(_LOAD_TRIES):
        try:
            __import__(name)
            return
        except MemoryError:
            yield None
    __import__(name)  # (the last try: a MemoryError now cuts the answer short, counted)


def _status(app):
    # imported once the answer's body starts (so an answer that never gets that far loads nothing); in
    # two parts, each with only its own module in the heap
    import status

    yield from status.head(app)
    status = None
    mem.unload("status")
    yield from _load("status_config")
    import status_config

    yield from status_config.tail(app)


def _on_demand(name, app, req):
    # the answer of module name's route(app, req), the module (and those its ALSO names, loaded by the
    # answer) unloaded once it is sent
    mod = __import__(name)
    code, ctype, body, extra = mod.route(app, req)
    names = (name,) + getattr(mod, "ALSO", ())
    mod = None
    if isinstance(body, str):
        mem.unload(name)
        return code, ctype, body, extra
    return code, ctype, _with_modules(names, body), extra


def _with_modules(names, pieces):
    """pieces (made by modules loaded for this answer), then those modules unloaded (mem.unload)."""
    try:
        yield from pieces
    finally:
        pieces = None
        for name in names:
            mem.unload(name)
