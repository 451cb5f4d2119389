# HTTP server (asyncio): /data.json, /status, /metrics, a small page and the settings form.
# Bounded: request head and body sizes, read deadlines, concurrent clients; errors are answers.
import asyncio
import json
import time

import config
import pages
from log import log

MAX_HEAD_BYTES = 2048  # request line + headers
MAX_LINE_BYTES = 512  # request line alone (414 beyond)
MAX_HEADERS = 32
MAX_BODY_BYTES = 2048  # settings form / JSON
READ_CHUNK = 256
SEND_CHUNK = 768  # bytes per write+drain of a long answer (/metrics)

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable",
}
ROUTES = {  # path -> allowed methods
    "/": ("GET", "HEAD"),
    "/data.json": ("GET", "HEAD"),
    "/status": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
    "/setup": ("GET", "HEAD"),
    "/config": ("GET", "HEAD", "POST"),
    "/restart": ("POST",),
    "/raw": ("GET", "HEAD"),
}
JSON = "application/json"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


def json_pieces(d):
    """A dict as JSON text in pieces (one per top-level key), for _send."""
    out = ["{"]
    first = True
    for k in d:
        if not first:
            out.append(",")
        first = False
        out.append(json.dumps(k) + ":" + json.dumps(d[k]))
    out.append("}")
    return out


def lines_pieces(lines):
    """Lines as newline-terminated pieces, in place (Prometheus text)."""
    for i in range(len(lines)):
        lines[i] += "\n"
    return lines


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lowercase name -> value (str)
        self.body = body


def _find_end(buf):
    """(end of head, start of body) in buf, or (-1, -1)."""
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        return i, i + 4
    i = buf.find(b"\n\n")
    if i >= 0:
        return i, i + 2
    return -1, -1


def parse_head(head):
    """(status, method, target, headers): status 0 when well formed, else the HTTP error code."""
    try:
        text = head.decode()
    except UnicodeError:
        return 400, None, None, None
    lines = text.split("\n")
    line = lines[0].rstrip("\r")
    parts = line.split(" ")
    if len(parts) != 3:
        return 400, None, None, None
    method, target, version = parts
    if not method or not method.isalpha() or method.upper() != method or len(method) > 10:
        return 400, None, None, None
    if not target.startswith("/") or not version.startswith("HTTP/1."):
        return 400, None, None, None
    headers = {}
    if len(lines) - 1 > MAX_HEADERS:
        return 431, None, None, None
    for raw in lines[1:]:
        raw = raw.rstrip("\r")
        if not raw:
            continue
        name, sep, value = raw.partition(":")
        if not sep or not name or name.strip() != name or " " in name:
            return 400, None, None, None
        headers[name.lower()] = value.strip()
    return 0, method, target, headers


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


