# What each HTTP path answers (httpd.py serves them): the dashboard, /data.json, /power.json, /history.json,
# /status, /metrics, /raw, settings. Rarely used parts load on demand and leave the heap after.
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
    "/power.json": ("GET", "HEAD"),
    "/history.json": ("GET", "HEAD"),
    "/login": ("GET", "HEAD", "POST"),
}
COOKIE = "han_read"  # the cookie /login sets: the read token, for the web page


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
    if app.accounting is not None and p in ("/metrics", "/history.json"):  # (/status shows the accounting it
        app.accounting.prepare()  # has, the ticker makes a new summary) made now, before this answer loads its modules
    if p == "/status":
        if req.query == "gc=1":  # collect first: "heap in use" then means live data only
            app.collect()
        if req.method == "HEAD":
            return 200, JSON, iter(()), ""
        return 200, JSON, _with_modules(("status",), _status(app)), ""
    if p == "/metrics":
        if req.method == "HEAD":
            return 200, METRICS, iter(()), ""
        return 200, METRICS, _with_modules(("metrics", "hanport.prom", "hanport.promtext"), _metrics_lines(app)), ""
    if p == "/":  # the dashboard, a file in flash (static.py)
        import static

        code, ctype, body, extra = static.page(req)
        static = None
        if isinstance(body, str):
            mem.unload("static")
            return code, ctype, body, extra
        return code, ctype, _with_modules(("static",), body), extra
    if p in ("/power.json", "/history.json"):  # the dashboard's JSON (dash.py)
        import dash

        code, ctype, body, extra = dash.route(app, req)
        dash = None
        if isinstance(body, str):
            mem.unload("dash")
            return code, ctype, body, extra
        return code, ctype, _with_modules(("dash", "hanport.localtime", "hanport.accounting_capacity"), body), extra
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
    # accounting's (its summary, then hanport.prom again)
    from hanport import prom

    out = []
    for _ in prom.meter_families(out, app.latest):  # one family at a time
        yield from _lines(out)
    for _ in prom.decoder_families(out, app.reader.counters(), app.reader.last_error):
        yield from _lines(out)
    prom = None
    mem.unload("hanport.prom")
    import metrics

    yield from metrics.lines(app)
    metrics = None
    mem.unload("metrics")
    if app.accounting is not None:
        for _ in app.accounting.prometheus(out):
            yield from _lines(out)


def _status(app):
    # imported once the answer's body starts (so an answer that never gets that far loads nothing)
    import status

    yield from status.stream(app)


def _lines(out):
    for line in out:
        yield line + "\n"
    out.clear()


def _with_modules(names, pieces):
    """pieces (made by modules loaded for this answer), then those modules unloaded (mem.unload)."""
    try:
        yield from pieces
    finally:
        pieces = None
        for name in names:
            mem.unload(name)
