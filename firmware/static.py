# GET /: the dashboard (firmware/www/index.html, gzipped by `make mpy`) streamed from flash; loaded
# per request (web.py) and unloaded after, like the other pages.
import os

from hanport.buffers import const

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
_PAGE = const("www/index.html")  # the board keeps it in flash as _PAGE + ".gz" (make mpy, make deploy)
_PIECE = const(256)  # bytes read from flash per piece sent (one small block: a heap in pieces has room for it)


def route(app, req):
    """(status, content type, body, extra header lines): the dashboard as stored (gzip), read in
    pieces of _PIECE bytes into one buffer; revalidated by its ETag (the firmware version and the
    file's size), so a browser loads it once per version."""
    from app import VERSION

    f = app.firmware  # an update's own page (update.py: v/<folder>/www), else the root install's
    run = f[0] if f else "root install"
    base = "/".join(("v", f[3], "")) if f and f[3] else ""
    for path, head in ((base + _PAGE + ".gz", "Content-Encoding: gzip\r\n"), (base + _PAGE, "")):
        try:
            tag = '"%s-%d"' % (VERSION + "-" + run, os.stat(path)[6])
        except OSError:
            continue
        head += "ETag: %s\r\nCache-Control: no-cache\r\n" % tag
        if req.headers.get("if-none-match") == tag:
            return 304, HTML, "", head
        return 200, HTML, iter(()) if req.method == "HEAD" else _file_pieces(path), head
    return 404, TEXT, "the dashboard is not installed (www/index.html): run make deploy\n", ""


def _file_pieces(path):
    # each piece is written whole before the next is read (httpd.Http.send): one buffer serves all
    buf = bytearray(_PIECE)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return
            yield buf if n == _PIECE else view[:n]  # (a full piece as it is: nothing allocated for it)