def _same(a, b):
    """Token comparison that does not stop at the first difference."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


class Http:
    def __init__(self, app, cfg):
        self.app = app
        self.cfg = cfg["http"]
        self.server = None
        self.active = 0
        self.requests = 0
        self.by_status = {}
        self.timeouts = 0
        self.rejected_busy = 0
        self.io_errors = 0
        self.last_error = None

    async def start(self):
        if not self.cfg["enabled"]:
            return
        self.server = await asyncio.start_server(self._client, self.cfg["bind"], self.cfg["port"], backlog=8)
        log("http", "listening on %s:%d" % (self.cfg["bind"], self.cfg["port"]))

    def _count(self, status):
        self.by_status[status] = self.by_status.get(status, 0) + 1

    async def _client(self, reader, writer):
        self.requests += 1
        try:
            if self.active >= self.cfg["max_clients"]:
                self.rejected_busy += 1
                await self._send(writer, 503, TEXT, "busy: too many clients\n", extra="Retry-After: 1\r\n")
                return
            self.active += 1
            try:
                await self._serve(reader, writer)
            finally:
                self.active -= 1
        except OSError as e:  # client reset or went away mid-answer
            self.io_errors += 1
            self.last_error = "io: %r" % (e,)
        except Exception as e:  # a bug in a page: answer 500, log it, keep serving
            self.last_error = "bug: %r" % (e,)
            log("http", "500: %r" % (e,))
            try:
                await self._send(writer, 500, TEXT, "internal error\n")
            except OSError:
                pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except OSError:
                pass

    async def _read_some(self, reader, deadline):
        left = time.ticks_diff(deadline, time.ticks_ms())
        if left <= 0:
            return None
        try:
            return await asyncio.wait_for_ms(reader.read(READ_CHUNK), left)
        except asyncio.TimeoutError:  # noqa: UP041 (MicroPython has no builtin TimeoutError)
            return None

    async def _serve(self, reader, writer):
        deadline = time.ticks_add(time.ticks_ms(), self.cfg["timeout_s"] * 1000)
        buf = b""
        while True:
            chunk = await self._read_some(reader, deadline)
            if chunk is None:
                self.timeouts += 1
                if buf:
                    await self._send(writer, 408, TEXT, "request timeout\n")
                return
            if not chunk:
                return  # client closed before a full request
            buf += chunk
            end, body_at = _find_end(buf)
            if end >= 0:
                break
            if len(buf) > MAX_HEAD_BYTES:
                nl = buf.find(b"\n")
                code = 414 if nl < 0 or nl > MAX_LINE_BYTES else 431
                await self._send(writer, code, TEXT, "request head too large\n")
                return
        if end > MAX_HEAD_BYTES:
            await self._send(writer, 431, TEXT, "request head too large\n")
            return
        nl = buf.find(b"\n")
        if nl > MAX_LINE_BYTES:
            await self._send(writer, 414, TEXT, "request line too long\n")
            return
        status, method, target, headers = parse_head(buf[:end])
        if status:
            await self._send(writer, status, TEXT, "malformed request\n")
            return
        path, _, query = target.partition("?")
        allowed = ROUTES.get(path)
        if allowed is None:
            await self._send(writer, 404, TEXT, "not found\n")
            return
        if method not in allowed:
            await self._send(writer, 405, TEXT, "method not allowed\n", extra="Allow: %s\r\n" % ", ".join(allowed))
            return
        body = b""
        if method == "POST":
            cl = headers.get("content-length")
            if cl is None:
                await self._send(writer, 411, TEXT, "Content-Length required\n")
                return
            if not cl.isdigit():
                await self._send(writer, 400, TEXT, "bad Content-Length\n")
                return
            want = int(cl)
            if want > MAX_BODY_BYTES:
                await self._send(writer, 413, TEXT, "body too large\n")
                return
            body = buf[body_at:]
            while len(body) < want:
                chunk = await self._read_some(reader, deadline)
                if chunk is None:
                    self.timeouts += 1
                    await self._send(writer, 408, TEXT, "request timeout\n")
                    return
                if not chunk:
                    return
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    await self._send(writer, 413, TEXT, "body too large\n")
                    return
            body = body[:want]
        req = Request(method, path, query, headers, body)
        code, ctype, text, extra = self._route(req)
        await self._send(writer, code, ctype, text, head_only=(method == "HEAD"), extra=extra)

    def _route(self, req):
        app = self.app
        p = req.path
        if p == "/data.json":
            return 200, JSON, app.data_json(), ""
        if p == "/status":
            if req.query == "gc=1":  # collect first: "heap in use" then means live data only
                app.collect()
            return 200, JSON, json_pieces(app.status_dict()), ""
        if p == "/metrics":
            return 200, app.metrics_content_type, lines_pieces(app.metrics_lines()), ""
        if p == "/":
            return 200, HTML, pages.index(app), ""
        if p == "/raw":
            if app.rawlog is None:
                return 404, TEXT, "no raw frame log in this build\n", ""
            return 200, TEXT, app.rawlog.capture_text(), ""
        if p == "/setup":
            return 200, HTML, pages.setup(app), ""
        if p == "/config":
            if req.method == "POST":
                return self._post_config(req)
            return 200, JSON, app.config_json(), ""
        if p == "/restart":
            ok, why = self._authorised(req, None)
            if not ok:
                return 403, TEXT, why + "\n", ""
            app.restart_soon(1000)
            return 200, TEXT, "restarting\n", ""
        return 404, TEXT, "not found\n", ""

    def _authorised(self, req, changes):
        """(ok, reason). With a token configured it must be sent (Authorization: Bearer, or the form's
        `token` field). Without one, only the first-boot setup may change settings, and it must set one."""
        token = self.cfg["token"]
        if token:
            sent = req.headers.get("authorization", "")
            if sent.startswith("Bearer "):
                sent = sent[7:].strip()
            elif changes is not None and "token" in changes:
                sent = changes["token"]
            else:
                sent = ""
            if sent and _same(sent, token):
                return True, ""
            return False, "a valid token is required (Authorization: Bearer <http.token>)"
        if self.app.net.setup_mode and changes is not None and changes.get("http.token"):
            return True, ""
        if self.app.net.setup_mode:
            return False, "first setup: choose an admin token (http.token) along with the settings"
        return False, "settings cannot be changed: no http.token is configured"

    def _post_config(self, req):
        ctype = req.headers.get("content-type", "").split(";")[0].strip()
        if ctype == "application/x-www-form-urlencoded":
            form = parse_form(req.body)
            if form is None:
                return 400, TEXT, "malformed form\n", ""
            changes = {}
            problems = []
            for k in form:
                if k == "token":
                    continue
                if k not in config.SCHEMA:
                    problems.append("unknown key %s" % k)
                    continue
                v, p = config.parse_value(k, form[k])
                if p:
                    problems.append(p)
                else:
                    changes[k] = v
            auth_view = dict(changes)
            if "token" in form:
                auth_view["token"] = form["token"]
        elif ctype == "application/json":
            try:
                doc = json.loads(req.body)
            except ValueError:
                return 400, TEXT, "malformed JSON\n", ""
            if not isinstance(doc, dict):
                return 400, TEXT, "expected a JSON object of dotted keys\n", ""
            changes = {}
            problems = []
            for k in doc:
                if k != "token":
                    changes[k] = doc[k]
            auth_view = dict(changes)
            if "token" in doc:
                auth_view["token"] = doc["token"]
        else:
            return 415, TEXT, "send application/x-www-form-urlencoded or application/json\n", ""
        ok, why = self._authorised(req, auth_view)
        if not ok:
            return 403, TEXT, why + "\n", ""
        if not problems:
            new_user, problems = config.apply_changes(self.app.user_cfg, changes)
        if problems:
            return 400, TEXT, "not saved:\n" + "\n".join(problems) + "\n", ""
        self.app.save_config(new_user)
        self.app.restart_soon(2000)
        return 200, TEXT, "saved; restarting in 2 s\n", ""

    async def _send(self, writer, code, ctype, text, head_only=False, extra=""):
        """One response. text: str, or a list of str pieces sent in writes of about SEND_CHUNK bytes,
        so a long answer (/metrics, /status) never needs one large contiguous heap block."""
        self._count(code)
        if isinstance(text, list):
            length = 0
            for piece in text:
                length += len(piece.encode())
            body = None
        else:
            body = text.encode()
            length = len(body)
        head = "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n" \
               "Connection: close\r\n%s\r\n" % (code, REASONS.get(code, ""), ctype, length, extra)
        writer.write(head.encode())
        if head_only:
            await writer.drain()
            return
        if body is not None:
            writer.write(body)
            await writer.drain()
            return
        group = []
        size = 0
        for piece in text:
            group.append(piece)
            size += len(piece)
            if size >= SEND_CHUNK:
                writer.write("".join(group).encode())
                await writer.drain()
                group = []
                size = 0
        if group:
            writer.write("".join(group).encode())
        await writer.drain()

    def status(self):
        by = {}
        for k in self.by_status:
            by[str(k)] = self.by_status[k]
        return {"enabled": self.cfg["enabled"], "port": self.cfg["port"], "requests": self.requests,
                "active": self.active, "by_status": by, "timeouts": self.timeouts,
                "rejected_busy": self.rejected_busy, "io_errors": self.io_errors, "last_error": self.last_error,
                "token_set": bool(self.cfg["token"])}
