# What each HTTP path answers (httpd.py serves them): /data.json, /status, /metrics, the pages, /raw,
# settings. Rarely used parts (settings, pages, Prometheus text) load on demand and leave the heap after.
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
    "/login": ("GET", "HEAD", "POST"),
}
COOKIE = "han_read"  # the cookie /login sets: the read token, for the web page
_LOAD_TRIES = 30  # a module a body loads is tried this often, _HEAP_WAIT_MS (httpd.py) apart (3 s)


LIGHT = ("/data.json",)  # small answers, served at once; the others take turns (httpd.Http.turn)


def allowed(path):
    return ROUTES.get(path)


def may_read(app, req):
    """True when the readings are open (no http.read_token) or the request shows the read token or the
    admin token: Authorization: Bearer <token>, or the cookie /login sets."""
    h = app.cfg["http"]
    if not h["read_token"]:
        return True
    sent = bearer(req)
    if not sent:
        for part in req.headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == COOKIE:
                sent = v
    return read_token_ok(h, sent)


def bearer(req):
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case), else ""."""
    sent = req.headers.get("authorization", "")
    return sent[7:].strip() if sent[:7].lower() == "bearer " else ""


def read_token_ok(h, sent):
    """True when sent (text) is the read token or the admin token of the http settings h."""
    return bool(sent) and bool(h["read_token"]) and (same(sent, h["read_token"]) or
                                                     (bool(h["token"]) and same(sent, h["token"])))


def same(a, b):
    """Token comparison that does not stop at the first difference."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


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
    if app.accounting is not None and p == "/metrics":  # (/status shows the accounting it has, the ticker
        app.accounting.prepare()  # makes a new summary) made now, before this answer loads its modules
    if p == "/status":
        if req.query == "gc=1":  # collect first: "heap in use" then means live data only
            app.collect()
        if req.method == "HEAD":
            return 200, JSON, iter(()), ""
        return 200, JSON, _with_modules(("status", "hanport.jsonstream"), _status(app)), ""
    if p == "/metrics":
        if req.method == "HEAD":
            return 200, METRICS, iter(()), ""
        return 200, METRICS, _with_modules(("metrics", "hanport.prom", "hanport.promtext"), _metrics_lines(app)), ""
    if p == "/":
        if req.method == "HEAD":
            return 200, HTML, iter(()), ""
        return 200, HTML, _with_modules(("pages",), _page(app)), ""
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
    # imported once the answer's body starts (so an answer that never gets that far loads nothing)
    import status

    yield from status.stream(app)


def _page(app):
    import pages

    yield from pages.index(app)


def _with_modules(names, pieces):
    """pieces (made by modules loaded for this answer), then those modules unloaded (mem.unload)."""
    try:
        yield from pieces
    finally:
        pieces = None
        for name in names:
            mem.unload(name)
