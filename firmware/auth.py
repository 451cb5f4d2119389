# Tokens over HTTP: the read token a request shows (web.py loads this only while http.read_token is set)
# and the comparisons the settings use for the admin token (settings.py); nothing stays in the heap.
COOKIE = "han_read"  # the cookie /login sets: the read token, for the web page


def may_read(h, req):
    """True when the request shows the read token or the admin token of the http settings h:
    Authorization: Bearer <token>, or the cookie /login sets."""
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
