# HTTP/1.0 server for the device (asyncio): bounded request head and body, read deadlines, a client
# limit, answers streamed in small pieces, errors as status codes. What each path answers: web.py.
import asyncio
import gc
import select
import time

from log import log
from micropython import const

_MAX_HEAD_BYTES = const(2048)  # request line + headers (RFC 9110 §4.1 leaves the limit to the server)
_MAX_LINE_BYTES = const(512)  # request line alone (414 beyond)
_MAX_HEADERS = const(32)
_MAX_BODY_BYTES = const(2048)  # settings form / JSON
READ_CHUNK = const(256)  # every connection reads through one buffer this long (startup.http_state)
_POLL_MS = const(10)  # a connection looks for bytes, room to send or its turn this often (see _read_some)
_HEAP_WAIT_MS = const(100)  # serve() looks again this often (after a collection) while the heap is short, and
# an answer that found the heap short before its head is made again after this
_IDLE_MS = const(100)  # a connection that has sent nothing this long after it was taken counts as idle (pre-connect)
_GIVE_WAY_MS = const(500)  # a connection without a whole request head after this long may be closed for a new one
_SEND_CHUNK = const(768)  # a long answer (/metrics, /status) lets the other tasks run after this many bytes
_ACCEPT_POLL_MS = const(20)  # serve() looks for new connections this often while none is pending
_ACCEPT_FREE_BYTES = const(10240)  # a new connection is taken while this much heap is free (after a collection) or
# none is being served, else it waits in the TCP backlog: each costs ~1 KB, its answer's modules up to ~4 KB more
# (/metrics), and the free heap is in pieces (no compaction)
_BUSY = const(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")

# the headers routes read
_HEADERS_USED = const(("authorization", "cookie", "content-length", "content-type", "if-none-match"))
REASONS = {
    200: "OK", 303: "See Other", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable",
}
TEXT = "text/plain; charset=utf-8"


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers  # lowercase name -> value (str)
        self.body = body


def find_end(buf):
    """(end of head, start of body) in buf, or (-1, -1)."""
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        return i, i + 4
    i = buf.find(b"\n\n")
    if i >= 0:
        return i, i + 2
    return -1, -1


def parse_head(buf, end):
    """(status, method, path, query, headers) of the request head buf[:end]: status 0 when well formed,
    else the HTTP error code; headers: those of _HEADERS_USED that came, by lower-case name."""
    try:
        text = buf[:end].decode()
    except UnicodeError:
        return 400, None, None, None, None
    lines = text.split("\n")
    parts = lines[0].rstrip("\r").split(" ")
    if len(parts) != 3:
        return 400, None, None, None, None
    method, target, version = parts
    if not method or not method.isalpha() or method.upper() != method or len(method) > 10:
        return 400, None, None, None, None
    if not target.startswith("/") or not version.startswith("HTTP/1."):
        return 400, None, None, None, None
    if len(lines) - 1 > _MAX_HEADERS:
        return 431, None, None, None, None
    headers = {}
    for raw in lines[1:]:
        raw = raw.rstrip("\r")
        if not raw:
            continue
        name, sep, value = raw.partition(":")
        if not sep or not name or name.strip() != name or " " in name:
            return 400, None, None, None, None
        name = name.lower()
        if name in _HEADERS_USED:  # (the others are checked, not kept: a browser sends ~0.5 KB of them)
            headers[name] = value.strip()
    path, _, query = target.partition("?")
    return 0, method, path, query, headers


class Http:
    """Serves `route(req) -> (status, content type, body, extra header lines)`; body is a str or a
    list of str pieces (each written as it comes: no large contiguous block needed).
    `allowed(path)` gives the methods a path takes, None for an unknown path."""

    def __init__(self, cfg, route, allowed, light=None, turn=None):
        import startup  # (the state is set up there: boot-time code, so its bytecode leaves the heap after boot)

        startup.http_state(self, cfg, route, allowed, light, turn)

    async def serve(self):
        """Accept connections for as long as the app runs, each served by its own task (_client).
        Out of heap for a new one: that connection is closed at once (counted: dropped) and the loop
        goes on. (asyncio.start_server's own loop ends at the first such error: the device would stay
        deaf until a reset.) A supervisor restarts this loop on the same socket if it ever fails."""
        s = self.server
        poller = select.poll()
        poller.register(s, select.POLLIN)
        short = False  # a pending connection is being kept waiting for heap
        short_conns = short_ms = 0  # connections when the heap was last found short, and when
        while True:
            pending = False
            for _ in poller.ipoll(0):  # (ipoll: no list per look)
                pending = True
            if not pending:
                await asyncio.sleep_ms(_ACCEPT_POLL_MS)
                continue
            # room for another connection and its answer (_ACCEPT_FREE_BYTES)? With none being served, the
            # one taken has the whole heap. (mem_free counts garbage as used: a collection when short, then
            # again only once a connection has ended or after _HEAP_WAIT_MS, not at every look)
            room = not self.conns or gc.mem_free() >= _ACCEPT_FREE_BYTES
            if not room and (self.conns < short_conns or time.ticks_diff(time.ticks_ms(), short_ms) >= _HEAP_WAIT_MS):
                gc.collect()
                short_conns = self.conns
                short_ms = time.ticks_ms()
                room = gc.mem_free() >= _ACCEPT_FREE_BYTES
            if not room:
                if not short:
                    short = True
                    self.deferred += 1
                # a connection without a whole head makes room: one that has shown itself idle (its task
                # found no bytes: a browser's pre-connect) at once, any other after _GIVE_WAY_MS
                w = self.waiting
                for i in range(len(w)):
                    if w[i][2] or time.ticks_diff(time.ticks_ms(), w[i][0]) >= _GIVE_WAY_MS:
                        self._give_way(i)
                        break
                await asyncio.sleep_ms(_ACCEPT_POLL_MS)
                continue
            short = False
            try:
                c = s.accept()[0]
            except OSError:  # the client gave up meanwhile
                await asyncio.sleep_ms(_ACCEPT_POLL_MS)
                continue
            if self.conns >= 2 * self.cfg["max_clients"]:  # (a connection's task and buffers: ~1 KB of heap)
                if self.waiting:  # the oldest one still without a whole request head makes room at once
                    self._give_way()
                else:  # all of them being answered: this one is turned away without a task
                    self.rejected_busy += 1
                    try:
                        c.send(_BUSY)
                    except OSError:
                        pass
                    c.close()
                    continue
            try:
                c.setblocking(False)
                asyncio.create_task(self._client(c))
                self.conns += 1
            except MemoryError:
                self.dropped += 1
                c.close()
                await asyncio.sleep_ms(_ACCEPT_POLL_MS)

    async def _client(self, sock):
        self.requests += 1
        task = None
        try:
            if not await self._place():
                self.rejected_busy += 1
                await self.send(sock, 503, TEXT, "busy: too many clients\n", extra="Retry-After: 1\r\n")
                return
            self.active += 1
            task = [time.ticks_ms(), asyncio.current_task(), False]  # [2]: its first look found no bytes
            self.waiting.append(task)
            try:
                await self._serve(sock, task)
            finally:
                self.active -= 1
                if task in self.waiting:
                    self.waiting.remove(task)
        except OSError as e:  # client reset or went away mid-answer
            self.io_errors += 1
            self.last_error = "io: %r" % (e,)
        except Exception as e:  # a bug in a page (or the heap short): answer 500, keep serving
            try:
                self.last_error = "bug: %r" % (e,)
                log("http", "500 on %s: %r" % (self.last_path, e))
                await self.send(sock, 500, TEXT, "internal error\n")
            except (OSError, MemoryError):
                pass
        finally:
            self.conns -= 1
            try:
                sock.close()  # (at once, allocating nothing: also when the heap ran out above)
            except OSError:
                pass

    def _give_way(self, i=0):
        """Close a connection that has not sent a whole request head (its task is cancelled): the i-th
        oldest."""
        self.waiting.pop(i)[1].cancel()
        self.evicted += 1

    async def _place(self):
        """True once this new connection may be served. When every place is taken, a connection that
        has had _GIVE_WAY_MS to send its request head and has not (idle pre-connects, slow senders,
        garbage) gives way, the oldest first; meanwhile up to max_clients new ones wait a moment
        (at most 2 x _GIVE_WAY_MS) for that or for a place to free; any more are turned away."""
        limit = self.cfg["max_clients"]
        t0 = time.ticks_ms()
        queued = False
        try:
            while self.active >= limit:
                w = self.waiting
                now = time.ticks_ms()
                if w and time.ticks_diff(now, w[0][0]) >= _GIVE_WAY_MS:
                    self._give_way()
                    return True
                if time.ticks_diff(now, t0) >= 2 * _GIVE_WAY_MS or (not queued and self.queued >= limit):
                    return False
                if not queued:
                    queued = True
                    self.queued += 1
                await asyncio.sleep_ms(50)
            return True
        finally:
            if queued:
                self.queued -= 1

    async def _read_some(self, sock, deadline, task=None):
        """The bytes that came (b"" once the client has closed), or None at the deadline; task: the
        connection's entry in waiting while its head has not begun (marked idle after _IDLE_MS). The socket is
        polled, not waited on through asyncio's I/O queue with wait_for: a wait_for cut short by a
        MemoryError leaves its reading task behind, registered on a socket that is then closed
        (collapsed 112 KB soaks logged them). Nothing is allocated while no byte comes."""
        buf = self.rbuf
        while True:
            n = sock.readinto(buf)
            if n is not None:
                return bytes(memoryview(buf)[:n]) if n else b""
            now = time.ticks_ms()
            if time.ticks_diff(deadline, now) <= 0:
                return None
            if task is not None and time.ticks_diff(now, task[0]) >= _IDLE_MS:
                task[2] = True  # silent since it connected: a pre-connect (serve() may close it for another)
            await asyncio.sleep_ms(_POLL_MS)

    async def _write(self, sock, data, deadline, off=0):
        """All of data (bytes-like or str: its UTF-8 bytes as they are, no copy) from byte off on onto the
        socket; False if the client did not take it all before the deadline. The heap short for a moment
        (another answer, an hourly list): a moment's wait (heap_waits), then on from where it was."""
        view = None
        while view is None:
            try:
                view = memoryview(data)
            except MemoryError:  # (nothing of it went out)
                if time.ticks_diff(deadline, time.ticks_ms()) <= _HEAP_WAIT_MS:
                    raise
                self.heap_waits += 1
                gc.collect()
                await asyncio.sleep_ms(_HEAP_WAIT_MS)
        size = len(view)  # (bytes: a str's len() counts characters)
        while off < size:
            n = sock.write(view, off, size - off)  # (a stream's write from an offset: no slice made)
            if n:
                off += n
            elif time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return False
            else:
                await asyncio.sleep_ms(_POLL_MS)
        return True

    async def _serve(self, sock, task):
        deadline = time.ticks_add(time.ticks_ms(), self.cfg["timeout_s"] * 1000)
        # the head is kept as the chunks it came in (no block larger than a chunk while it grows, so a
        # hostile head needs no large free block) and joined once whole, within the limit
        chunks = []
        size = 0  # bytes in chunks
        nl = -1  # where the request line ends, once seen
        tail = b""  # the last 3 bytes before this chunk (an end of head across two chunks)
        while True:
            chunk = await self._read_some(sock, deadline, None if chunks else task)
            if chunk is None:
                self.timeouts += 1
                if chunks:
                    await self.send(sock, 408, TEXT, "request timeout\n")
                return
            if not chunk:
                return  # client closed before a full request
            if nl < 0:
                i = chunk.find(b"\n")
                nl = size + i if i >= 0 else -1
            probe = tail + chunk
            end, body_at = find_end(probe)
            chunks.append(chunk)
            if end >= 0:
                end += size - len(tail)
                body_at += size - len(tail)
                self.waiting.remove(task)  # a whole head: this one is served now
                break
            size += len(chunk)
            if size > _MAX_HEAD_BYTES or (nl < 0 and size > _MAX_LINE_BYTES):
                code = 414 if nl < 0 or nl > _MAX_LINE_BYTES else 431
                await self.send(sock, code, TEXT, "request head too large\n")
                return
            tail = probe[-3:]
        probe = tail = None
        if end > _MAX_HEAD_BYTES:
            await self.send(sock, 431, TEXT, "request head too large\n")
            return
        if nl > _MAX_LINE_BYTES:
            await self.send(sock, 414, TEXT, "request line too long\n")
            return
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks = None
        status, method, path, query, headers = await self._heap_retry(parse_head, (buf, end), deadline)
        if status:
            await self.send(sock, status, TEXT, "malformed request\n")
            return
        allowed = self.allowed(path)
        if allowed is None:
            await self.send(sock, 404, TEXT, "not found\n")
            return
        if method not in allowed:
            await self.send(sock, 405, TEXT, "method not allowed\n", extra="Allow: %s\r\n" % ", ".join(allowed))
            return
        body = b""
        if method == "POST":
            cl = headers.get("content-length")
            if cl is None:
                await self.send(sock, 411, TEXT, "Content-Length required\n")
                return
            if not cl.isdigit():
                await self.send(sock, 400, TEXT, "bad Content-Length\n")
                return
            want = int(cl)
            fn = self.stream.get(path)
            if fn is not None:  # (POST /firmware/update: the body is far larger than the heap)
                try:
                    code, ctype, text, extra = await fn(Request(method, path, query, headers, None), sock,
                                                        buf[body_at:], want)
                except MemoryError:  # (its module could not load: nothing of the body read yet)
                    code, ctype, text, extra = 503, TEXT, "out of heap: try again\n", "Retry-After: 1\r\n"
                await self.send(sock, code, ctype, text, extra=extra)
                return
            if want > _MAX_BODY_BYTES:
                await self.send(sock, 413, TEXT, "body too large\n")
                return
            body = bytes(buf[body_at:])
            while len(body) < want:
                chunk = await self._read_some(sock, deadline)
                if chunk is None:
                    self.timeouts += 1
                    await self.send(sock, 408, TEXT, "request timeout\n")
                    return
                if not chunk:
                    return
                body += chunk
                if len(body) > _MAX_BODY_BYTES:
                    await self.send(sock, 413, TEXT, "body too large\n")
                    return
            body = body[:want]
        buf = None
        req = await self._heap_retry(Request, (method, path, query, headers, body), deadline)
        self.last_path = path  # (for the log of a failing answer)
        light = self.light is not None and self.light(path)  # (small now: served without its turn)
        if not light:
            while self.turn.locked():  # wait for the answer being sent, within this request's deadline
                if time.ticks_diff(deadline, time.ticks_ms()) <= 0:  # (polled: the tasks queued on the lock,
                    self.rejected_busy += 1  # the UART's hourly list and MQTT, come first)
                    await self.send(sock, 503, TEXT, "busy\n", extra="Retry-After: 1\r\n")
                    return
                await asyncio.sleep_ms(_POLL_MS)
            await self.turn.acquire()  # (free: taken at once)
        try:
            code, ctype, text, extra, first = await self._heap_retry(self._made, (req,), self._fresh())
            req = None
            try:
                await self.send(sock, code, ctype, text, method == "HEAD", extra, first, path)
            finally:  # however the answer ended (also when its head or send's coroutine found no heap): the
                _close(text)  # body's clean-up, which unloads the modules it loaded
        finally:
            if not light:
                self.turn.release()

    def _fresh(self):
        # the deadline for making an answer, from when its turn came (the wait for it had the request's)
        return time.ticks_add(time.ticks_ms(), self.cfg["timeout_s"] * 1000)

    async def _heap_retry(self, fn, args, deadline):
        # fn(*args), made again after a collection while the heap is short for a moment (nothing of the
        # answer is sent yet), until the deadline (heap_waits)
        while True:
            try:
                return fn(*args)
            except MemoryError:
                if time.ticks_diff(deadline, time.ticks_ms()) <= _HEAP_WAIT_MS:
                    raise
                self.heap_waits += 1
            gc.collect()
            await asyncio.sleep_ms(_HEAP_WAIT_MS)

    def _made(self, req):
        # route(req) and a streamed body's first piece (or None): made before anything is sent, as the
        # answer's modules load there (_heap_retry makes it again if the heap is short for a moment: an
        # hourly list, another answer, MQTT, the boot's garbage; a POST too: a settings change made
        # twice writes the same file and restarts)
        code, ctype, text, extra = self.route(req)
        if isinstance(text, (str, list)):
            return code, ctype, text, extra, None
        try:  # (a generator that raised is finished: its clean-up has run)
            return code, ctype, text, extra, next(text)
        except StopIteration:  # (a body without pieces: HEAD)
            return code, ctype, text, extra, None

    async def send(self, sock, code, ctype, text, head_only=False, extra="", first=None, path=None):
        """One answer, within timeout_s (a client that does not read is left: counted in timeouts).
        text: a str; a list of pieces (str or bytes-like; Content-Length counted first); or any other
        iterable of pieces (a generator: produced while sending, so the whole answer never sits in
        RAM; no Content-Length, the body ends with the connection, HTTP/1.0), whose first piece may
        be made already (first: _made); a None piece: the answer waits for heap a moment. The caller
        closes a generator body (_serve: _close), also when this fails before its first piece. path:
        the request's, named in the log if the body fails (else the latest request's)."""
        self.by_status[code] = self.by_status.get(code, 0) + 1
        if isinstance(text, str):
            text = [text]
        length = None
        if isinstance(text, list):  # the length first (in bytes), then the same pieces sent
            length = 0
            for piece in text:
                length += len(memoryview(piece))
        deadline = time.ticks_add(time.ticks_ms(), self.cfg["timeout_s"] * 1000)
        head = await self._heap_retry(_head, (code, ctype, length, extra), deadline)  # (nothing sent yet)
        size = 0
        try:
            if not await self._write(sock, head, deadline):
                self.timeouts += 1
                return
            if head_only:
                return
            if first is not None and not await self._write(sock, first, deadline):
                self.timeouts += 1
                return
            for piece in text:  # (str or bytes-like: _write sends a str's bytes without a copy)
                if piece is None:  # the answer waits for heap (web._load): a moment, then its next piece
                    self.heap_waits += 1
                    gc.collect()
                    await asyncio.sleep_ms(_HEAP_WAIT_MS)
                    continue
                n = 0
                try:  # most pieces go at once, with no coroutine made for them: less churn in the heap
                    view = memoryview(piece)  # (a str's bytes as they are)
                    n = sock.write(view) or 0
                    whole = n == len(view)
                except MemoryError:  # (the heap short for a moment: _write waits for it)
                    view, whole = piece, False
                if not whole and not await self._write(sock, view, deadline, n):
                    self.timeouts += 1  # a client that does not read: let the next one in
                    return
                size += len(view)
                if size >= _SEND_CHUNK:  # the other tasks (the UART reader) run between pieces
                    size = 0
                    await asyncio.sleep_ms(0)
        except OSError:
            raise
        except Exception as e:  # the answer's own code failed after its head went out: no second
            self.cut += 1  # answer into the same stream; the connection is closed, the body cut short
            try:
                self.last_error = "cut: %r" % (e,)
                log("http", "answer on %s cut short: %r" % (path or self.last_path, e))
            except MemoryError:
                pass


def _close(text):
    # an answer's generator not run to its end (client gone, or the heap short for its head or for the
    # coroutine that sends it): its clean-up now, which unloads the modules it loaded (web._with_modules).
    # Else they stay in sys.modules for good (a generator is not finalised when collected), each such
    # answer leaving ~2-8 KB behind, until the heap collapses. Closing a finished one does nothing.
    if hasattr(text, "close"):
        text.close()


def _head(code, ctype, length, extra):
    # an answer's status line and headers (length None: no Content-Length, the body ends with the connection)
    return ("HTTP/1.0 %d %s\r\nContent-Type: %s\r\n%sCache-Control: no-store\r\nConnection: close\r\n"
            "%s\r\n" % (code, REASONS.get(code, ""), ctype,
                         "" if length is None else "Content-Length: %d\r\n" % length, extra))
